import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

/**
 * Registers a tracer provider, the W3C propagator and a context manager for the current test file, with an
 * in-memory exporter to assert on. (The Node SDK's instrumentations cannot patch modules inside Jest's module
 * system; this sets up only what the libs' own propagation uses.) Returns the exporter and an uninstall.
 */
export function installTestTracing(): { exporter: InMemorySpanExporter; uninstall: () => void } {
  const exporter = new InMemorySpanExporter();
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  return {
    exporter,
    uninstall: () => {
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}
