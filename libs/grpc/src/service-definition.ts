import { fromBinary, toBinary, type DescMessage, type DescMethod, type DescService, type MessageShape } from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";

/** The HTTP/2 path gRPC uses for a method: /<package>.<Service>/<Method>. */
export const methodPath = (method: DescMethod) => `/${method.parent.typeName}/${method.name}`;

function methodDefinition(method: DescMethod): MethodDefinition<MessageShape<DescMessage>, MessageShape<DescMessage>> {
  return {
    path: methodPath(method),
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: (msg) => Buffer.from(toBinary(method.input, msg)),
    requestDeserialize: (buf) => fromBinary(method.input, buf),
    responseSerialize: (msg) => Buffer.from(toBinary(method.output, msg)),
    responseDeserialize: (buf) => fromBinary(method.output, buf),
    originalName: method.localName,
  };
}

/**
 * A @grpc/grpc-js service definition built from a protobuf-es service descriptor, so one code generator
 * (protoc-gen-es) serves both the gateway's Connect API and the services' grpc-js servers and clients.
 * Methods are keyed by their localName (lowerCamelCase), as protobuf-es names them.
 */
export function toServiceDefinition(service: DescService): ServiceDefinition {
  return Object.fromEntries(service.methods.map((method) => [method.localName, methodDefinition(method)]));
}

/**
 * The definition a client is built from. grpc-js puts every method on the client's prototype, where a method
 * named like one of grpc.Client's own members (ChannelsService.GetChannel → getChannel) would replace it; the
 * OpenTelemetry gRPC instrumentation calls client.getChannel() on every call and recursed until the stack
 * overflowed. Client methods get a prefixed key and no originalName, so they never shadow the client's own.
 */
export const CLIENT_METHOD_PREFIX = "rpc$";

export function toClientDefinition(service: DescService): ServiceDefinition {
  return Object.fromEntries(service.methods.map((method) => [`${CLIENT_METHOD_PREFIX}${method.name}`, { ...methodDefinition(method), originalName: undefined }]));
}
