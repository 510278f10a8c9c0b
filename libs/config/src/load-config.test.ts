import { z } from "zod";
import { ConfigError, loadConfig, serviceBaseSchema } from "./index";

const schema = serviceBaseSchema({ grpcPort: 50051, database: "chatcrm_test" });
const good = { MONGO_URL: "mongodb://127.0.0.1:27017", KAFKA_BROKERS: "127.0.0.1:9092, 127.0.0.2:9093" };

describe("loadConfig", () => {
  it("applies defaults and parses lists and numbers", () => {
    const config = loadConfig(schema, { ...good, GRPC_PORT: "6000", MONGO_TTL_INDEXES: "true" });
    expect(config.GRPC_PORT).toBe(6000);
    expect(config.KAFKA_BROKERS).toEqual(["127.0.0.1:9092", "127.0.0.2:9093"]);
    expect(config.MONGO_DATABASE).toBe("chatcrm_test");
    expect(config.MONGO_TTL_INDEXES).toBe(true);
    expect(config.LOG_LEVEL).toBe("info");
  });

  it.each([
    [{ ...good, GRPC_PORT: "abc" }, /GRPC_PORT: expected a port number \(got "abc"\)/],
    [{ ...good, GRPC_PORT: "70000" }, /GRPC_PORT: expected a port from 0 to 65535/],
    [{ KAFKA_BROKERS: good.KAFKA_BROKERS }, /MONGO_URL: is required \(it is not set\)/],
    [{ ...good, MONGO_URL: "postgres://x" }, /MONGO_URL: expected a MongoDB connection string/],
    [{ ...good, KAFKA_BROKERS: "localhost" }, /KAFKA_BROKERS: expected host:port pairs/],
    [{ ...good, LOG_LEVEL: "loud" }, /LOG_LEVEL: expected one of/],
  ])("names the bad variable: %j", (env, message) => {
    expect(() => loadConfig(schema, env)).toThrow(ConfigError);
    expect(() => loadConfig(schema, env)).toThrow(message);
  });

  it("reports every problem at once and never echoes a secret", () => {
    const withSecret = schema.extend({ CHANNEL_SECRET_KEY: z.string().length(64, { error: "expected 64 hex characters" }) });
    try {
      loadConfig(withSecret, { CHANNEL_SECRET_KEY: "hunter2" });
      throw new Error("expected a ConfigError");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems.join("\n");
      expect(problems).toMatch(/MONGO_URL/);
      expect(problems).toMatch(/KAFKA_BROKERS/);
      expect(problems).toMatch(/CHANNEL_SECRET_KEY: expected 64 hex characters \(got "\*\*\*"\)/);
      expect(problems).not.toMatch(/hunter2/);
    }
  });
});
