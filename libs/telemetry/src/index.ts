export { startTelemetry, type Telemetry, type TelemetrySettings } from "./start-telemetry";
export { injectTraceContext, runInChildSpan, runInRemoteContext, SpanKind, type RemoteSpanOptions } from "./propagation";
export { activeTraceId } from "./active-trace-id";
