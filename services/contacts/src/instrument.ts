// Loaded first by main.ts: the instrumentations must patch gRPC, HTTP, MongoDB and kafkajs before they load.
import { startTelemetry } from "@chatcrm/telemetry";

export const telemetry = startTelemetry({ serviceName: "contacts", otlpEndpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT });
