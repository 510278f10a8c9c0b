import { Health } from "@chatcrm/contracts/grpc/health/v1/health_pb";
import { GrpcServer, HealthState, healthHandlers, ServingStatus } from "@chatcrm/grpc";
import { describeServiceSkeleton, serviceTestConfig, testBackendConfig, testLogger, uniqueDatabase } from "@chatcrm/testing";
import { startGateway } from "../../src/app";
import { configSchema } from "../../src/config";

const logger = testLogger("gateway");
const gatewayConfig = (base: ReturnType<typeof testBackendConfig>, peers: Partial<Record<string, string>> = {}) => ({
  ...serviceTestConfig(configSchema, base, { ACCESS_TOKEN_SECRET: "s".repeat(48), ...peers }),
  HTTP_HOST: "127.0.0.1",
  HTTP_PORT: 0,
  PEER_HEALTH_TIMEOUT_MS: 1_000,
});

describeServiceSkeleton("gateway", (base) => startGateway(gatewayConfig(base), logger), [
  "channels.send-commands.v1",
  "flows.commands.v1",
  "contacts.resolved-messages.v1",
  "contacts.contact-events.v1",
]);

describe("gateway system status over Connect JSON", () => {
  it("reports each backend as SERVING, NOT_SERVING or UNREACHABLE from its grpc.health.v1 answer", async () => {
    const serving = new HealthState();
    serving.setAll(ServingStatus.SERVING);
    const servingServer = new GrpcServer({ logger }).addService(Health, healthHandlers(serving));
    const notServingServer = new GrpcServer({ logger }).addService(Health, healthHandlers(new HealthState()));
    const servingPort = await servingServer.listen("127.0.0.1", 0);
    const notServingPort = await notServingServer.listen("127.0.0.1", 0);

    const base = testBackendConfig(uniqueDatabase("gateway_status"));
    const gateway = await startGateway(
      gatewayConfig(base, {
        CONTACTS_GRPC_ADDR: `127.0.0.1:${servingPort}`,
        CHANNELS_GRPC_ADDR: `127.0.0.1:${notServingPort}`,
        // Nothing listens on port 1.
        FLOW_RUNTIME_GRPC_ADDR: "127.0.0.1:1",
        IDENTITY_MERGE_GRPC_ADDR: "127.0.0.1:1",
        INTEGRATIONS_GRPC_ADDR: "127.0.0.1:1",
        EXPORT_GRPC_ADDR: "127.0.0.1:1",
      }),
      logger,
    );
    try {
      const res = await fetch(`http://127.0.0.1:${gateway.httpPort}/chatcrm.system.v1.SystemService/GetSystemStatus`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { services: { name: string; state: string; detail?: string }[]; allServing?: boolean };
      const byName = Object.fromEntries(body.services.map((s) => [s.name, s]));
      expect(byName.contacts?.state).toBe("SERVICE_STATE_SERVING");
      expect(byName.channels).toMatchObject({ state: "SERVICE_STATE_NOT_SERVING", detail: "its database or Kafka is not reachable" });
      expect(byName["flow-runtime"]).toMatchObject({ state: "SERVICE_STATE_UNREACHABLE" });
      expect(body.services).toHaveLength(6);
      expect(body.allServing).toBeUndefined();

      const bad = await fetch(`http://127.0.0.1:${gateway.httpPort}/chatcrm.system.v1.SystemService/GetSystemStatus`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{not json",
      });
      expect(bad.status).toBe(400);
    } finally {
      await gateway.context.mongo.connection.dropDatabase();
      await gateway.stop();
      await servingServer.shutdown(500);
      await notServingServer.shutdown(500);
    }
  });
});
