import type { Kafka } from "kafkajs";
import { Health } from "@chatcrm/contracts/grpc/health/v1/health_pb";
import { GrpcServer, HealthState, healthHandlers } from "@chatcrm/grpc";
import { createKafka, ensureTopics, EventConsumer, EventPublisher, type EventConsumerOptions, type TopicDefinition } from "@chatcrm/kafka";
import type { Logger } from "@chatcrm/logging";
import { MongoDatabase, MongoProcessedEventStore, type IndexedModel } from "@chatcrm/mongo";
import { ReadinessMonitor, type ReadinessCheck } from "./readiness-monitor";

/** The part of every service's configuration the backend runtime needs (see serviceBaseSchema in libs/config). */
export interface BackendConfig {
  GRPC_HOST: string;
  GRPC_PORT: number;
  MONGO_URL: string;
  MONGO_DATABASE: string;
  MONGO_SERVER_SELECTION_TIMEOUT_MS: number;
  KAFKA_BROKERS: string[];
  KAFKA_CLIENT_ID?: string | undefined;
  KAFKA_REPLICATION_FACTOR: number;
  SHUTDOWN_TIMEOUT_MS: number;
  HEALTH_PROBE_INTERVAL_MS: number;
  MONGO_TTL_INDEXES: boolean;
  MONGO_QUERY_INDEXES: boolean;
}

/** What a service gets to wire its own parts into. */
export interface BackendContext {
  readonly name: string;
  readonly logger: Logger;
  readonly mongo: MongoDatabase;
  readonly kafka: Kafka;
  readonly publisher: EventPublisher;
  readonly grpc: GrpcServer;
  readonly health: HealthState;
  readonly processedEvents: MongoProcessedEventStore;
  /** Models whose indexes are synced before the service starts serving. */
  addModels(...models: IndexedModel[]): void;
  /**
   * A consumer started after the gRPC server and stopped before Kafka disconnects. Its handlers are deduplicated
   * by event id through the processed-event store unless `ownIdempotency` says they keep their own record (a
   * handler that records the event id in the same write as its effect needs no second lookup and write).
   */
  addConsumer(options: Omit<EventConsumerOptions, "publisher" | "logger" | "processed"> & { ownIdempotency?: boolean }): EventConsumer;
  addReadinessCheck(check: ReadinessCheck): void;
  /** Runs once the service serves gRPC and its consumers run (background workers start here). */
  onStarted(fn: () => Promise<void> | void): void;
  /** Runs at shutdown, after consumers stop and before Kafka and MongoDB close; last added runs first. */
  onShutdown(name: string, fn: () => Promise<void> | void): void;
  /**
   * Runs `pass` every `intervalMs` (outbox relays and the like). A pass that outlasts the interval (a slow
   * database) is not started over by the next tick; a failing one is logged and tried again at the next. At
   * shutdown (as a hook named `what`) the ticks stop, the pass in flight is told through `stopping` (a long pass
   * that can be redone later should end early rather than hold the stop) and awaited.
   */
  every(what: string, intervalMs: number, pass: (stopping: AbortSignal) => Promise<unknown>): void;
}

export interface BackendDefinition<T = void> {
  name: string;
  config: BackendConfig;
  logger: Logger;
  /** Topics this service publishes or consumes; created with their dead-letter topics if missing. */
  topics?: TopicDefinition[];
  /** Wires the service's own handlers, consumers and models. */
  register?: (ctx: BackendContext) => Promise<T> | T;
}

export interface RunningBackend<T = unknown> {
  readonly grpcPort: number;
  readonly context: BackendContext;
  /** What the service's register returned: its own parts, for tests and benchmarks to drive directly. */
  readonly parts: T;
  /** Idempotent graceful stop: NOT_SERVING, drain gRPC, stop consumers, run hooks, close Kafka and MongoDB. */
  stop(): Promise<void>;
}

/**
 * The composition every backend service shares: MongoDB (its own database) → Kafka (topics, producer) → the
 * service's own registrations → index sync → gRPC server with health and reflection → consumers → readiness.
 * A dependency that is unreachable at start-up fails the start with a message naming it; one that goes away
 * later turns health to NOT_SERVING until it is back.
 */
export async function startBackend<T = void>(def: BackendDefinition<T>): Promise<RunningBackend<T>> {
  const { config, logger, name } = def;
  const mongo = new MongoDatabase({
    url: config.MONGO_URL,
    database: config.MONGO_DATABASE,
    logger,
    serverSelectionTimeoutMs: config.MONGO_SERVER_SELECTION_TIMEOUT_MS,
    queryIndexes: config.MONGO_QUERY_INDEXES,
  });
  const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: config.KAFKA_CLIENT_ID ?? name, logger });
  const admin = kafka.admin();
  const publisher = new EventPublisher(kafka);
  const grpc = new GrpcServer({ logger });
  const health = new HealthState();
  const processedEvents = new MongoProcessedEventStore(mongo.connection, config.MONGO_TTL_INDEXES ? { ttlSeconds: 14 * 24 * 3600 } : {});
  const models: IndexedModel[] = [processedEvents.model];
  const consumers: EventConsumer[] = [];
  const checks: ReadinessCheck[] = [
    { name: "MongoDB", probe: () => mongo.ping() },
    { name: "Kafka", probe: async () => void (await admin.describeCluster()) },
  ];
  const hooks: { name: string; fn: () => Promise<void> | void }[] = [];
  const startedHooks: (() => Promise<void> | void)[] = [];

  const context: BackendContext = {
    name,
    logger,
    mongo,
    kafka,
    publisher,
    grpc,
    health,
    processedEvents,
    addModels: (...m) => void models.push(...m),
    addConsumer: ({ ownIdempotency, ...options }) => {
      const consumer = new EventConsumer(kafka, { ...options, publisher, logger, processed: ownIdempotency ? undefined : processedEvents });
      consumers.push(consumer);
      return consumer;
    },
    addReadinessCheck: (check) => void checks.push(check),
    onStarted: (fn) => void startedHooks.push(fn),
    onShutdown: (hookName, fn) => void hooks.push({ name: hookName, fn }),
    every: (what, intervalMs, pass) => {
      let running: Promise<unknown> | undefined;
      const stopping = new AbortController();
      const timer = setInterval(() => {
        running ??= pass(stopping.signal)
          .catch((err: unknown) => logger.warn({ err }, `${what} failed; retrying later`))
          .finally(() => (running = undefined));
      }, intervalMs);
      hooks.push({
        name: what,
        fn: async () => {
          clearInterval(timer);
          stopping.abort();
          await running;
        },
      });
    },
  };

  const step = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      throw new Error(`${name} could not start: ${what} failed: ${(err as Error).message}`, { cause: err });
    }
  };

  await step(`connecting to MongoDB at ${redactUrl(config.MONGO_URL)}`, () => mongo.connect());
  await step(`connecting to Kafka at ${config.KAFKA_BROKERS.join(",")}`, () => admin.connect());
  if (def.topics?.length) {
    await step("creating Kafka topics", async () => {
      const created = await ensureTopics(admin, def.topics!, { replicationFactor: config.KAFKA_REPLICATION_FACTOR });
      if (created.length) logger.info({ topics: created }, "created Kafka topics");
    });
  }
  await step("connecting the Kafka producer", () => publisher.connect());
  const parts = (await def.register?.(context)) as T;
  await step("syncing MongoDB indexes", () => mongo.syncIndexes(models));
  grpc.addService(Health, healthHandlers(health));
  let grpcPort = 0;
  await step(`listening for gRPC on ${config.GRPC_HOST}:${config.GRPC_PORT}`, async () => (grpcPort = await grpc.listen(config.GRPC_HOST, config.GRPC_PORT)));
  await step("starting Kafka consumers", () => Promise.all(consumers.map((c) => c.start())));
  for (const fn of startedHooks) await step("starting background work", async () => fn());

  const monitor = new ReadinessMonitor(health, checks, logger, config.HEALTH_PROBE_INTERVAL_MS);
  await monitor.probeOnce();
  monitor.start();
  logger.info({ grpcPort, database: config.MONGO_DATABASE }, `${name} started`);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      logger.info(`${name} stopping`);
      monitor.stop();
      const quietly = async (what: string, fn: () => Promise<unknown> | unknown) => {
        try {
          await fn();
        } catch (err) {
          logger.warn({ err }, `${what} failed during shutdown`);
        }
      };
      await quietly("gRPC drain", () => grpc.shutdown(config.SHUTDOWN_TIMEOUT_MS));
      await Promise.all(consumers.map((c) => quietly("consumer stop", () => c.stop())));
      for (const hook of [...hooks].reverse()) await quietly(hook.name, hook.fn);
      await quietly("Kafka producer disconnect", () => publisher.disconnect());
      await quietly("Kafka admin disconnect", () => admin.disconnect());
      await quietly("MongoDB close", () => mongo.close());
      logger.info(`${name} stopped`);
    })());

  return { grpcPort, context, parts, stop };
}

/** A connection string without its password, for messages a person reads. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):([^@/]+)@/, "//$1:***@");
}
