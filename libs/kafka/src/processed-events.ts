/**
 * Remembers which events a consumer group has handled, so a redelivered event is skipped. Kafka delivers at
 * least once; this turns it into effectively once for handlers whose effect and bookkeeping both succeed.
 * libs/mongo provides the MongoDB implementation.
 */
export interface ProcessedEventStore {
  has(group: string, eventId: string): Promise<boolean>;
  add(group: string, eventId: string): Promise<void>;
}
