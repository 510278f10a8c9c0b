import type { Logger } from "@chatcrm/logging";

import { startBackend } from "@chatcrm/lifecycle";
import type { Config } from "./config";

/** Starts the integrations service; main.ts runs it, tests start it on an ephemeral port. */
export function startIntegrations(config: Config, logger: Logger) {
  return startBackend({ name: "integrations", config, logger, topics: [] });
}
