import type { Logger } from "@chatcrm/logging";
import { Topics } from "@chatcrm/kafka";
import { startBackend } from "@chatcrm/lifecycle";
import type { Config } from "./config";

/** Starts the flow-runtime service; main.ts runs it, tests start it on an ephemeral port. */
export function startFlowRuntime(config: Config, logger: Logger) {
  return startBackend({ name: "flow-runtime", config, logger, topics: [Topics.resolvedMessages, Topics.flowCommands, Topics.sendCommands] });
}
