import { context, propagation, SpanKind, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { activeTraceId, injectTraceContext, runInChildSpan, runInRemoteContext } from "./index";

const exporter = new InMemorySpanExporter();

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
});
afterAll(() => {
  trace.disable();
  context.disable();
  propagation.disable();
});
beforeEach(() => exporter.reset());

describe("trace propagation helpers", () => {
  it("continues the producer's trace on the consumer side", async () => {
    const carrier = await runInChildSpan({ name: "send", kind: SpanKind.PRODUCER }, async () => injectTraceContext({}));
    expect(carrier.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);

    const seen = await runInRemoteContext(carrier, { name: "process", kind: SpanKind.CONSUMER }, async () => activeTraceId());
    const [producer, consumer] = exporter.getFinishedSpans();
    expect(seen).toBe(producer!.spanContext().traceId);
    expect(consumer!.spanContext().traceId).toBe(producer!.spanContext().traceId);
    expect(consumer!.parentSpanContext?.spanId).toBe(producer!.spanContext().spanId);
  });

  it("adds no span when the active span already continues the remote trace", async () => {
    const carrier = await runInChildSpan({ name: "send", kind: SpanKind.PRODUCER }, async () => injectTraceContext({}));
    exporter.reset();
    await runInRemoteContext(carrier, { name: "instrumented", kind: SpanKind.CONSUMER }, () =>
      runInRemoteContext(carrier, { name: "ours", kind: SpanKind.CONSUMER }, async () => undefined),
    );
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(["instrumented"]);
  });

  it("records a failure on the span and rethrows", async () => {
    await expect(runInRemoteContext({}, { name: "boom", kind: SpanKind.SERVER }, async () => Promise.reject(new Error("nope")))).rejects.toThrow("nope");
    expect(exporter.getFinishedSpans()[0]!.status.message).toBe("nope");
  });
});
