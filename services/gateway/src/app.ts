import { SystemService } from "@chatcrm/contracts/chatcrm/system/v1/system_service_pb";
import { Health } from "@chatcrm/contracts/grpc/health/v1/health_pb";
import { createGrpcClient } from "@chatcrm/grpc";
import { Topics } from "@chatcrm/kafka";
import { startBackend } from "@chatcrm/lifecycle";
import type { Logger } from "@chatcrm/logging";
import { peerAddresses, type Config } from "./config";
import { listenPublicApi } from "./http-server";
import { systemService } from "./rpc/system-service";

/** Starts the gateway: the shared backend (its own database, Kafka, gRPC health) plus the public Connect API. */
export async function startGateway(config: Config, logger: Logger) {
  let httpPort = 0;
  const backend = await startBackend({
    name: "gateway",
    config,
    logger,
    topics: [Topics.sendCommands, Topics.flowCommands],
    register: async (ctx) => {
      const peers = Object.entries(peerAddresses(config)).map(([name, address]) => ({ name, health: createGrpcClient(Health, address) }));
      const api = await listenPublicApi((router) => router.service(SystemService, systemService(peers, config.PEER_HEALTH_TIMEOUT_MS)), config.HTTP_HOST, config.HTTP_PORT, config.HTTP_MAX_BODY_BYTES);
      httpPort = api.port;
      logger.info({ httpPort }, "public Connect API listening");
      ctx.onShutdown("public API", () => api.close());
      ctx.onShutdown("peer clients", () => peers.forEach((p) => p.health.close()));
    },
  });
  return { ...backend, httpPort };
}
