import type { Logger } from "@chatcrm/logging";
import { Topics } from "@chatcrm/kafka";
import { startBackend } from "@chatcrm/lifecycle";
import type { Config } from "./config";

/** Starts the channels service; main.ts runs it, tests start it on an ephemeral port. */
export function startChannels(config: Config, logger: Logger) {
  return startBackend({ name: "channels", config, logger, topics: [Topics.inboundMessages, Topics.sendCommands, Topics.deliveryStatuses] });
}
