import { create, fromBinary, toBinary, type DescFile, type DescMessage, type DescEnum } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import {
  ServerReflection,
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "@chatcrm/contracts/grpc/reflection/v1/reflection_pb";
import { methodPath } from "./service-definition";

/** Every file the given ones need, themselves included, in dependency order. */
function closure(files: DescFile[]): DescFile[] {
  const seen = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (seen.has(file.name)) return;
    file.dependencies.forEach(visit);
    seen.set(file.name, file);
  };
  files.forEach(visit);
  return [...seen.values()];
}

/** Fully qualified symbol → the file declaring it, for file_containing_symbol. */
function symbolIndex(files: DescFile[]): Map<string, DescFile> {
  const index = new Map<string, DescFile>();
  const addEnum = (e: DescEnum, file: DescFile) => index.set(e.typeName, file);
  const addMessage = (m: DescMessage, file: DescFile) => {
    index.set(m.typeName, file);
    m.nestedMessages.forEach((n) => addMessage(n, file));
    m.nestedEnums.forEach((n) => addEnum(n, file));
  };
  for (const file of files) {
    file.messages.forEach((m) => addMessage(m, file));
    file.enums.forEach((e) => addEnum(e, file));
    for (const service of file.services) {
      index.set(service.typeName, file);
      service.methods.forEach((m) => index.set(`${service.typeName}.${m.name}`, file));
    }
  }
  return index;
}

/**
 * Serves grpc.reflection so grpcurl and similar tools can list and call the services without the .proto files.
 * The descriptors come from the generated code (protobuf-es embeds them), so they always match what is served.
 * The handler is registered under v1 and under v1alpha, whose messages are identical on the wire, for older
 * clients that only speak v1alpha.
 */
export function addReflection(server: grpc.Server, files: DescFile[], serviceNames: string[]): void {
  const reflectionName = ServerReflection.typeName;
  const all = closure(files);
  const byName = new Map(all.map((f) => [f.name, f]));
  const symbols = symbolIndex(all);
  const names = [...serviceNames, reflectionName];

  const filesWithDeps = (file: DescFile): Uint8Array[] => closure([file]).map((f) => toBinary(FileDescriptorProtoSchema, f.proto));

  const answer = (request: ServerReflectionRequest): ServerReflectionResponse => {
    const base = { validHost: request.host, originalRequest: request };
    const found = (file: DescFile | undefined, what: string) =>
      file
        ? create(ServerReflectionResponseSchema, { ...base, messageResponse: { case: "fileDescriptorResponse", value: { fileDescriptorProto: filesWithDeps(file) } } })
        : create(ServerReflectionResponseSchema, { ...base, messageResponse: { case: "errorResponse", value: { errorCode: grpc.status.NOT_FOUND, errorMessage: `${what} not found` } } });
    const req = request.messageRequest;
    switch (req.case) {
      case "listServices":
        return create(ServerReflectionResponseSchema, { ...base, messageResponse: { case: "listServicesResponse", value: { service: names.map((name) => ({ name })) } } });
      case "fileByFilename":
        return found(byName.get(req.value), `file ${req.value}`);
      case "fileContainingSymbol":
        return found(symbols.get(req.value), `symbol ${req.value}`);
      default:
        return create(ServerReflectionResponseSchema, {
          ...base,
          messageResponse: { case: "errorResponse", value: { errorCode: grpc.status.UNIMPLEMENTED, errorMessage: "extensions are not supported" } },
        });
    }
  };

  const method = ServerReflection.methods[0]!;
  const definition = (path: string): grpc.ServiceDefinition => ({
    serverReflectionInfo: {
      path,
      requestStream: true,
      responseStream: true,
      requestSerialize: (m: ServerReflectionRequest) => Buffer.from(toBinary(ServerReflectionRequestSchema, m)),
      requestDeserialize: (b: Buffer) => fromBinary(ServerReflectionRequestSchema, b),
      responseSerialize: (m: ServerReflectionResponse) => Buffer.from(toBinary(ServerReflectionResponseSchema, m)),
      responseDeserialize: (b: Buffer) => fromBinary(ServerReflectionResponseSchema, b),
    },
  });
  const handler = {
    serverReflectionInfo: (call: grpc.ServerDuplexStream<ServerReflectionRequest, ServerReflectionResponse>) => {
      call.on("data", (request: ServerReflectionRequest) => call.write(answer(request)));
      call.on("end", () => call.end());
    },
  };
  server.addService(definition(methodPath(method)), handler);
  server.addService(definition(methodPath(method).replace("grpc.reflection.v1.", "grpc.reflection.v1alpha.")), handler);
}
