import { ContactsService } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { subscribe, subscribeBatch, Topics } from "@chatcrm/kafka";
import { startBackend } from "@chatcrm/lifecycle";
import type { Logger } from "@chatcrm/logging";
import type { Config } from "./config";
import { massActionJobModel } from "./mass-actions/job-model";
import { MassActionRunner } from "./mass-actions/job-runner";
import { contactsServiceHandlers } from "./rpc/contacts-service";
import { contactModel } from "./store/contact-document";
import { supportModels } from "./store/support-models";
import { applyDeliveryStatus } from "./usecases/apply-delivery-status";
import { applySubscriberStatus, contactForFirstSend } from "./usecases/channel-events";
import { ContactStore } from "./usecases/contact-store";
import { ContactWriter } from "./usecases/contact-writer";
import { ContactDeleter } from "./usecases/delete-contacts";
import { funnelMovesHandler } from "./usecases/funnel-moves";
import { InboundIngest } from "./usecases/ingest-inbound";

/** Starts the contacts service; main.ts runs it, tests start it on an ephemeral port. */
export function startContacts(config: Config, logger: Logger) {
  return startBackend({
    name: "contacts",
    config,
    logger,
    topics: [Topics.inboundMessages, Topics.deliveryStatuses, Topics.subscriberStatuses, Topics.resolvedMessages, Topics.contactEvents, Topics.flowCommands, Topics.funnelMoves],
    register: (ctx) => {
      const connection = ctx.mongo.connection;
      const contacts = contactModel(connection);
      const support = supportModels(connection);
      const jobs = massActionJobModel(connection);
      ctx.addModels(contacts, jobs, ...Object.values(support));

      const store = new ContactStore(contacts, support);
      const writer = new ContactWriter(store, ctx.publisher, logger);
      const deleter = new ContactDeleter(store, ctx.publisher);
      const ingest = new InboundIngest(store, ctx.publisher, logger);
      const runner = new MassActionRunner(jobs, store, deleter, ctx.publisher, logger, {
        batchSize: config.MASS_ACTION_BATCH_SIZE,
        leaseMs: config.MASS_ACTION_LEASE_MS,
        pollIntervalMs: config.MASS_ACTION_POLL_INTERVAL_MS,
      });

      ctx.grpc.addService(ContactsService, contactsServiceHandlers({ store, writer, deleter, runner, jobs, publisher: ctx.publisher }));
      ctx.addConsumer({
        groupId: config.KAFKA_CONSUMER_GROUP,
        partitionsConsumedConcurrently: config.CONSUMER_CONCURRENCY,
        subscriptions: [
          subscribe(Topics.inboundMessages, async (event) => void (await ingest.ingest(event.value))),
          subscribe(Topics.deliveryStatuses, async (event) => {
            const contactId = await contactForFirstSend(store, ctx.publisher, event.value);
            await applyDeliveryStatus(writer, { ...event.value, contactId });
          }),
          subscribe(Topics.subscriberStatuses, async (event) => void (await applySubscriberStatus(store, writer, event.value))),
        ],
      });

      // Batched apart from the records above: kafkajs runs a consumer either per record or per batch.
      ctx.addConsumer({
        groupId: config.FUNNEL_MOVES_CONSUMER_GROUP,
        partitionsConsumedConcurrently: config.CONSUMER_CONCURRENCY,
        subscriptions: [subscribeBatch(Topics.funnelMoves, funnelMovesHandler(store, writer, logger))],
      });

      // Events a crash or a Kafka outage left unpublished go out from here; mass actions resume from their records.
      ctx.every("outbox relay", config.OUTBOX_RELAY_INTERVAL_MS, () => Promise.all([writer.relay(config.OUTBOX_RELAY_AFTER_MS), deleter.relay(config.OUTBOX_RELAY_AFTER_MS)]));
      ctx.onStarted(() => runner.start());
      ctx.onShutdown("mass actions", () => runner.stop());
      return { store, writer, deleter, ingest, runner };
    },
  });
}
