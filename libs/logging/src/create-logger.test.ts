import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import { Writable } from "node:stream";
import { createLogger } from "./index";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { lines, stream };
}

describe("createLogger", () => {
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(new BasicTracerProvider());
  });
  afterAll(() => {
    trace.disable();
    context.disable();
  });

  it("writes JSON lines with the service and level", () => {
    const { lines, stream } = capture();
    createLogger({ service: "contacts", destination: stream }).info({ contactId: "c1" }, "card created");
    expect(lines[0]).toMatchObject({ service: "contacts", level: "info", msg: "card created", contactId: "c1" });
    expect(lines[0]).not.toHaveProperty("trace_id");
  });

  it("adds the active span's trace and span ids", () => {
    const { lines, stream } = capture();
    const log = createLogger({ service: "contacts", destination: stream });
    const span = trace.getTracer("test").startSpan("op");
    context.with(trace.setSpan(context.active(), span), () => log.warn("inside"));
    span.end();
    expect(lines[0]).toMatchObject({ trace_id: span.spanContext().traceId, span_id: span.spanContext().spanId, level: "warn" });
  });
});
