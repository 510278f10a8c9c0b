import { Code, ConnectError } from "@connectrpc/connect";
import { ChannelsService } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { AccessService } from "@chatcrm/contracts/chatcrm/gateway/v1/access_service_pb";
import { AuthService } from "@chatcrm/contracts/chatcrm/gateway/v1/auth_service_pb";
import { Role } from "@chatcrm/contracts/chatcrm/gateway/v1/identity_pb";
import { createGrpcClient, FIELD_TRAILER, RpcError, Status } from "@chatcrm/grpc";
import { AccessTokens } from "../../src/access/access-tokens";
import { publicClient, seedProject, startGatewayStack, type GatewayStack, type SeededProject } from "../harness";

/** Responses carry Timestamps (bigint seconds), which JSON.stringify refuses. */
const json = (value: unknown) => JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));

/** The code and message a call failed with; fails the test when it succeeded. */
async function failure(call: Promise<unknown>): Promise<{ code: Code; message: string; field: string | null }> {
  try {
    await call;
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage, field: e.metadata.get(FIELD_TRAILER) };
  }
  throw new Error("the call succeeded; a failure was expected");
}

describe("gateway identity: login, sessions, lockout, API keys, limits", () => {
  let stack: GatewayStack;
  let project: SeededProject;
  const auth = (token?: string) => publicClient(stack.url, AuthService, token);
  const access = (token?: string) => publicClient(stack.url, AccessService, token);

  beforeAll(async () => {
    stack = await startGatewayStack("gw_auth", { LOGIN_MAX_FAILURES: 3, REQUESTS_PER_SEC_PER_API_KEY: 10, CORS_ALLOWED_ORIGINS: ["https://app.example.com"], HTTP_MAX_BODY_BYTES: 4096 });
    project = await seedProject(stack, "auth");
  }, 120_000);

  afterAll(() => stack?.stop());

  it("logs in with email and password (any case and spacing of the email) and says who the caller is", async () => {
    const res = await auth().login({ email: `  ${project.operator.email.toUpperCase()} `, password: project.operator.password });
    expect(res.operator).toMatchObject({ operatorId: project.operator.operatorId, role: Role.OPERATOR, email: project.operator.email });
    expect(res.project?.projectId).toBe(project.projectId);
    expect(res.tokens?.refreshToken).toMatch(/^rt\./);
    const expiresIn = Number(res.tokens!.accessTokenExpiresAt!.seconds) * 1000 - Date.now();
    expect(expiresIn).toBeGreaterThan(14 * 60_000);
    expect(expiresIn).toBeLessThanOrEqual(15 * 60_000);
    const me = await auth(res.tokens!.accessToken).getCurrentIdentity({});
    expect(me.who).toMatchObject({ case: "operator", value: { operatorId: project.operator.operatorId } });
    expect(me.project?.name).toBe("Project auth");
  });

  it("refuses a wrong password or unknown email with the same words, and missing fields by name", async () => {
    const wrong = await failure(auth().login({ email: project.admin.email, password: "not the password" }));
    const unknown = await failure(auth().login({ email: "nobody@example.com", password: "whatever whatever" }));
    expect(wrong).toMatchObject({ code: Code.Unauthenticated, message: "wrong email or password" });
    expect(unknown).toMatchObject({ code: Code.Unauthenticated, message: "wrong email or password" });
    expect(await failure(auth().login({ email: "", password: "x" }))).toMatchObject({ code: Code.InvalidArgument, field: "email" });
    expect(await failure(auth().login({ email: "a@b.c", password: "" }))).toMatchObject({ code: Code.InvalidArgument, field: "password" });
    // A good login clears the count of failures.
    await auth().login({ email: project.admin.email, password: project.admin.password });
  });

  it("locks an email after repeated wrong passwords, even against the right one, without touching other emails", async () => {
    const victim = await access(project.admin.token).createOperator({ email: "victim@example.com", name: "V", role: Role.OPERATOR, password: "correct horse battery" });
    for (let i = 0; i < 3; i++) await failure(auth().login({ email: "victim@example.com", password: `guess number ${i}` }));
    const locked = await failure(auth().login({ email: "victim@example.com", password: "correct horse battery" }));
    expect(locked.code).toBe(Code.ResourceExhausted);
    expect(locked.message).toMatch(/too many failed logins for this email: it is locked for 15 more minute/);
    await expect(auth().login({ email: project.operator.email, password: project.operator.password })).resolves.toBeDefined();
    expect(victim.operator?.operatorId).toMatch(/^op_/);
  });

  it("refreshes a session once per refresh token; a reused one ends the session", async () => {
    const first = await auth().login({ email: project.admin.email, password: project.admin.password });
    const second = await auth().refreshSession({ refreshToken: first.tokens!.refreshToken });
    expect(second.tokens!.refreshToken).not.toBe(first.tokens!.refreshToken);
    await expect(auth(second.tokens!.accessToken).getCurrentIdentity({})).resolves.toBeDefined();

    const replay = await failure(auth().refreshSession({ refreshToken: first.tokens!.refreshToken }));
    expect(replay).toMatchObject({ code: Code.Unauthenticated, message: expect.stringContaining("already used") });
    // The replay ended the session: the newer tokens stop working too.
    expect((await failure(auth().refreshSession({ refreshToken: second.tokens!.refreshToken }))).code).toBe(Code.Unauthenticated);
    expect(await failure(auth(second.tokens!.accessToken).getCurrentIdentity({}))).toMatchObject({ code: Code.Unauthenticated, message: expect.stringContaining("session has ended") });
    expect(await failure(auth().refreshSession({ refreshToken: "rt.nope.nope" }))).toMatchObject({ code: Code.Unauthenticated });
    expect(await failure(auth().refreshSession({ refreshToken: "" }))).toMatchObject({ code: Code.InvalidArgument, field: "refresh_token" });
  });

  it("logout revokes the access token at once and the refresh token", async () => {
    const session = await auth().login({ email: project.operator.email, password: project.operator.password });
    await auth(session.tokens!.accessToken).logout({});
    expect((await failure(auth(session.tokens!.accessToken).getCurrentIdentity({}))).code).toBe(Code.Unauthenticated);
    expect((await failure(auth().refreshSession({ refreshToken: session.tokens!.refreshToken }))).code).toBe(Code.Unauthenticated);
  });

  it("refuses missing, malformed, forged and expired tokens with UNAUTHENTICATED and words for a person", async () => {
    const channels = (token?: string) => publicClient(stack.url, ChannelsService, token);
    expect(await failure(channels().listChannels({}))).toMatchObject({ code: Code.Unauthenticated, message: expect.stringContaining("needs credentials") });
    expect(await failure(channels("eyJhbGciOiJIUzI1NiJ9.e30.forged").listChannels({}))).toMatchObject({ code: Code.Unauthenticated, message: "the access token is not valid" });
    const foreignSecret = await new AccessTokens("x".repeat(48), 60).issue({ projectId: project.projectId, operatorId: project.admin.operatorId, role: "admin", sessionId: "ses_x" });
    expect(await failure(channels(foreignSecret.token).listChannels({}))).toMatchObject({ code: Code.Unauthenticated, message: "the access token is not valid" });
    const expired = await new AccessTokens(stack.config.ACCESS_TOKEN_SECRET, 1).issue({ projectId: project.projectId, operatorId: project.admin.operatorId, role: "admin", sessionId: "ses_y" });
    await new Promise((r) => setTimeout(r, 2_100));
    expect(await failure(channels(expired.token).listChannels({}))).toMatchObject({ code: Code.Unauthenticated, message: expect.stringContaining("has expired") });
    const raw = await fetch(`${stack.url}/chatcrm.channels.v1.ChannelsService/ListChannels`, { method: "POST", headers: { "content-type": "application/json", authorization: "Basic abc" }, body: "{}" });
    expect(raw.status).toBe(401);
    expect(await raw.json()).toEqual({ code: "unauthenticated", message: 'the Authorization header must read "Bearer <access token or API key>"' });
  });

  it("shows an API key's secret once, stores it hashed, and refuses it once revoked", async () => {
    const created = await access(project.admin.token).createApiKey({ name: "website backend" });
    expect(created.secret).toMatch(/^ck\.key_[\w-]+\.[\w-]{43}$/);
    expect(created.secret.startsWith(created.apiKey!.prefix)).toBe(true);
    const stored = await stack.gateway.parts.models.apiKeys.findOne({ _id: created.apiKey!.keyId }).lean();
    expect(JSON.stringify(stored)).not.toContain(created.secret.split(".")[2]);
    const listed = await access(project.admin.token).listApiKeys({});
    expect(json(listed)).not.toContain(created.secret.split(".")[2]);

    const me = await auth(created.secret).getCurrentIdentity({});
    expect(me.who).toMatchObject({ case: "apiKey", value: { keyId: created.apiKey!.keyId, name: "website backend" } });
    expect((await failure(auth(`${created.secret.slice(0, -2)}xx`).getCurrentIdentity({}))).code).toBe(Code.Unauthenticated);
    // A key is a program, not a person: it cannot manage people or keys.
    expect((await failure(access(created.secret).createApiKey({ name: "more" }))).code).toBe(Code.PermissionDenied);

    const revoked = await access(project.admin.token).revokeApiKey({ keyId: created.apiKey!.keyId });
    expect(revoked.apiKey?.revokedAt).toBeDefined();
    expect(await failure(auth(created.secret).getCurrentIdentity({}))).toMatchObject({ code: Code.Unauthenticated, message: "the API key is not valid or has been revoked" });
    expect((await failure(access(project.admin.token).revokeApiKey({ keyId: "key_missing" }))).code).toBe(Code.NotFound);
    expect(await failure(access(project.admin.token).createApiKey({ name: "  " }))).toMatchObject({ code: Code.InvalidArgument, field: "name" });
  });

  it("lets admins manage operators: bad input named, no self-demotion, a disabled operator's sessions end", async () => {
    const admin = access(project.admin.token);
    expect(await failure(admin.createOperator({ email: "short@example.com", role: Role.OPERATOR, password: "short" }))).toMatchObject({ code: Code.InvalidArgument, field: "password" });
    expect(await failure(admin.createOperator({ email: "not-an-email", role: Role.OPERATOR, password: "long enough password" }))).toMatchObject({ code: Code.InvalidArgument, field: "email" });
    expect(await failure(admin.createOperator({ email: "norole@example.com", password: "long enough password" }))).toMatchObject({ code: Code.InvalidArgument, field: "role" });
    expect(await failure(admin.createOperator({ email: project.operator.email, role: Role.OPERATOR, password: "long enough password" }))).toMatchObject({ code: Code.AlreadyExists, field: "email" });
    expect(await failure(admin.updateOperator({ operatorId: project.admin.operatorId, role: Role.OPERATOR }))).toMatchObject({ code: Code.FailedPrecondition });

    const temp = await admin.createOperator({ email: "temp@example.com", name: "Temp", role: Role.OPERATOR, password: "temporary password" });
    const session = await auth().login({ email: "temp@example.com", password: "temporary password" });
    const updated = await admin.updateOperator({ operatorId: temp.operator!.operatorId, disabled: true });
    expect(updated.operator?.disabled).toBe(true);
    expect((await failure(auth(session.tokens!.accessToken).getCurrentIdentity({}))).code).toBe(Code.Unauthenticated);
    expect((await failure(auth().login({ email: "temp@example.com", password: "temporary password" }))).code).toBe(Code.Unauthenticated);
    const ops = await admin.listOperators({});
    expect(ops.operators.map((o) => o.email)).toEqual(expect.arrayContaining([project.admin.email, project.operator.email, "temp@example.com"]));
    expect(json(ops)).not.toMatch(/argon2|passwordHash/);
    // An operator is not an admin.
    expect((await failure(access(project.operator.token).listOperators({}))).code).toBe(Code.PermissionDenied);
  });

  it("rate-limits each API key and tells how long to wait", async () => {
    const { secret } = await access(project.admin.token).createApiKey({ name: "busy script" });
    const channels = publicClient(stack.url, ChannelsService, secret);
    const results = await Promise.allSettled(Array.from({ length: 40 }, () => channels.listChannels({})));
    const refused = results.filter((r) => r.status === "rejected").map((r) => ConnectError.from((r as PromiseRejectedResult).reason));
    expect(results.filter((r) => r.status === "fulfilled").length).toBeGreaterThanOrEqual(20);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]).toMatchObject({ code: Code.ResourceExhausted, rawMessage: expect.stringMatching(/too many requests with this API key \(at most 10 a second\): try again in \d+ s/) });
    // Another key has its own budget.
    const other = await access(project.admin.token).createApiKey({ name: "other script" });
    await expect(publicClient(stack.url, ChannelsService, other.secret).listChannels({})).resolves.toBeDefined();
  });

  it("serves Connect JSON, gRPC-Web and gRPC (cleartext HTTP/2) on one port, with the same access rules", async () => {
    const overWeb = await publicClient(stack.url, AuthService, project.admin.token, "grpc-web").getCurrentIdentity({});
    expect(overWeb.who.case).toBe("operator");
    const grpc = createGrpcClient(ChannelsService, `127.0.0.1:${stack.gateway.httpPort}`);
    try {
      const listed = await grpc.listChannels({}, { metadata: { authorization: `Bearer ${project.admin.token}` } });
      expect(listed.channels).toEqual([]);
      const refused = await grpc.listChannels({}).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(RpcError);
      expect(refused).toMatchObject({ code: Status.UNAUTHENTICATED, message: expect.stringContaining("needs credentials") });
    } finally {
      grpc.close();
    }
  });

  it("answers CORS preflights for configured origins only, and refuses oversized bodies", async () => {
    const path = `${stack.url}/chatcrm.contacts.v1.ContactsService/GetContact`;
    const preflight = (origin: string) => fetch(path, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" } });
    const allowed = await preflight("https://app.example.com");
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(allowed.headers.get("access-control-allow-headers")).toMatch(/Authorization/);
    const evil = await preflight("https://evil.example");
    expect(evil.status).toBe(403);
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();

    const big = await fetch(path, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${project.admin.token}` }, body: JSON.stringify({ contact: { contactId: "x".repeat(10_000) } }) });
    expect(big.status).toBe(429);
    expect(((await big.json()) as { message: string }).message).toMatch(/message size .* is larger than configured readMaxBytes 4096/);
  });
});
