import type { Metadata, ServerUnaryCall } from "@grpc/grpc-js";

// grpc-js does not export the common base of its server call types; every one of them extends this.
type ServerSurfaceCall = ServerUnaryCall<unknown, unknown>;
import { unauthenticated } from "./errors";

/** Metadata key carrying the project (tenant) the gateway derived from the caller's credentials. */
export const PROJECT_METADATA_KEY = "x-chatcrm-project";

/** Metadata keys carrying the operator on whose behalf the gateway calls, and their role in the project. */
export const OPERATOR_METADATA_KEY = "x-chatcrm-operator";
export const ROLE_METADATA_KEY = "x-chatcrm-role";

/** admin and operator are people (seed 002 roles); service is another backend acting for the whole project. */
export type ViewerRole = "admin" | "operator" | "service";

/** Who is looking, as the gateway derived it from the credentials. */
export interface Viewer {
  role: ViewerRole;
  /** Empty for services. */
  operatorId: string;
}

/** What a handler knows about its call besides the request. */
export interface CallContext {
  readonly method: string;
  readonly metadata: Metadata;
  /** Aborted when the caller cancels or the deadline passes. */
  readonly signal: AbortSignal;
  readonly deadline: Date | undefined;
  /** The project the call is scoped to; throws UNAUTHENTICATED when the caller sent none. */
  projectId(): string;
  /** The caller's role and operator id; a call without them is a service acting for the whole project. */
  viewer(): Viewer;
}

export function createCallContext(method: string, call: ServerSurfaceCall): CallContext {
  const controller = new AbortController();
  call.on("cancelled", () => controller.abort(new Error("call cancelled")));
  const rawDeadline = call.getDeadline();
  const deadline = rawDeadline instanceof Date ? rawDeadline : Number.isFinite(rawDeadline) ? new Date(rawDeadline) : undefined;
  return {
    method,
    metadata: call.metadata,
    signal: controller.signal,
    deadline,
    projectId() {
      const value = call.metadata.get(PROJECT_METADATA_KEY)[0];
      const id = typeof value === "string" ? value.trim() : "";
      if (!id) throw unauthenticated(`the call carries no project scope (${PROJECT_METADATA_KEY} metadata)`);
      return id;
    },
    viewer() {
      const operatorId = String(call.metadata.get(OPERATOR_METADATA_KEY)[0] ?? "").trim();
      const role = String(call.metadata.get(ROLE_METADATA_KEY)[0] ?? (operatorId ? "operator" : "service")).trim();
      if (role !== "admin" && role !== "operator" && role !== "service") throw unauthenticated(`unknown role "${role}" in ${ROLE_METADATA_KEY} metadata`);
      if (role === "operator" && !operatorId) throw unauthenticated(`an operator call carries no ${OPERATOR_METADATA_KEY} metadata`);
      return { role, operatorId };
    },
  };
}

/** Metadata as a plain string map, for trace-context extraction. */
export function metadataCarrier(metadata: Metadata): Record<string, string | undefined> {
  const carrier: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(metadata.getMap())) carrier[key] = typeof value === "string" ? value : undefined;
  return carrier;
}
