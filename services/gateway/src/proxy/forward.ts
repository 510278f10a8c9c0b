import type { DescService } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { GrpcClient } from "@chatcrm/grpc";
import { backendMetadata, callerKey, type Caller } from "../access/caller";
import { backendCall, fromBackend } from "./connect-errors";

// Server streams (the whole filtered base) may run long; unary calls get the configured deadline.
const STREAM_TIMEOUT_MS = 30 * 60_000;

/** The caller the guard proved; a handler that runs without one is a wiring mistake, not a client error. */
export function callerOf(ctx: HandlerContext): Caller {
  const caller = ctx.values.get(callerKey);
  if (!caller) throw new Error(`no authenticated caller on ${ctx.method.name}: the guard did not run`);
  return caller;
}

/**
 * The public face of a backend service: every method calls the same method on the backend with the caller's
 * scope as metadata. The gateway adds no logic here; the guard has already checked who may call.
 */
export function forwardService<S extends DescService>(service: S, client: GrpcClient<S>, backend: string, timeoutMs: number): ServiceImpl<S> {
  const impl: Record<string, unknown> = {};
  const calls = client as unknown as Record<string, (req: unknown, opts: unknown) => unknown>;
  for (const method of service.methods) {
    const call = calls[method.localName]!;
    const options = (ctx: HandlerContext, timeout: number) => ({ metadata: backendMetadata(callerOf(ctx)), timeoutMs: timeout, signal: ctx.signal });
    if (method.methodKind === "unary") {
      impl[method.localName] = (req: unknown, ctx: HandlerContext) => backendCall(backend, call(req, options(ctx, timeoutMs)) as Promise<unknown>);
    } else if (method.methodKind === "server_streaming") {
      impl[method.localName] = async function* (req: unknown, ctx: HandlerContext) {
        try {
          yield* call(req, options(ctx, STREAM_TIMEOUT_MS)) as AsyncIterable<unknown>;
        } catch (err) {
          throw fromBackend(backend, err);
        }
      };
    }
  }
  return impl as ServiceImpl<S>;
}
