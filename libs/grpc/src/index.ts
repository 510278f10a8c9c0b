export { createCallContext, metadataCarrier, OPERATOR_METADATA_KEY, PROJECT_METADATA_KEY, ROLE_METADATA_KEY, type CallContext, type Viewer, type ViewerRole } from "./call-context";
export { createGrpcClient, type GrpcClientOptions } from "./client";
export {
  failedPrecondition,
  FIELD_TRAILER,
  fromServiceError,
  invalidArgument,
  notFound,
  RpcError,
  Status,
  toStatus,
  unauthenticated,
  unavailable,
} from "./errors";
export { HealthState, healthHandlers, ServingStatus } from "./health";
export { GrpcServer, type GrpcServerOptions } from "./server";
export { methodPath, toServiceDefinition } from "./service-definition";
export type { AnyService, CallOptions, GrpcClient, ServiceHandlers } from "./types";
