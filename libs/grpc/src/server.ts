import { create, type DescFile, type DescMessage, type DescMethod, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "@chatcrm/logging";
import { runInRemoteContext, SpanKind } from "@chatcrm/telemetry";
import { createCallContext, metadataCarrier } from "./call-context";
import { RpcError, toStatus } from "./errors";
import { addReflection } from "./reflection";
import { methodPath, toServiceDefinition } from "./service-definition";
import type { AnyService, ServiceHandlers } from "./types";

type AnyMessage = MessageShape<DescMessage>;
type AnyHandler = (request: AnyMessage, ctx: ReturnType<typeof createCallContext>) => unknown;

export interface GrpcServerOptions {
  logger: Logger;
  /** Serve grpc.reflection (v1 and v1alpha) for the added services; on by default. */
  reflection?: boolean;
  /** Largest request accepted, in bytes; grpc-js answers RESOURCE_EXHAUSTED above it. */
  maxReceiveMessageBytes?: number;
}

/**
 * A @grpc/grpc-js server whose services are described by protobuf-es descriptors and implemented by typed
 * async handlers. Errors thrown as RpcError reach the caller as they are; anything else is logged and
 * answered with INTERNAL, so no stack trace or internal detail crosses the wire.
 */
export class GrpcServer {
  private readonly server: grpc.Server;
  private readonly files = new Set<DescFile>();
  private readonly serviceNames: string[] = [];
  private started = false;

  constructor(private readonly options: GrpcServerOptions) {
    this.server = new grpc.Server({
      "grpc.max_receive_message_length": options.maxReceiveMessageBytes ?? 4 * 1024 * 1024,
    });
  }

  addService<S extends AnyService>(service: S, handlers: ServiceHandlers<S>): this {
    if (this.started) throw new Error("add services before the server starts");
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const method of service.methods) {
      const handler = (handlers as Record<string, AnyHandler>)[method.localName];
      if (!handler) throw new Error(`${service.typeName}: no handler for ${method.name}`);
      implementation[method.localName] = this.wrap(method, handler);
    }
    this.server.addService(toServiceDefinition(service), implementation);
    this.serviceNames.push(service.typeName);
    this.files.add(service.file);
    return this;
  }

  /** Binds and starts; returns the bound port (useful with port 0 in tests). */
  async listen(host: string, port: number): Promise<number> {
    if (this.options.reflection !== false) addReflection(this.server, [...this.files], [...this.serviceNames]);
    this.started = true;
    return new Promise((resolve, reject) => {
      this.server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(new Error(`cannot listen for gRPC on ${host}:${port}: ${err.message}`)) : resolve(bound),
      );
    });
  }

  /** Stops taking calls and waits for running ones up to timeoutMs, then cuts the rest off. */
  async shutdown(timeoutMs: number): Promise<void> {
    if (!this.started) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, timeoutMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private wrap(method: DescMethod, handler: AnyHandler): grpc.UntypedHandleCall {
    const path = methodPath(method);
    const spanOptions = { name: path.slice(1), kind: SpanKind.SERVER, attributes: { "rpc.system": "grpc", "rpc.method": method.name } };
    if (method.methodKind === "unary") {
      return (call: grpc.ServerUnaryCall<AnyMessage, AnyMessage>, callback: grpc.sendUnaryData<AnyMessage>) => {
        const ctx = createCallContext(path, call);
        runInRemoteContext(metadataCarrier(call.metadata), spanOptions, async () => handler(call.request, ctx) as Promise<unknown>)
          .then((response) => callback(null, create(method.output, response as never)))
          .catch((err: unknown) => callback(this.fail(path, err)));
      };
    }
    if (method.methodKind === "server_streaming") {
      return (call: grpc.ServerWritableStream<AnyMessage, AnyMessage>) => {
        const ctx = createCallContext(path, call);
        runInRemoteContext(metadataCarrier(call.metadata), spanOptions, async () => {
          for await (const item of handler(call.request, ctx) as AsyncIterable<unknown>) {
            if (call.cancelled) return;
            // Respect backpressure so a slow reader cannot make the server buffer a whole stream.
            if (!call.write(create(method.output, item as never))) await new Promise((r) => call.once("drain", r));
          }
        })
          .then(() => call.end())
          .catch((err: unknown) => {
            if (!call.cancelled) call.emit("error", this.fail(path, err));
          });
      };
    }
    throw new Error(`${path}: ${method.methodKind} methods are not supported`);
  }

  private fail(path: string, err: unknown): Partial<grpc.StatusObject> {
    if (!(err instanceof RpcError)) this.options.logger.error({ err, method: path }, "gRPC handler failed");
    try {
      return toStatus(err);
    } catch (mappingError) {
      // An error that cannot even be turned into a status must still answer the call, not leave it to time out.
      this.options.logger.error({ err: mappingError, method: path }, "could not map a handler error to a gRPC status");
      return { code: grpc.status.INTERNAL, details: "internal error" };
    }
  }
}
