import { isSpanContextValid, trace } from "@opentelemetry/api";

/** The trace id of the active span, or undefined outside a traced operation. */
export function activeTraceId(): string | undefined {
  const ctx = trace.getActiveSpan()?.spanContext();
  return ctx && isSpanContextValid(ctx) ? ctx.traceId : undefined;
}
