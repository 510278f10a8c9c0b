import { HealthState, ServingStatus } from "@chatcrm/grpc";
import type { Logger } from "@chatcrm/logging";

export interface ReadinessCheck {
  name: string;
  /** Resolves when the dependency answers; throws (or exceeds the timeout) when it does not. */
  probe: () => Promise<void>;
}

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string) =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    promise.then(resolve, reject).finally(() => clearTimeout(timer));
  });

/**
 * Probes the service's dependencies on an interval and sets grpc.health.v1 accordingly: SERVING only while every
 * check passes. Kubernetes' readiness probe then takes a replica out of rotation when its database or Kafka is
 * gone, instead of a health check that always says yes.
 */
export class ReadinessMonitor {
  private timer: NodeJS.Timeout | undefined;
  private lastProblems = "";
  private stopped = false;

  constructor(
    private readonly health: HealthState,
    private readonly checks: ReadinessCheck[],
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {}

  /** Runs the checks once, updates the health state, and returns the problems found (empty when ready). */
  async probeOnce(): Promise<string[]> {
    const timeout = Math.max(1_000, Math.min(this.intervalMs, 5_000));
    const results = await Promise.allSettled(this.checks.map((c) => withTimeout(c.probe(), timeout, c.name)));
    const problems = results.flatMap((r, i) => (r.status === "rejected" ? [`${this.checks[i]!.name}: ${(r.reason as Error)?.message ?? r.reason}`] : []));
    if (this.stopped) return problems;
    this.health.setAll(problems.length === 0 ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    const summary = problems.join("; ");
    if (summary !== this.lastProblems) {
      if (problems.length) this.logger.warn({ problems }, "not ready");
      else this.logger.info("ready");
      this.lastProblems = summary;
    }
    return problems;
  }

  start(): void {
    const loop = async () => {
      await this.probeOnce().catch((err) => this.logger.error({ err }, "readiness probe failed"));
      if (!this.stopped) this.timer = setTimeout(loop, this.intervalMs);
    };
    void loop();
  }

  /** Stops probing and reports NOT_SERVING, so traffic drains before the server closes. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.health.setAll(ServingStatus.NOT_SERVING);
  }
}
