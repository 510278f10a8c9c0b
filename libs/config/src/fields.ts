import { z } from "zod";

// Building blocks for service config schemas. Each turns an environment string into a typed value and says,
// in words, what it expected when it cannot.

export const port = (fallback: number) =>
  z.coerce
    .number({ error: "expected a port number" })
    .int({ error: "expected a whole port number" })
    .min(0, { error: "expected a port from 0 to 65535" })
    .max(65535, { error: "expected a port from 0 to 65535" })
    .default(fallback);

export const positiveInt = (fallback: number) =>
  z.coerce.number({ error: "expected a number" }).int({ error: "expected a whole number" }).positive({ error: "expected a number above 0" }).default(fallback);

export const mongoUrl = () =>
  z
    .string({ error: "is required" })
    .regex(/^mongodb(\+srv)?:\/\/\S+$/, { error: "expected a MongoDB connection string starting with mongodb:// or mongodb+srv://" });

/** A comma-separated list of host:port pairs. */
export const brokerList = () =>
  z
    .string({ error: "is required" })
    .transform((s) => s.split(",").map((b) => b.trim()).filter(Boolean))
    .refine((list) => list.length > 0 && list.every((b) => /^[^\s:]+:\d{1,5}$/.test(b)), {
      error: "expected host:port pairs separated by commas, e.g. 127.0.0.1:9092",
    });

/** host:port of a peer's gRPC server. */
export const grpcAddress = (fallback: string) =>
  z.string().regex(/^[^\s:]+:\d{1,5}$/, { error: "expected host:port, e.g. contacts:50051" }).default(fallback);

export const logLevel = () =>
  z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], { error: "expected one of fatal, error, warn, info, debug, trace, silent" }).default("info");

export const optionalUrl = () => z.url({ error: "expected a URL such as http://collector:4318" }).optional();

export const bool = (fallback: boolean) =>
  z
    .enum(["true", "false", "1", "0"], { error: "expected true or false" })
    .default(fallback ? "true" : "false")
    .transform((v) => v === "true" || v === "1");

/**
 * What every service reads: its gRPC port, its database, Kafka, logging and tracing. A service extends this
 * with its own fields; `database` names the service's own MongoDB database.
 */
export const serviceBaseSchema = (defaults: { grpcPort: number; database: string }) =>
  z.object({
    GRPC_HOST: z.string().default("0.0.0.0"),
    GRPC_PORT: port(defaults.grpcPort),
    MONGO_URL: mongoUrl(),
    /** How long start-up and each operation wait to find a reachable MongoDB server. */
    MONGO_SERVER_SELECTION_TIMEOUT_MS: positiveInt(10_000),
    MONGO_DATABASE: z.string().regex(/^[A-Za-z0-9_-]{1,63}$/, { error: "expected a database name of letters, digits, _ or -" }).default(defaults.database),
    KAFKA_BROKERS: brokerList(),
    KAFKA_CLIENT_ID: z.string().optional(),
    /** 1 on a single local broker; 3 on a production cluster. */
    KAFKA_REPLICATION_FACTOR: positiveInt(1),
    LOG_LEVEL: logLevel(),
    OTEL_EXPORTER_OTLP_ENDPOINT: optionalUrl(),
    SHUTDOWN_TIMEOUT_MS: positiveInt(15_000),
    HEALTH_PROBE_INTERVAL_MS: positiveInt(5_000),
    /** TTL indexes are a MongoDB feature FerretDB lacks; production turns them on. */
    MONGO_TTL_INDEXES: bool(false),
    /**
     * Non-unique indexes serve only queries; FerretDB 1.24 on SQLite never uses them and pays for them on every
     * write, so local runs on it turn them off. Unique indexes are created either way.
     */
    MONGO_QUERY_INDEXES: bool(true),
  });
