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

  it("refuses to start channels without a secrets key, and with a key that is not 32 bytes", async () => {
    const env = { MONGO_URL: "mongodb://127.0.0.1:1", KAFKA_BROKERS: "127.0.0.1:1", LOG_LEVEL: "info" };
    const missing = runService("channels", env);
    expect((await missing.exited).code).toBe(78);
    expect(missing.output()).toMatch(/CHANNEL_SECRETS_KEY: is required/);
    const short = runService("channels", { ...env, CHANNEL_SECRETS_KEY: Buffer.alloc(16).toString("base64") });
    expect((await short.exited).code).toBe(78);
    expect(short.output()).toMatch(/CHANNEL_SECRETS_KEY: expected 32 bytes in base64/);
  });

  it("refuses to start the gateway without a token-signing secret, or with a short one, and never echoes it", async () => {
    const env = { MONGO_URL: "mongodb://127.0.0.1:1", KAFKA_BROKERS: "127.0.0.1:1", LOG_LEVEL: "info" };
    const missing = runService("gateway", env);
    expect((await missing.exited).code).toBe(78);
    expect(missing.output()).toMatch(/ACCESS_TOKEN_SECRET: is required/);
    const short = runService("gateway", { ...env, ACCESS_TOKEN_SECRET: "tooshort-secret" });
    expect((await short.exited).code).toBe(78);
    expect(short.output()).toMatch(/ACCESS_TOKEN_SECRET: must be at least 32 characters/);
    expect(short.output()).not.toContain("tooshort-secret");
  });
});
