import { HealthCheckResponse_ServingStatus as ServingStatus, Health } from "@chatcrm/contracts/grpc/health/v1/health_pb";
import { notFound } from "./errors";
import type { ServiceHandlers } from "./types";

export { ServingStatus };

/**
 * Serving status per service name, as grpc.health.v1 reports it. "" is the whole server, which is what
 * Kubernetes' grpc probes ask for. Starts NOT_SERVING: a server is not ready until something says it is.
 */
export class HealthState {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly listeners = new Set<(service: string, status: ServingStatus) => void>();

  constructor(services: string[] = []) {
    for (const name of ["", ...services]) this.statuses.set(name, ServingStatus.NOT_SERVING);
  }

  set(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const listener of this.listeners) listener(service, status);
  }

  /** Sets every known service, the server's "" included. */
  setAll(status: ServingStatus): void {
    for (const name of this.statuses.keys()) this.set(name, status);
  }

  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  subscribe(listener: (service: string, status: ServingStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export function healthHandlers(state: HealthState): ServiceHandlers<typeof Health> {
  return {
    async check(request) {
      const status = state.get(request.service);
      if (status === undefined) throw notFound(`service "${request.service}"`);
      return { status };
    },
    async *watch(request, ctx) {
      const queue: ServingStatus[] = [state.get(request.service) ?? ServingStatus.SERVICE_UNKNOWN];
      let wake: (() => void) | undefined;
      const unsubscribe = state.subscribe((service, status) => {
        if (service !== request.service) return;
        queue.push(status);
        wake?.();
      });
      ctx.signal.addEventListener("abort", () => wake?.(), { once: true });
      try {
        while (!ctx.signal.aborted) {
          const next = queue.shift();
          if (next !== undefined) yield { status: next };
          else await new Promise<void>((resolve) => (wake = resolve));
        }
      } finally {
        unsubscribe();
      }
    },
  };
}
