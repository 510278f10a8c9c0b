import type { Logger } from "@chatcrm/logging";
import { Topics } from "@chatcrm/kafka";
import { startBackend } from "@chatcrm/lifecycle";
import type { Config } from "./config";

/** Starts the contacts service; main.ts runs it, tests start it on an ephemeral port. */
export function startContacts(config: Config, logger: Logger) {
  return startBackend({ name: "contacts", config, logger, topics: [Topics.inboundMessages, Topics.deliveryStatuses, Topics.resolvedMessages, Topics.contactEvents, Topics.flowCommands] });
}
