import { describeServiceSkeleton, serviceTestConfig, testLogger } from "@chatcrm/testing";
import { startChannels } from "../../src/app";
import { configSchema } from "../../src/config";
import { testSecretsKey } from "./harness";

describeServiceSkeleton(
  "channels",
  (base) => startChannels(serviceTestConfig(configSchema, base, { CHANNEL_SECRETS_KEY: testSecretsKey(), WEBHOOK_HOST: "127.0.0.1", WEBHOOK_PORT: "0" }), testLogger("channels")),
  ["channels.inbound-messages.v1", "channels.send-commands.v1", "channels.delivery-statuses.v1", "channels.subscriber-statuses.v1", "channels.widget-replies.v1"],
);
