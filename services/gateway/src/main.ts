import { telemetry } from "./instrument";
import { loadConfigOrExit } from "@chatcrm/config";
import { runMain } from "@chatcrm/lifecycle";
import { createLogger } from "@chatcrm/logging";
import { startGateway } from "./app";
import { runCreateProject } from "./cli/create-project";
import { configSchema } from "./config";

// `node main.js create-project …` is the first-run command (a project and its admin); anything else serves.
if (process.argv[2] === "create-project") {
  const logger = createLogger({ service: "gateway-cli", level: "warn" });
  void runCreateProject(process.argv.slice(3), process.env, logger)
    .then((status) => (process.exitCode = status))
    .catch((err: unknown) => {
      console.error(`create-project failed: ${(err as Error).message}`);
      process.exitCode = 1;
    })
    .finally(() => telemetry.shutdown());
} else {
  const config = loadConfigOrExit(configSchema, process.env);
  const logger = createLogger({ service: "gateway", level: config.LOG_LEVEL });
  runMain({ logger, shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS, start: () => startGateway(config, logger), afterStop: () => telemetry.shutdown() });
}
