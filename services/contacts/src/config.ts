import { z } from "zod";
import { positiveInt, serviceBaseSchema } from "@chatcrm/config";

/** Environment of the contacts service; see .env.example. */
export const configSchema = serviceBaseSchema({ grpcPort: 50052, database: "chatcrm_contacts" }).extend({
  /** The Kafka consumer group; replicas of the service share it. */
  KAFKA_CONSUMER_GROUP: z.string().min(1).default("contacts"),
  /** The consumer group that writes the flow runtime's funnel moves onto cards (batched, apart from the rest). */
  FUNNEL_MOVES_CONSUMER_GROUP: z.string().min(1).default("contacts-funnel-moves"),
  /** Kafka partitions handled at once; messages of one subscriber stay in order (one partition each). */
  CONSUMER_CONCURRENCY: positiveInt(6),
  /** Contacts a mass action applies per step (one bulk write, one event batch, one progress record). */
  MASS_ACTION_BATCH_SIZE: positiveInt(500),
  /** How long a runner owns a job before another replica may take it over. */
  MASS_ACTION_LEASE_MS: positiveInt(30_000),
  MASS_ACTION_POLL_INTERVAL_MS: positiveInt(2_000),
  /** Outbox entries older than this are published by the relay (the writer publishes at once normally). */
  OUTBOX_RELAY_AFTER_MS: positiveInt(30_000),
  OUTBOX_RELAY_INTERVAL_MS: positiveInt(15_000),
});

export type Config = z.infer<typeof configSchema>;
