import { telemetry } from "./instrument";
import { loadConfigOrExit } from "@chatcrm/config";
import { runMain } from "@chatcrm/lifecycle";
import { createLogger } from "@chatcrm/logging";
import { startFlowRuntime } from "./app";
import { configSchema } from "./config";

const config = loadConfigOrExit(configSchema, process.env);
const logger = createLogger({ service: "flow-runtime", level: config.LOG_LEVEL });
runMain({ logger, shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS, start: () => startFlowRuntime(config, logger), afterStop: () => telemetry.shutdown() });
