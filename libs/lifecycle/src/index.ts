export { redactUrl, startBackend, type BackendConfig, type BackendContext, type BackendDefinition, type RunningBackend } from "./backend";
export { ReadinessMonitor, type ReadinessCheck } from "./readiness-monitor";
export { runMain, type Stoppable } from "./run-main";
