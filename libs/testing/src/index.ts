import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { createLogger, type Logger } from "@chatcrm/logging";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import mongoose from "mongoose";
import { OPERATOR_METADATA_KEY, PROJECT_METADATA_KEY, ROLE_METADATA_KEY } from "@chatcrm/grpc";

/** Where the harness's Kafka and MongoDB-compatible server are (set by globalSetup or by the caller). */
export function testInfra(): { kafkaBrokers: string[]; mongoUrl: string } {
  const brokers = process.env.KAFKA_BROKERS;
  const mongoUrl = process.env.MONGO_URL;
  if (!brokers || !mongoUrl) throw new Error("KAFKA_BROKERS and MONGO_URL are not set: run tests through jest.preset.js (its globalSetup starts the harness)");
  return { kafkaBrokers: brokers.split(",").map((b) => b.trim()), mongoUrl };
}

/** A name no other test or run uses, for databases, topics and consumer groups. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
}

/** A database name for one suite; FerretDB and MongoDB both take [A-Za-z0-9_-]. */
export const uniqueDatabase = (prefix: string) => uniqueName(`t_${prefix}`).replace(/-/g, "_");

/** A logger for tests: silent unless TEST_LOG_LEVEL says otherwise; `lines` keeps what was logged. */
export function testLogger(service = "test"): Logger & { lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      const line = JSON.parse(String(chunk)) as Record<string, unknown>;
      lines.push(line);
      if (process.env.TEST_LOG_LEVEL) process.stderr.write(String(chunk));
      done();
    },
  });
  const logger = createLogger({ service, level: (process.env.TEST_LOG_LEVEL as never) ?? "info", destination: sink });
  return Object.assign(logger, { lines });
}

/** Polls until `check` returns a value other than undefined/false, or fails with `what` after the timeout. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * A service's whole configuration for a suite: its schema's defaults (with `env` as the environment would give it),
 * then the harness settings of `base` over them.
 */
export function serviceTestConfig<T>(schema: { parse(env: unknown): T }, base: ReturnType<typeof testBackendConfig>, env: Record<string, string | undefined> = {}) {
  return { ...schema.parse({ MONGO_URL: base.MONGO_URL, KAFKA_BROKERS: base.KAFKA_BROKERS.join(","), ...env }), ...base };
}

/** A backend configuration pointing at the harness, on an ephemeral gRPC port and a database of its own. */
export function testBackendConfig(database: string) {
  const { kafkaBrokers, mongoUrl } = testInfra();
  return {
    GRPC_HOST: "127.0.0.1",
    LOG_LEVEL: "info" as const,
    GRPC_PORT: 0,
    MONGO_URL: mongoUrl,
    MONGO_DATABASE: database,
    MONGO_SERVER_SELECTION_TIMEOUT_MS: 5_000,
    KAFKA_BROKERS: kafkaBrokers,
    KAFKA_CLIENT_ID: database,
    KAFKA_REPLICATION_FACTOR: 1,
    SHUTDOWN_TIMEOUT_MS: 2_000,
    HEALTH_PROBE_INTERVAL_MS: 500,
    MONGO_TTL_INDEXES: false,
    // The indexes are created as in production, so a test meets an index a schema cannot have.
    MONGO_QUERY_INDEXES: true,
  };
}
export { installTestTracing } from "./tracing";
export { describeServiceSkeleton } from "./service-smoke";
export { startGroupsAtEnd, tapTopic, type TappedEvent } from "./topic-tap";

/** gRPC call options for a project, as admin or as an operator, the way the gateway passes them on. */
export const callAs = (projectId: string, operatorId?: string, role: "admin" | "operator" = operatorId ? "operator" : "admin") => ({
  metadata: { [PROJECT_METADATA_KEY]: projectId, [ROLE_METADATA_KEY]: role, ...(operatorId && { [OPERATOR_METADATA_KEY]: operatorId }) },
});

/**
 * Drops a suite's database through a connection of its own, after the service using it has stopped. Dropping it
 * while the service still writes (a consumer's bulk write in flight) made FerretDB 1.24 on SQLite die with SIGBUS
 * in its write-ahead log (the file is removed under an open mapping), taking every other suite down with it.
 */
async function dropTestDatabase(database: string): Promise<void> {
  const connection = mongoose.createConnection(testInfra().mongoUrl, { dbName: database, serverSelectionTimeoutMS: 5_000 });
  try {
    await connection.asPromise();
    await connection.dropDatabase();
  } finally {
    await connection.close();
  }
}

/** Stops a service started by a suite, then drops its database (in that order: see dropTestDatabase). */
export async function stopAndDrop(running: { stop(): Promise<void>; context: { mongo: { connection: { name: string } } } } | undefined): Promise<void> {
  if (!running) return;
  const database = running.context.mongo.connection.name;
  await running.stop();
  await dropTestDatabase(database);
}
export { benchMachine } from "./bench-machine";

/** A loopback port nothing listens on right now, for a server that must know its address before it starts. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
export { cpuBetween, cpuSnapshot, median, pidOnPort, quantile, seededRandom, type CpuSnapshot, type Pids } from "./bench-tools";
