import { runService } from "./processes";

describe("a service started with a bad configuration", () => {
  it("exits with status 78 and names every bad variable, without starting anything", async () => {
    const proc = runService("contacts", { GRPC_PORT: "not-a-port", KAFKA_BROKERS: "127.0.0.1:9092", LOG_LEVEL: "info" });
    const { code } = await proc.exited;
    expect(code).toBe(78);
    expect(proc.output()).toContain("Invalid configuration:");
    expect(proc.output()).toMatch(/GRPC_PORT: expected a port number \(got "not-a-port"\)/);
    expect(proc.output()).toMatch(/MONGO_URL: is required \(it is not set\)/);
    expect(proc.output()).not.toContain("started");
  });
});
