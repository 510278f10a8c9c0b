import { Metadata, status as Status, type ServiceError, type StatusObject } from "@grpc/grpc-js";

export { Status };

/** Trailer that carries the name of the offending request field with INVALID_ARGUMENT, for clients to show. */
export const FIELD_TRAILER = "chatcrm-field";

/**
 * An error meant for the caller: its code and message cross the wire as they are, so the message must be
 * written for a person and must not leak internals. Anything else a handler throws becomes INTERNAL with a
 * generic message (and is logged in full on the server).
 */
export class RpcError extends Error {
  override readonly name = "RpcError";
  constructor(
    readonly code: Status,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }

  get codeName(): string {
    return Status[this.code] ?? String(this.code);
  }
}

export const invalidArgument = (field: string, problem: string) => new RpcError(Status.INVALID_ARGUMENT, `${field}: ${problem}`, field);
export const notFound = (what: string) => new RpcError(Status.NOT_FOUND, `${what} not found`);
export const unauthenticated = (why: string) => new RpcError(Status.UNAUTHENTICATED, why);
export const failedPrecondition = (why: string) => new RpcError(Status.FAILED_PRECONDITION, why);
export const unavailable = (why: string) => new RpcError(Status.UNAVAILABLE, why);

/** Server side: what goes back to the caller for an error a handler threw. */
export function toStatus(err: unknown): Partial<StatusObject> & { code: Status; details: string } {
  if (err instanceof RpcError) {
    const metadata = new Metadata();
    // Metadata values must be printable ASCII; a field path may name a user's variable in any script.
    if (err.field) metadata.set(FIELD_TRAILER, encodeURIComponent(err.field));
    return { code: err.code, details: err.message, metadata };
  }
  return { code: Status.INTERNAL, details: "internal error" };
}

/** Client side: a grpc-js ServiceError as an RpcError, keeping the code, the message and the field trailer. */
export function fromServiceError(err: ServiceError): RpcError {
  const field = err.metadata?.get(FIELD_TRAILER)[0];
  return new RpcError(err.code ?? Status.UNKNOWN, err.details || err.message, field === undefined ? undefined : safeDecode(String(field)));
}

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && "metadata" in err;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
