import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { Topics, type EventPublisher, type TopicDefinition } from "@chatcrm/kafka";
import type { Logger } from "@chatcrm/logging";
import { insertManyIgnoringDuplicates, storedBytes } from "@chatcrm/mongo";
import type { Model } from "mongoose";
import type { PendingEventDoc } from "../store/models";

export interface DurableEvent<D extends DescMessage> {
  eventId: string;
  projectId: string;
  key: string;
  value: MessageInitShape<D>;
}

const topicsByName = new Map<string, TopicDefinition>(Object.values(Topics).map((t) => [t.name, t as TopicDefinition]));

/**
 * "Accepted" for a webhook means published to Kafka or, when Kafka does not take it, stored for publishing: only
 * then is the provider answered 200. A relay publishes what was stored; event ids are derived from the provider's
 * ids, so an event both stored and (late) published is still handled once downstream.
 */
export class DurablePublisher {
  /**
   * While stored events wait for the relay, new ones are stored behind them instead of overtaking them on Kafka,
   * so a chat's messages keep their order across an outage. True at start until a relay pass finds nothing waiting
   * (a crash may have left events stored). Per replica: two replicas' webhooks were never ordered with each other.
   */
  private backlog = true;

  constructor(
    private readonly publisher: EventPublisher,
    private readonly pending: Model<PendingEventDoc>,
    private readonly logger: Logger,
  ) {}

  async publish<D extends DescMessage>(topic: TopicDefinition<D>, events: DurableEvent<D>[]): Promise<"published" | "stored"> {
    if (events.length === 0) return "published";
    if (!this.backlog) {
      try {
        await Promise.all(events.map((e) => this.publisher.publishCoalesced(topic, { key: e.key, projectId: e.projectId, eventId: e.eventId, value: e.value })));
        return "published";
      } catch (err) {
        this.backlog = true;
        this.logger.warn({ err, topic: topic.name, events: events.length }, "Kafka did not take the events; storing them for the relay");
      }
    }
    const createdAt = new Date();
    await insertManyIgnoringDuplicates(
      this.pending.collection,
      events.map((e) => ({ _id: `${topic.name}|${e.eventId}`, projectId: e.projectId, topic: topic.name, key: e.key, value: Buffer.from(toBinary(topic.schema, create(topic.schema, e.value))), createdAt })),
    );
    return "stored";
  }

  /**
   * Publishes stored events oldest first and removes each once Kafka has it; returns how many went out. An event
   * Kafka refuses for good (too large, undecodable) is parked with its error for a person to look at, so it never
   * holds up the ones behind it.
   */
  async relay(limit = 500): Promise<number> {
    const docs = await this.pending.find({ parkedError: null }).sort({ createdAt: 1, _id: 1 }).limit(limit).lean<PendingEventDoc[]>();
    const published: string[] = [];
    for (const doc of docs) {
      const topic = topicsByName.get(doc.topic);
      const eventId = doc._id.slice(doc.topic.length + 1);
      try {
        if (!topic) throw new PermanentlyRefused(`unknown topic ${doc.topic}`);
        let value: MessageInitShape<DescMessage>;
        try {
          value = fromBinary(topic.schema, storedBytes(doc.value)) as MessageInitShape<DescMessage>;
        } catch (err) {
          throw new PermanentlyRefused(`does not decode: ${(err as Error).message}`);
        }
        await this.publisher.publish(topic, { key: doc.key, projectId: doc.projectId, eventId, value });
      } catch (err) {
        if (!(err instanceof PermanentlyRefused) && !isRefusedForGood(err)) throw err;
        this.logger.error({ err, id: doc._id, topic: doc.topic }, "a stored event cannot be published; parked for a person to look at");
        await this.pending.updateOne({ _id: doc._id }, { $set: { parkedError: (err as Error).message.slice(0, 500) } });
        continue;
      }
      published.push(doc._id);
    }
    // A crash before this delete publishes them again under the same event ids: harmless downstream.
    if (published.length) {
      await this.pending.deleteMany({ _id: { $in: published } });
      this.logger.info({ published: published.length }, "published events stored while Kafka was away");
    }
    if (docs.length === 0) this.backlog = false;
    return published.length;
  }
}

class PermanentlyRefused extends Error {}

/** Broker errors that retrying the same record cannot fix. */
const isRefusedForGood = (err: unknown) => ["MESSAGE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "INVALID_RECORD"].includes((err as { type?: string })?.type ?? "");
