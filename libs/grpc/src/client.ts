import { create, type DescMessage, type DescMethod, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { injectTraceContext } from "@chatcrm/telemetry";
import { fromServiceError, isServiceError } from "./errors";
import { CLIENT_METHOD_PREFIX, toClientDefinition } from "./service-definition";
import type { AnyService, CallOptions, GrpcClient } from "./types";

type AnyMessage = MessageShape<DescMessage>;

export interface GrpcClientOptions {
  /** Deadline for calls that set none; every call gets one so a stuck peer cannot hang the caller. */
  defaultTimeoutMs?: number;
  /** Metadata sent with every call, e.g. a fixed project scope. */
  metadata?: Record<string, string>;
}

function buildMetadata(defaults: Record<string, string> | undefined, extra: Record<string, string> | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries({ ...defaults, ...extra })) metadata.set(k, v);
  for (const [k, v] of Object.entries(injectTraceContext({}))) metadata.set(k, v);
  return metadata;
}

/** A typed client for one service at host:port, over an insecure channel (in-cluster traffic). */
export function createGrpcClient<S extends AnyService>(service: S, address: string, options: GrpcClientOptions = {}): GrpcClient<S> {
  const Ctor = grpc.makeGenericClientConstructor(toClientDefinition(service), service.typeName);
  const raw = new Ctor(address, grpc.credentials.createInsecure()) as unknown as Record<string, (...args: unknown[]) => unknown> & grpc.Client;
  const defaultTimeout = options.defaultTimeoutMs ?? 10_000;
  const client: Record<string, unknown> = { close: () => raw.close() };

  const callOptions = (opts: CallOptions | undefined): grpc.CallOptions => ({ deadline: Date.now() + (opts?.timeoutMs ?? defaultTimeout) });

  for (const method of service.methods) {
    const invoke = raw[`${CLIENT_METHOD_PREFIX}${method.name}`]!.bind(raw);
    client[method.localName] = method.methodKind === "unary" ? unary(method, invoke) : serverStream(method, invoke);
  }

  function unary(method: DescMethod, invoke: (...args: unknown[]) => unknown) {
    return (request: unknown, opts?: CallOptions) =>
      new Promise<AnyMessage>((resolve, reject) => {
        // The caller's signal often outlives the call (a gateway request's): the listener goes when the call ends.
        const cancel = () => call.cancel();
        const call = invoke(create(method.input, request as never), buildMetadata(options.metadata, opts?.metadata), callOptions(opts), (err: unknown, res: AnyMessage) => {
          opts?.signal?.removeEventListener("abort", cancel);
          if (err) reject(isServiceError(err) ? fromServiceError(err) : err);
          else resolve(res);
        }) as grpc.ClientUnaryCall;
        opts?.signal?.addEventListener("abort", cancel, { once: true });
      });
  }

  function serverStream(method: DescMethod, invoke: (...args: unknown[]) => unknown) {
    return (request: unknown, opts?: CallOptions) => ({
      async *[Symbol.asyncIterator]() {
        const call = invoke(create(method.input, request as never), buildMetadata(options.metadata, opts?.metadata), callOptions(opts)) as grpc.ClientReadableStream<AnyMessage>;
        opts?.signal?.addEventListener("abort", () => call.cancel(), { once: true });
        try {
          for await (const item of call) yield item as AnyMessage;
        } catch (err) {
          throw isServiceError(err) ? fromServiceError(err) : err;
        } finally {
          // A consumer that stops early must not leave the stream open on the server.
          call.cancel();
        }
      },
    });
  }

  return client as GrpcClient<S>;
}
