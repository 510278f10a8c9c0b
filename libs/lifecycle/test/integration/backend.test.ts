import { Health, HealthCheckResponse_ServingStatus as S } from "@chatcrm/contracts/grpc/health/v1/health_pb";
import { createGrpcClient, Status } from "@chatcrm/grpc";
import { Topics } from "@chatcrm/kafka";
import { testBackendConfig, testLogger, uniqueDatabase, waitFor } from "@chatcrm/testing";
import { redactUrl, startBackend } from "../../src";

const logger = testLogger("lifecycle-test");

describe("startBackend", () => {
  it("turns NOT_SERVING when its database goes away, and stops gracefully", async () => {
    const backend = await startBackend({ name: "probe", config: testBackendConfig(uniqueDatabase("lifecycle")), logger, topics: [Topics.contactEvents] });
    const client = createGrpcClient(Health, `127.0.0.1:${backend.grpcPort}`);
    expect((await client.check({})).status).toBe(S.SERVING);

    await backend.context.mongo.connection.dropDatabase();
    await backend.context.mongo.close();
    await waitFor("NOT_SERVING", async () => (await client.check({})).status === S.NOT_SERVING, 5_000);
    expect(logger.lines.some((l) => l.msg === "not ready" && JSON.stringify(l.problems).includes("MongoDB"))).toBe(true);

    await backend.stop();
    await backend.stop(); // idempotent
    // The server is gone: the call fails as unavailable rather than hanging until its deadline.
    await expect(client.check({}, { timeoutMs: 2_000 })).rejects.toMatchObject({ code: Status.UNAVAILABLE });
    client.close();
  });

  it("tells a periodic pass in flight that the service stops, and waits for it to end", async () => {
    let passStarted!: () => void;
    const inFlight = new Promise<void>((resolve) => (passStarted = resolve));
    let passEnded = false;
    const backend = await startBackend({
      name: "probe",
      config: testBackendConfig(uniqueDatabase("lifecycle_every")),
      logger,
      register: (ctx) =>
        ctx.every("a pass that runs until told", 20, async (stopping) => {
          passStarted();
          await new Promise<void>((resolve) => stopping.addEventListener("abort", () => resolve()));
          await new Promise((resolve) => setTimeout(resolve, 50));
          passEnded = true;
        }),
    });
    await inFlight;
    await backend.stop();
    expect(passEnded).toBe(true);
  });

  it("fails to start with a message naming the unreachable dependency", async () => {
    const config = { ...testBackendConfig(uniqueDatabase("lifecycle_bad")), MONGO_URL: "mongodb://user:pw@127.0.0.1:1", MONGO_SERVER_SELECTION_TIMEOUT_MS: 300 };
    await expect(startBackend({ name: "probe", config, logger })).rejects.toThrow(/probe could not start: connecting to MongoDB at mongodb:\/\/user:\*\*\*@127\.0\.0\.1:1/);
  });

  it("redacts passwords from connection strings", () => {
    expect(redactUrl("mongodb+srv://app:s3cr3t@cluster0.example.net/db")).toBe("mongodb+srv://app:***@cluster0.example.net/db");
  });
});
