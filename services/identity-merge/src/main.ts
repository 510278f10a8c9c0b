import { telemetry } from "./instrument";
import { loadConfigOrExit } from "@chatcrm/config";
import { runMain } from "@chatcrm/lifecycle";
import { createLogger } from "@chatcrm/logging";
import { startIdentityMerge } from "./app";
import { configSchema } from "./config";

const config = loadConfigOrExit(configSchema, process.env);
const logger = createLogger({ service: "identity-merge", level: config.LOG_LEVEL });
runMain({ logger, shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS, start: () => startIdentityMerge(config, logger), afterStop: () => telemetry.shutdown() });
