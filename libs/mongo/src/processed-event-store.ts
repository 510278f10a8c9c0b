import { Schema, type Connection, type Model } from "mongoose";
import type { ProcessedEventStore } from "@chatcrm/kafka";

interface ProcessedEvent {
  _id: string;
  at: Date;
}

export interface ProcessedEventStoreOptions {
  /** Forget events after this long. Needs TTL indexes, which FerretDB lacks: pass it only on MongoDB. */
  ttlSeconds?: number;
}

/**
 * Kafka consumer idempotency in the service's own database. The key is "<group>|<event id>" as the document _id,
 * so both the check and the insert are _id lookups, fast on MongoDB and on FerretDB alike.
 */
export class MongoProcessedEventStore implements ProcessedEventStore {
  readonly model: Model<ProcessedEvent>;

  constructor(connection: Connection, options: ProcessedEventStoreOptions = {}) {
    const schema = new Schema<ProcessedEvent>({ _id: { type: String, required: true }, at: { type: Date, required: true } }, { versionKey: false });
    // Serves MongoDB's TTL monitor, which deletes entries older than ttlSeconds.
    if (options.ttlSeconds) schema.index({ at: 1 }, { expireAfterSeconds: options.ttlSeconds });
    this.model = connection.model<ProcessedEvent>("ProcessedEvent", schema, "processed_events");
  }

  async has(group: string, eventId: string): Promise<boolean> {
    return (await this.model.exists({ _id: `${group}|${eventId}` })) !== null;
  }

  async add(group: string, eventId: string): Promise<void> {
    await this.model.updateOne({ _id: `${group}|${eventId}` }, { $setOnInsert: { at: new Date() } }, { upsert: true });
  }
}
