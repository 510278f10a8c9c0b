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
import { stateModel, StateStore } from "./sessions/state-store";
import { TimerWheel } from "./timers/timer-wheel";

/** Starts the flow-runtime service; main.ts runs it, tests start it on an ephemeral port. */
export function startFlowRuntime(config: Config, logger: Logger) {
  return startBackend({
    name: "flow-runtime",
    config,
    logger,
    topics: [Topics.resolvedMessages, Topics.flowCommands, Topics.flowTimers, Topics.sendCommands, Topics.integrationRequests, Topics.integrationResults],
    register: (ctx) => {
      const connection = ctx.mongo.connection;
      const models = flowModels(connection);
      const states = stateModel(connection);
      const plans = salesPlanModel(connection);
      ctx.addModels(models.heads, models.versions, states, plans);

      const flows = new FlowStore(models);
      const store = new StateStore(states);
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
      const stepper = new ContactStepper(store, flows, executor, contacts, logger, { stepLimit: config.FLOW_STEP_LIMIT, defaultRegion: config.DEFAULT_PHONE_REGION });

      ctx.grpc.addService(FlowsService, flowsServiceHandlers({ flows, states: store, salesPlans, publisher: ctx.publisher }));
      ctx.addConsumer({
        groupId: config.KAFKA_CONSUMER_GROUP,
        partitionsConsumedConcurrently: config.CONSUMER_CONCURRENCY,
        ownIdempotency: true,
        subscriptions: flowEventSubscriptions(stepper),
      });

      // Closed after the relay below has stopped (hooks run last-added first): the relay calls contacts.
      ctx.onShutdown("contacts client", () => contacts.close());
      // Effects of a step that crashed half-way are finished from here (the next event of the contact would too).
      ctx.every("finishing stranded flow effects", config.EFFECT_RELAY_INTERVAL_MS, async () => {
        const stranded = await store.stranded(config.EFFECT_RELAY_AFTER_MS);
        await Promise.all(stranded.map((d) => stepper.finishPending(d.projectId, d.contactId)));
      });
      ctx.onStarted(() => timers.start());
      ctx.onShutdown("timer wheel", () => timers.stop());
      return { flows, store, stepper, timers, salesPlans };
    },
  });
}
