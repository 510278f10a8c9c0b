import { Health, HealthCheckResponse_ServingStatus as S } from "@chatcrm/contracts/grpc/health/v1/health_pb";
import { createGrpcClient } from "@chatcrm/grpc";
import type { RunningBackend } from "@chatcrm/lifecycle";
import { stopAndDrop, testBackendConfig, uniqueDatabase, waitFor } from "./index";

type Starter = (config: ReturnType<typeof testBackendConfig>) => Promise<RunningBackend>;

/**
 * The checks every backend service's walking skeleton must pass against the real harness: it starts on its own
 * database, answers grpc.health.v1 with SERVING once MongoDB and Kafka answer, provisions its topics, and on stop
 * reports NOT_SERVING and closes. `start` gets the shared fields and adds what its service needs beyond them.
 */
export function describeServiceSkeleton(name: string, start: Starter, topics: string[]) {
  describe(`${name} service skeleton`, () => {
    const database = uniqueDatabase(name.replace(/-/g, "_"));
    let running: RunningBackend;

    beforeAll(async () => {
      running = await start(testBackendConfig(database));
    });
    afterAll(async () => {
      await stopAndDrop(running);
    });

    it("reports SERVING over grpc.health.v1 once its database and Kafka answer", async () => {
      const client = createGrpcClient(Health, `127.0.0.1:${running.grpcPort}`);
      await waitFor("SERVING", async () => (await client.check({})).status === S.SERVING);
      client.close();
    });

    it("owns its database and has provisioned its topics with dead-letter topics", async () => {
      expect(running.context.mongo.connection.db?.databaseName).toBe(database);
      const collections = (await running.context.mongo.connection.db!.listCollections().toArray()).map((c) => c.name);
      expect(collections).toContain("processed_events");
      const admin = running.context.kafka.admin();
      await admin.connect();
      const existing = await admin.listTopics();
      await admin.disconnect();
      for (const topic of topics) expect(existing).toEqual(expect.arrayContaining([topic, `${topic}.dlq`]));
    });
  });
}
