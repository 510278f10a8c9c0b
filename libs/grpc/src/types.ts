import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { CallContext } from "./call-context";

export type AnyService = GenService<GenServiceMethods>;
type MethodsOf<S> = S extends GenService<infer M> ? M : never;

type Handler<M> = M extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? (request: MessageShape<I>, ctx: CallContext) => Promise<MessageInitShape<O>>
  : M extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? (request: MessageShape<I>, ctx: CallContext) => AsyncIterable<MessageInitShape<O>>
    : never;

/** The implementation of a service: one async function per unary method, one async iterable per server stream. */
export type ServiceHandlers<S extends AnyService> = { [K in keyof MethodsOf<S>]: Handler<MethodsOf<S>[K]> };

export interface CallOptions {
  /** Deadline relative to now; the client's default applies when omitted. */
  timeoutMs?: number;
  /** Extra request metadata, e.g. the project scope. */
  metadata?: Record<string, string>;
  signal?: AbortSignal;
}

type ClientMethod<M> = M extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
  : M extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? (request: MessageInitShape<I>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
    : never;

/** A typed client: the service's methods by localName, plus close(). Errors are thrown as RpcError. */
export type GrpcClient<S extends AnyService> = { [K in keyof MethodsOf<S>]: ClientMethod<MethodsOf<S>[K]> } & { close(): void };
