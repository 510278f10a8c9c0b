import type { Logger } from "@chatcrm/logging";

export interface Stoppable {
  stop(): Promise<void>;
}

/**
 * The tail of every service's main(): start, then stop gracefully on SIGTERM or SIGINT and exit 0; a failed
 * start or a stop that outlives the grace period exits non-zero. Also flushes telemetry last.
 */
export function runMain(options: { logger: Logger; start: () => Promise<Stoppable>; shutdownTimeoutMs: number; afterStop?: () => Promise<void> }): void {
  const { logger } = options;
  let running: Stoppable | undefined;
  let exiting = false;

  const exit = async (code: number) => {
    await options.afterStop?.().catch(() => undefined);
    process.exit(code);
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (exiting) return;
    exiting = true;
    logger.info({ signal }, "shutdown requested");
    const force = setTimeout(() => {
      logger.error("graceful shutdown took too long; exiting");
      process.exit(1);
    }, options.shutdownTimeoutMs + 5_000);
    force.unref();
    void (running?.stop() ?? Promise.resolve()).then(
      () => exit(0),
      (err) => {
        logger.error({ err }, "shutdown failed");
        void exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  options.start().then(
    (started) => {
      running = started;
      if (exiting) void started.stop().then(() => exit(0));
    },
    (err: Error) => {
      logger.fatal({ err: { message: err.message, cause: (err.cause as Error | undefined)?.message } }, err.message);
      void exit(1);
    },
  );
}
