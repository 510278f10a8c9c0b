import { z } from "zod";
import { grpcAddress, positiveInt, serviceBaseSchema } from "@chatcrm/config";

/** Environment of the flow-runtime service; see .env.example. */
export const configSchema = serviceBaseSchema({ grpcPort: 50053, database: "chatcrm_flow_runtime" }).extend({
  /** The contacts service, which owns the cards the flows read and change. */
  CONTACTS_GRPC_ADDR: grpcAddress("127.0.0.1:50052"),
  /** The Kafka consumer group; replicas of the service share it. */
  KAFKA_CONSUMER_GROUP: z.string().min(1).default("flow-runtime"),
  /** Kafka partitions handled at once; one contact's events stay in order (one partition each). */
  CONSUMER_CONCURRENCY: positiveInt(12),
  /** Region for phone answers written without a country code, when a flow names none (ISO 3166 alpha-2). */
  DEFAULT_PHONE_REGION: z.string().regex(/^[A-Z]{2}$/, { error: "expected a two-letter country code such as RU" }).default("RU"),
  /** Blocks one event may run through without a wait; a flow that loops (A→B→A) is stopped there and reported. */
  FLOW_STEP_LIMIT: positiveInt(100),
  /** Timers due within this window are held in memory and fired on time; later ones wait in the database. */
  TIMER_LOOKAHEAD_MS: positiveInt(120_000),
  /** How often the timer wheel looks for due buckets and for timers other replicas stored. */
  TIMER_SCAN_INTERVAL_MS: positiveInt(10_000),
  /** Contact states held in memory between their events (each costs about 1–2 KB). */
  STATE_CACHE_CONTACTS: positiveInt(100_000),
  /** Contacts of one batch whose steps and effects run at once. */
  CONTACTS_AT_ONCE: positiveInt(256),
  /** Done effects are recorded as done with the contact's next step, or after this long without one. */
  EFFECT_CLEAR_AFTER_MS: positiveInt(5_000),
  /** Superseded state revisions are deleted after this long (a writer holding an older state must not outlive it). */
  STATE_REVISION_RETENTION_MS: positiveInt(60_000),
  STATE_COMPACTION_INTERVAL_MS: positiveInt(10_000),
  /**
   * Superseded revisions deleted per pass (0: none). On MongoDB a pass is an index lookup per id. FerretDB compares
   * every document with every id: at ~60,000 revisions a pass of 1,000 took it 20-30 s of CPU in the benchmark. A
   * pass that took d waits 9·d before the next, so compaction holds the database a tenth of the time at most; on
   * FerretDB under sustained load it then falls behind and the collection grows.
   */
  STATE_COMPACTION_BATCH: z.coerce.number({ error: "expected a number" }).int({ error: "expected a whole number" }).min(0, { error: "expected 0 or more" }).default(1_000),
  /** Effects a crash left unexecuted are retried from here after this long. */
  EFFECT_RELAY_AFTER_MS: positiveInt(30_000),
  /**
   * How often the relay sweeps the store for them when no partition moved; after this replica starts or its group
   * rebalances (a replica crashed or left) it sweeps once EFFECT_RELAY_AFTER_MS has passed. A sweep reads every
   * revision with effects past that age (on FerretDB, a scan of the collection).
   */
  EFFECT_RELAY_INTERVAL_MS: positiveInt(300_000),
});

export type Config = z.infer<typeof configSchema>;
