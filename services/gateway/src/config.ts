import { bool, grpcAddress, port, positiveInt, serviceBaseSchema } from "@chatcrm/config";
import { z } from "zod";

/** Environment of the gateway; see .env.example. */
export const configSchema = serviceBaseSchema({ grpcPort: 50050, database: "chatcrm_gateway" }).extend({
  /** The public Connect API (Connect JSON and gRPC-Web over HTTP/1.1) for UIs, servers and curl. */
  HTTP_HOST: z.string().default("0.0.0.0"),
  HTTP_PORT: port(8080),
  HTTP_MAX_BODY_BYTES: positiveInt(1024 * 1024),
  CHANNELS_GRPC_ADDR: grpcAddress("127.0.0.1:50051"),
  CONTACTS_GRPC_ADDR: grpcAddress("127.0.0.1:50052"),
  FLOW_RUNTIME_GRPC_ADDR: grpcAddress("127.0.0.1:50053"),
  IDENTITY_MERGE_GRPC_ADDR: grpcAddress("127.0.0.1:50054"),
  INTEGRATIONS_GRPC_ADDR: grpcAddress("127.0.0.1:50055"),
  EXPORT_GRPC_ADDR: grpcAddress("127.0.0.1:50056"),
  /** How long a backend's health check may take before the system status calls it unreachable. */
  PEER_HEALTH_TIMEOUT_MS: positiveInt(2_000),
  /** Deadline of a call forwarded to a backend. */
  PEER_CALL_TIMEOUT_MS: positiveInt(15_000),
  /** Signs access tokens (HMAC-SHA256). No default: a leaked default would let anyone mint tokens. */
  ACCESS_TOKEN_SECRET: z
    .string({ error: "is required: at least 32 random bytes, e.g. openssl rand -base64 48" })
    .min(32, { error: "must be at least 32 characters (openssl rand -base64 48)" }),
  ACCESS_TOKEN_TTL_SEC: positiveInt(15 * 60),
  REFRESH_TOKEN_TTL_SEC: positiveInt(30 * 24 * 3600),
  /** Wrong passwords for one email within the window that lock it, and for how long. */
  LOGIN_MAX_FAILURES: positiveInt(5),
  LOGIN_FAILURE_WINDOW_SEC: positiveInt(15 * 60),
  LOGIN_LOCKOUT_SEC: positiveInt(15 * 60),
  /** Login attempts a minute from one client address (per replica), whatever the email. */
  LOGINS_PER_MINUTE_PER_ADDRESS: positiveInt(30),
  /** Calls a second per API key and per signed-in operator (per replica); bursts up to twice that. */
  REQUESTS_PER_SEC_PER_API_KEY: positiveInt(300),
  REQUESTS_PER_SEC_PER_OPERATOR: positiveInt(50),
  /** Browser origins (scheme://host[:port], comma-separated) allowed to call the API; empty allows none. */
  CORS_ALLOWED_ORIGINS: z
    .string()
    .default("")
    .transform((v) => v.split(",").map((o) => o.trim()).filter(Boolean)),
  /** Behind an ingress: take the client address from X-Forwarded-For (login limits are per address). */
  HTTP_TRUST_PROXY: bool(false),
  /** How often each replica picks up sessions and API keys revoked on another replica. */
  REVOCATION_POLL_MS: positiveInt(2_000),
  /** Live updates: the heartbeat of a quiet stream, and how long unread counters wait to coalesce changes. */
  LIVE_HEARTBEAT_MS: positiveInt(15_000),
  LIVE_UNREAD_DEBOUNCE_MS: positiveInt(300),
  /** Prefix of this replica's own consumer group for live updates (every replica reads every event). */
  KAFKA_CONSUMER_GROUP: z.string().min(1).default("gateway-live"),
});

export type Config = ReturnType<typeof configSchema.parse>;

/** The backend services the gateway talks to, by name, with their configured addresses. */
export const peerAddresses = (config: Config) => ({
  channels: config.CHANNELS_GRPC_ADDR,
  contacts: config.CONTACTS_GRPC_ADDR,
  "flow-runtime": config.FLOW_RUNTIME_GRPC_ADDR,
  "identity-merge": config.IDENTITY_MERGE_GRPC_ADDR,
  integrations: config.INTEGRATIONS_GRPC_ADDR,
  export: config.EXPORT_GRPC_ADDR,
});
