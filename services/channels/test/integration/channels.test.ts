import { describeServiceSkeleton, testLogger } from "@chatcrm/testing";
import { startChannels } from "../../src/app";

describeServiceSkeleton("channels", (config) => startChannels(config, testLogger("channels")), ["channels.inbound-messages.v1", "channels.send-commands.v1", "channels.delivery-statuses.v1"]);
