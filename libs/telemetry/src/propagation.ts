import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context } from "@opentelemetry/api";

/**
 * Trace context across the gRPC and Kafka hops. The kafkajs and gRPC instrumentations already carry it when
 * they are loaded, but they cannot patch modules loaded by Jest's module system, and a hop must not depend
 * on which process loaded what. So libs/grpc and libs/kafka also inject and extract it themselves; when an
 * instrumentation has already continued the remote trace, these helpers notice and add nothing.
 */

/** Writes the active trace context (W3C traceparent/tracestate) into a string carrier. */
export function injectTraceContext(carrier: Record<string, string>): Record<string, string> {
  propagation.inject(context.active(), carrier);
  return carrier;
}

export interface RemoteSpanOptions {
  name: string;
  kind: SpanKind;
  attributes?: Attributes;
}

/**
 * Runs `fn` inside the trace whose context the carrier holds. If the active span already belongs to that trace
 * (an instrumentation started it), `fn` runs as is; otherwise a span of the given kind is started as the remote
 * span's child and ended when `fn` settles, recording an error if it throws.
 */
export async function runInRemoteContext<T>(
  carrier: Record<string, string | undefined>,
  options: RemoteSpanOptions,
  fn: () => Promise<T>,
): Promise<T> {
  const remote = propagation.extract(ROOT_CONTEXT, carrier, {
    keys: (c) => Object.keys(c),
    get: (c, key) => c[key],
  });
  const remoteTraceId = trace.getSpanContext(remote)?.traceId;
  const active = trace.getActiveSpan()?.spanContext();
  if (remoteTraceId && active && active.traceId === remoteTraceId) return fn();

  return runInSpan(remote, options, fn);
}

/** Runs `fn` in a new span that is a child of the active one, for a producer or client side of a hop. */
export function runInChildSpan<T>(options: RemoteSpanOptions, fn: () => Promise<T>): Promise<T> {
  return runInSpan(context.active(), options, fn);
}

/** Runs `fn` in a new span under `parent`, ending it when `fn` settles and recording an error if it throws. */
async function runInSpan<T>(parent: Context, options: RemoteSpanOptions, fn: () => Promise<T>): Promise<T> {
  const span = trace.getTracer("chatcrm").startSpan(options.name, { kind: options.kind, attributes: options.attributes }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), fn);
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}

export { SpanKind };
