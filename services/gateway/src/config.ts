import { grpcAddress, port, positiveInt, serviceBaseSchema } from "@chatcrm/config";
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
