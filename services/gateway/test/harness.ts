import { randomBytes } from "node:crypto";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";
import { AuthService } from "@chatcrm/contracts/chatcrm/gateway/v1/auth_service_pb";
import { serviceTestConfig, stopAndDrop, testBackendConfig, testLogger, uniqueDatabase } from "@chatcrm/testing";
// The gateway fronts the real services, so the suites start them beside it, each on its own database.
// eslint-disable-next-line @nx/enforce-module-boundaries
import { startTestChannels, testSecretsKey } from "../../channels/test/integration/harness";
// eslint-disable-next-line @nx/enforce-module-boundaries
import { startFlowStack } from "../../flow-runtime/test/harness";
import { startGateway } from "../src/app";
import { configSchema, type Config } from "../src/config";
import { createOperator } from "../src/usecases/operators";
import { createProject } from "../src/usecases/create-project";

export type GatewayStack = Awaited<ReturnType<typeof startGatewayStack>>;

/** Contacts, flow-runtime and channels on the harness, and a gateway in front of them on an ephemeral port. */
export async function startGatewayStack(name: string, overrides: Partial<Config> = {}) {
  const { contacts, runtime } = await startFlowStack(name);
  const channels = await startTestChannels(uniqueDatabase(`${name}_ch`), { CHANNEL_SECRETS_KEY: testSecretsKey() });
  const base = testBackendConfig(uniqueDatabase(`${name}_gw`));
  const config: Config = {
    ...serviceTestConfig(configSchema, base, { ACCESS_TOKEN_SECRET: randomBytes(48).toString("base64") }),
    HTTP_HOST: "127.0.0.1",
    HTTP_PORT: 0,
    CONTACTS_GRPC_ADDR: `127.0.0.1:${contacts.grpcPort}`,
    CHANNELS_GRPC_ADDR: `127.0.0.1:${channels.running.grpcPort}`,
    FLOW_RUNTIME_GRPC_ADDR: `127.0.0.1:${runtime.grpcPort}`,
    LIVE_UNREAD_DEBOUNCE_MS: 100,
    REVOCATION_POLL_MS: 500,
    ...overrides,
  };
  const gateway = await startGateway(config, testLogger("gateway"));
  const url = `http://127.0.0.1:${gateway.httpPort}`;
  return {
    gateway,
    contacts,
    runtime,
    channels,
    url,
    config,
    async stop() {
      await stopAndDrop(gateway);
      await stopAndDrop(channels.running);
      await stopAndDrop(runtime);
      await stopAndDrop(contacts);
    },
  };
}

const bearer =
  (token: string | undefined): Interceptor =>
  (next) =>
  (req) => {
    if (token) req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };

/** A Connect client for the public API as one caller (no token: anonymous), in Connect JSON or gRPC-Web. */
export function publicClient<S extends DescService>(url: string, service: S, token?: string, protocol: "connect" | "grpc-web" = "connect"): Client<S> {
  const options = { baseUrl: url, httpVersion: "1.1" as const, interceptors: [bearer(token)], useBinaryFormat: protocol === "grpc-web" };
  return createClient(service, protocol === "grpc-web" ? createGrpcWebTransport(options) : createConnectTransport(options));
}

export interface SeededProject {
  projectId: string;
  admin: { operatorId: string; email: string; password: string; token: string };
  operator: { operatorId: string; email: string; password: string; token: string };
}

/** A project with an admin and an operator, both logged in through the public API. */
export async function seedProject(stack: GatewayStack, label: string): Promise<SeededProject> {
  const models = stack.gateway.parts.models;
  const password = `pw-${randomBytes(9).toString("base64url")}`;
  const adminEmail = `admin-${label}-${randomBytes(3).toString("hex")}@example.com`;
  const { project, admin } = await createProject(models, { name: `Project ${label}`, adminEmail, adminName: "Anna Admin", adminPassword: password });
  const operatorEmail = `op-${label}-${randomBytes(3).toString("hex")}@example.com`;
  const operator = await createOperator(models, project._id, { email: operatorEmail, name: "Oleg Operator", role: "operator", password });
  const auth = publicClient(stack.url, AuthService);
  const login = async (email: string) => (await auth.login({ email, password })).tokens!.accessToken;
  return {
    projectId: project._id,
    admin: { operatorId: admin._id, email: adminEmail, password, token: await login(adminEmail) },
    operator: { operatorId: operator._id, email: operatorEmail, password, token: await login(operatorEmail) },
  };
}
