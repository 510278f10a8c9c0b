import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { GrpcInstrumentation } from "@opentelemetry/instrumentation-grpc";
import { HttpInstrumentation } from "@opentelemetry/instrumentation-http";
import { KafkaJsInstrumentation } from "@opentelemetry/instrumentation-kafkajs";
import { MongoDBInstrumentation } from "@opentelemetry/instrumentation-mongodb";
import { MongooseInstrumentation } from "@opentelemetry/instrumentation-mongoose";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { NodeSDK } from "@opentelemetry/sdk-node";
import { BatchSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";

export interface TelemetrySettings {
  serviceName: string;
  serviceVersion?: string;
  /** OTLP/HTTP collector base URL (e.g. http://otel-collector:4318). Without it spans are made but not exported. */
  otlpEndpoint?: string;
  /** Extra processors, e.g. an in-memory exporter in tests. */
  spanProcessors?: SpanProcessor[];
}

export interface Telemetry {
  shutdown(): Promise<void>;
}

/**
 * Starts tracing with the gRPC, HTTP, MongoDB, mongoose and kafkajs instrumentations. It must run before any of
 * those modules is first required, because the instrumentations patch them at load time: each service's
 * src/instrument.ts calls it and is the first import of src/main.ts.
 *
 * Spans are created even when nothing exports them, so trace ids still reach the logs and the headers of
 * outgoing calls and events.
 */
export function startTelemetry(settings: TelemetrySettings): Telemetry {
  const processors: SpanProcessor[] = [...(settings.spanProcessors ?? [])];
  if (settings.otlpEndpoint) {
    const url = new URL("/v1/traces", settings.otlpEndpoint).toString();
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url })));
  }
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: settings.serviceName,
      [ATTR_SERVICE_VERSION]: settings.serviceVersion ?? "dev",
    }),
    spanProcessors: processors,
    // Metrics and logs are not exported through OpenTelemetry; logs go to stdout as JSON (libs/logging).
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation(),
      new GrpcInstrumentation(),
      new MongoDBInstrumentation(),
      new MongooseInstrumentation(),
      new KafkaJsInstrumentation(),
    ],
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
