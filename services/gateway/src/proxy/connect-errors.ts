import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { FIELD_TRAILER, RpcError, Status } from "@chatcrm/grpc";
import type { Logger } from "@chatcrm/logging";

/**
 * A backend's failure as the public caller should see it. Business errors pass through: the services write
 * them for people. Transport failures name the service but never its address, and internal errors say nothing.
 */
export function fromBackend(service: string, err: unknown): unknown {
  if (!(err instanceof RpcError)) return err;
  switch (err.code) {
    case Status.UNAVAILABLE:
      return new RpcError(Status.UNAVAILABLE, `the ${service} service is not reachable right now: try again shortly`);
    case Status.DEADLINE_EXCEEDED:
      return new RpcError(Status.DEADLINE_EXCEEDED, `the ${service} service did not answer in time`);
    case Status.INTERNAL:
    case Status.UNKNOWN:
    case Status.DATA_LOSS:
      return new RpcError(Status.INTERNAL, "internal error");
    default:
      return err;
  }
}

/** Awaits a backend call and gives its failure the public face above. */
export async function backendCall<T>(service: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw fromBackend(service, err);
  }
}

/** Our error type in Connect's: gRPC and Connect share the numeric codes; the offending field rides in a header. */
export function toConnectError(err: unknown, logger: Logger, method: string): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof RpcError) {
    const metadata = new Headers();
    if (err.field) metadata.set(FIELD_TRAILER, encodeURIComponent(err.field));
    return new ConnectError(err.message, err.code as unknown as Code, metadata);
  }
  logger.error({ err, method }, "public call failed");
  return new ConnectError("internal error", Code.Internal);
}

/** Outermost interceptor: whatever a handler, the guard or a backend throws leaves as a clean ConnectError. */
export function errorBoundary(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const method = `${req.service.typeName}/${req.method.name}`;
    try {
      const res = await next(req);
      if (!res.stream) return res;
      const messages = res.message;
      return {
        ...res,
        message: (async function* () {
          try {
            yield* messages;
          } catch (err) {
            throw toConnectError(err, logger, method);
          }
        })(),
      };
    } catch (err) {
      throw toConnectError(err, logger, method);
    }
  };
}
