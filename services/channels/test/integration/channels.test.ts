import { describeServiceSkeleton, testLogger } from "@chatcrm/testing";
import { startChannels } from "../../src/app";
import { configSchema } from "../../src/config";
import { testSecretsKey } from "./harness";

describeServiceSkeleton(
  "channels",
  (base) => startChannels({ ...configSchema.parse({ MONGO_URL: base.MONGO_URL, KAFKA_BROKERS: base.KAFKA_BROKERS.join(","), CHANNEL_SECRETS_KEY: testSecretsKey(), WEBHOOK_HOST: "127.0.0.1", WEBHOOK_PORT: "0" }), ...base }, testLogger("channels")),
  ["channels.inbound-messages.v1", "channels.send-commands.v1", "channels.delivery-statuses.v1", "channels.subscriber-statuses.v1", "channels.widget-replies.v1"],
);
