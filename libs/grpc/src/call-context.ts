import type { Metadata, ServerUnaryCall } from "@grpc/grpc-js";

// grpc-js does not export the common base of its server call types; every one of them extends this.
type ServerSurfaceCall = ServerUnaryCall<unknown, unknown>;
import { unauthenticated } from "./errors";

/** Metadata key carrying the project (tenant) the gateway derived from the caller's credentials. */
export const PROJECT_METADATA_KEY = "x-chatcrm-project";

/** What a handler knows about its call besides the request. */
export interface CallContext {
  readonly method: string;
  readonly metadata: Metadata;
  /** Aborted when the caller cancels or the deadline passes. */
  readonly signal: AbortSignal;
  readonly deadline: Date | undefined;
  /** The project the call is scoped to; throws UNAUTHENTICATED when the caller sent none. */
  projectId(): string;
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
  };
}

/** Metadata as a plain string map, for trace-context extraction. */
export function metadataCarrier(metadata: Metadata): Record<string, string | undefined> {
  const carrier: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(metadata.getMap())) carrier[key] = typeof value === "string" ? value : undefined;
  return carrier;
}
