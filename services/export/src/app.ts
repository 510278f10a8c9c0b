import type { Logger } from "@chatcrm/logging";
import { Topics } from "@chatcrm/kafka";
import { startBackend } from "@chatcrm/lifecycle";
import type { Config } from "./config";

/** Starts the export service; main.ts runs it, tests start it on an ephemeral port. */
export function startExport(config: Config, logger: Logger) {
  return startBackend({ name: "export", config, logger, topics: [Topics.contactEvents] });
}
