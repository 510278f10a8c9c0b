import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { Health, HealthCheckResponse_ServingStatus as S } from "@chatcrm/contracts/grpc/health/v1/health_pb";
import {
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
  type ServerReflectionResponse,
} from "@chatcrm/contracts/grpc/reflection/v1/reflection_pb";
import { SystemService } from "@chatcrm/contracts/chatcrm/system/v1/system_service_pb";
import { ChannelsService } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { toClientDefinition, toServiceDefinition } from "./service-definition";
import { testLogger } from "@chatcrm/testing";
import { createGrpcClient, GrpcServer, HealthState, healthHandlers, invalidArgument, OPERATOR_METADATA_KEY, PROJECT_METADATA_KEY, ROLE_METADATA_KEY, RpcError, Status } from "./index";

const logger = testLogger("grpc-test");
const servers: GrpcServer[] = [];
async function serve(setup: (server: GrpcServer) => void) {
  const server = new GrpcServer({ logger });
  setup(server);
  servers.push(server);
  return `127.0.0.1:${await server.listen("127.0.0.1", 0)}`;
}
afterAll(() => Promise.all(servers.map((s) => s.shutdown(1_000))));

describe("grpc-js client definitions", () => {
  it("never shadow grpc.Client's own members (ChannelsService.GetChannel vs Client.getChannel)", () => {
    const clientMembers = Object.getOwnPropertyNames(grpc.Client.prototype);
    // The server-side keys are protobuf-es local names, which do collide; the client must not use them.
    expect(Object.keys(toServiceDefinition(ChannelsService))).toContain("getChannel");
    const Ctor = grpc.makeGenericClientConstructor(toClientDefinition(ChannelsService), ChannelsService.typeName);
    const keys = Object.getOwnPropertyNames(Ctor.prototype).filter((k) => k !== "constructor");
    expect(keys).toHaveLength(ChannelsService.methods.length);
    expect(keys.filter((k) => clientMembers.includes(k))).toEqual([]);
    expect(Ctor.prototype.getChannel).toBe(grpc.Client.prototype.getChannel);
  });
});

describe("typed gRPC server and client over @grpc/grpc-js", () => {
  it("serves health from a HealthState and streams its changes", async () => {
    const state = new HealthState(["chatcrm.system.v1.SystemService"]);
    const address = await serve((s) => s.addService(Health, healthHandlers(state)));
    const client = createGrpcClient(Health, address);

    expect((await client.check({})).status).toBe(S.NOT_SERVING);
    state.setAll(S.SERVING);
    expect((await client.check({ service: "chatcrm.system.v1.SystemService" })).status).toBe(S.SERVING);
    await expect(client.check({ service: "nope" })).rejects.toMatchObject({ code: Status.NOT_FOUND, message: 'service "nope" not found' });

    const seen: S[] = [];
    const controller = new AbortController();
    for await (const update of client.watch({}, { signal: controller.signal, timeoutMs: 5_000 })) {
      seen.push(update.status);
      if (seen.length === 1) state.set("", S.NOT_SERVING);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual([S.SERVING, S.NOT_SERVING]);
    client.close();
  });

  it("reads the viewer from metadata: a service by default, an operator needs an id, unknown roles are refused", async () => {
    let seen: unknown;
    const address = await serve((s) =>
      s.addService(Health, {
        async check(_req, ctx) {
          seen = ctx.viewer();
          return { status: S.SERVING };
        },
        async *watch() {},
      }),
    );
    const client = createGrpcClient(Health, address);
    await client.check({});
    expect(seen).toEqual({ role: "service", operatorId: "" });
    await client.check({}, { metadata: { [OPERATOR_METADATA_KEY]: "op-1" } });
    expect(seen).toEqual({ role: "operator", operatorId: "op-1" });
    await client.check({}, { metadata: { [ROLE_METADATA_KEY]: "admin", [OPERATOR_METADATA_KEY]: "op-2" } });
    expect(seen).toEqual({ role: "admin", operatorId: "op-2" });
    await expect(client.check({}, { metadata: { [ROLE_METADATA_KEY]: "root" } })).rejects.toMatchObject({ code: Status.UNAUTHENTICATED });
    await expect(client.check({}, { metadata: { [ROLE_METADATA_KEY]: "operator" } })).rejects.toMatchObject({ code: Status.UNAUTHENTICATED });
    client.close();
  });

  it("passes RpcErrors through with their field, and hides other errors behind INTERNAL", async () => {
    let mode = "invalid";
    const address = await serve((s) =>
      s.addService(Health, {
        async check(_req, ctx) {
          if (mode === "invalid") throw invalidArgument("service", "must not contain spaces");
          if (mode === "unicode") throw invalidArgument('set["Размер\u001f"]', "is odd");
          if (mode === "project") return { status: ctx.projectId() === "p-1" ? S.SERVING : S.UNKNOWN };
          throw new Error("connection string mongodb://secret@10.0.0.5 refused");
        },
        async *watch() {},
      }),
    );
    const client = createGrpcClient(Health, address);
    const invalid = await client.check({ service: "a b" }).catch((e: RpcError) => e);
    expect(invalid).toBeInstanceOf(RpcError);
    expect(invalid).toMatchObject({ code: Status.INVALID_ARGUMENT, field: "service", message: "service: must not contain spaces" });

    // A field path may name a user's variable in any script; it must survive the ASCII-only trailer.
    mode = "unicode";
    await expect(client.check({})).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: 'set["Размер\u001f"]' });

    mode = "crash";
    const internal = (await client.check({}).catch((e: RpcError) => e)) as RpcError;
    expect(internal.code).toBe(Status.INTERNAL);
    expect(internal.message).toBe("internal error");
    expect(logger.lines.some((l) => l.msg === "gRPC handler failed")).toBe(true);

    mode = "project";
    await expect(client.check({})).rejects.toMatchObject({ code: Status.UNAUTHENTICATED });
    expect((await client.check({}, { metadata: { [PROJECT_METADATA_KEY]: "p-1" } })).status).toBe(S.SERVING);
    client.close();
  });

  it("enforces the caller's deadline", async () => {
    const address = await serve((s) =>
      s.addService(Health, {
        check: (_req, ctx) => new Promise((resolve) => setTimeout(() => resolve({ status: S.SERVING }), 2_000).unref() && ctx.signal),
        async *watch() {},
      }),
    );
    const client = createGrpcClient(Health, address);
    const started = Date.now();
    await expect(client.check({}, { timeoutMs: 200 })).rejects.toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    expect(Date.now() - started).toBeLessThan(1_500);
    client.close();
  });

  it("answers server reflection from the generated descriptors", async () => {
    const address = await serve((s) => {
      s.addService(Health, healthHandlers(new HealthState()));
      s.addService(SystemService, { getSystemStatus: async () => ({ allServing: true }) });
    });
    const raw = new grpc.Client(address, grpc.credentials.createInsecure());
    const ask = (path: string, request: MessageInitShape<typeof ServerReflectionRequestSchema>) =>
      new Promise<ServerReflectionResponse>((resolve, reject) => {
        const call = raw.makeBidiStreamRequest(
          path,
          (m: MessageInitShape<typeof ServerReflectionRequestSchema>) => Buffer.from(toBinary(ServerReflectionRequestSchema, create(ServerReflectionRequestSchema, m))),
          (b: Buffer) => fromBinary(ServerReflectionResponseSchema, b),
        );
        call.on("data", (r: ServerReflectionResponse) => {
          resolve(r);
          call.end();
        });
        call.on("error", reject);
        call.write(request);
      });

    const list = await ask("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", { messageRequest: { case: "listServices", value: "" } });
    expect(list.messageResponse.case).toBe("listServicesResponse");
    const names = list.messageResponse.case === "listServicesResponse" ? list.messageResponse.value.service.map((s) => s.name) : [];
    expect(names).toEqual(expect.arrayContaining(["grpc.health.v1.Health", "chatcrm.system.v1.SystemService", "grpc.reflection.v1.ServerReflection"]));

    const symbol = await ask("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", {
      messageRequest: { case: "fileContainingSymbol", value: "chatcrm.system.v1.SystemService.GetSystemStatus" },
    });
    expect(symbol.messageResponse.case).toBe("fileDescriptorResponse");
    const files = symbol.messageResponse.case === "fileDescriptorResponse" ? symbol.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b)) : [];
    expect(files.map((f) => f.name)).toContain("chatcrm/system/v1/system_service.proto");
    expect(files.find((f) => f.name === "chatcrm/system/v1/system_service.proto")?.service[0]?.method[0]?.name).toBe("GetSystemStatus");

    const missing = await ask("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", { messageRequest: { case: "fileContainingSymbol", value: "no.such.Thing" } });
    expect(missing.messageResponse.case).toBe("errorResponse");
    raw.close();
  });
});
