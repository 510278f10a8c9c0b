import { ContactsService } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { FlowsService } from "@chatcrm/contracts/chatcrm/flows/v1/flows_service_pb";
import { createGrpcClient } from "@chatcrm/grpc";
import { Topics } from "@chatcrm/kafka";
import { startBackend } from "@chatcrm/lifecycle";
import type { Logger } from "@chatcrm/logging";
import type { Config } from "./config";
import { flowEventSubscriptions } from "./consumers/flow-events";
import { flowModels, FlowStore } from "./definitions/flow-store";
import { EffectExecutor } from "./effects/effect-executor";
import { salesPlanModel, SalesPlans } from "./effects/sales-plans";
import { flowsServiceHandlers } from "./rpc/flows-service";
import { ContactStepper } from "./sessions/contact-stepper";
import { EffectRelay } from "./sessions/effect-relay";
import { stateModel, StateStore } from "./sessions/state-store";
import { TimerWheel } from "./timers/timer-wheel";

/** Starts the flow-runtime service; main.ts runs it, tests start it on an ephemeral port. */
export function startFlowRuntime(config: Config, logger: Logger) {
  return startBackend({
    name: "flow-runtime",
    config,
    logger,
    topics: [Topics.resolvedMessages, Topics.flowCommands, Topics.flowTimers, Topics.sendCommands, Topics.integrationRequests, Topics.integrationResults, Topics.funnelMoves],
    register: (ctx) => {
      const connection = ctx.mongo.connection;
      const models = flowModels(connection);
      const states = stateModel(connection);
      const plans = salesPlanModel(connection);
      ctx.addModels(models.heads, models.versions, states, plans);

      const flows = new FlowStore(models);
      const store = new StateStore(states, { retentionMs: config.STATE_REVISION_RETENTION_MS });
      const salesPlans = new SalesPlans(plans);
      const contacts = createGrpcClient(ContactsService, config.CONTACTS_GRPC_ADDR);
      const timers = new TimerWheel(
        connection.db!,
        (t) =>
          ctx.publisher
            .publishCoalesced(Topics.flowTimers, {
              key: t.contactId,
              projectId: t.projectId,
              eventId: `timer:${t._id}`,
              value: { timerId: t._id, projectId: t.projectId, contactId: t.contactId, sessionId: t.sessionId, purpose: t.purpose, dueAtMs: BigInt(t.dueAtMs) },
            })
            .then(() => undefined),
        logger,
        { lookaheadMs: config.TIMER_LOOKAHEAD_MS, scanIntervalMs: config.TIMER_SCAN_INTERVAL_MS },
      );
      const executor = new EffectExecutor(contacts, ctx.publisher, timers, salesPlans, logger);
      const stepper = new ContactStepper(store, flows, executor, contacts, logger, {
        stepLimit: config.FLOW_STEP_LIMIT,
        defaultRegion: config.DEFAULT_PHONE_REGION,
        cacheSize: config.STATE_CACHE_CONTACTS,
        contactsAtOnce: config.CONTACTS_AT_ONCE,
      });

      ctx.grpc.addService(FlowsService, flowsServiceHandlers({ flows, states: store, salesPlans, publisher: ctx.publisher }));
      const consumer = ctx.addConsumer({
        groupId: config.KAFKA_CONSUMER_GROUP,
        partitionsConsumedConcurrently: config.CONSUMER_CONCURRENCY,
        ownIdempotency: true,
        subscriptions: flowEventSubscriptions(stepper),
      });
      const relay = new EffectRelay(store, stepper, { afterMs: config.EFFECT_RELAY_AFTER_MS, sweepEveryMs: config.EFFECT_RELAY_INTERVAL_MS });
      consumer.onJoin(() => {
        stepper.partitionsMoved();
        relay.rejoined();
      });

      // Closed after the relay below has stopped (hooks run last-added first): the relay calls contacts.
      ctx.onShutdown("contacts client", () => contacts.close());
      // Effects of a step that crashed half-way are finished from here (the next event of the contact would too).
      ctx.every("finishing stranded flow effects", Math.min(1_000, config.EFFECT_RELAY_INTERVAL_MS), (stopping) => relay.tick(stopping));
      ctx.every("recording done flow effects", Math.max(250, Math.floor(config.EFFECT_CLEAR_AFTER_MS / 2)), () => stepper.recordDoneEffects(config.EFFECT_CLEAR_AFTER_MS));
      if (config.STATE_COMPACTION_BATCH > 0) ctx.every("deleting superseded contact states", config.STATE_COMPACTION_INTERVAL_MS, () => store.compact(config.STATE_COMPACTION_BATCH));
      // Last thing before the consumers' Kafka clients close: what ran is recorded, so a restart does not redo it.
      ctx.onShutdown("recording done flow effects", () => stepper.recordDoneEffects(0).then(() => undefined));
      ctx.onStarted(() => timers.start());
      ctx.onShutdown("timer wheel", () => timers.stop());
      return { flows, store, stepper, relay, timers, salesPlans };
    },
  });
}
