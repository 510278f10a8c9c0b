import { randomBytes } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type CallOptions, type Client } from "@connectrpc/connect";
import { ChannelState, ChannelsService } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { AnswerField, ContactStatus, ContactsService, MassActionKind, MassActionState, type Contact } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { FlowsService } from "@chatcrm/contracts/chatcrm/flows/v1/flows_service_pb";
import { AccessService } from "@chatcrm/contracts/chatcrm/gateway/v1/access_service_pb";
import { AuthService } from "@chatcrm/contracts/chatcrm/gateway/v1/auth_service_pb";
import { ConversationsService } from "@chatcrm/contracts/chatcrm/gateway/v1/conversations_service_pb";
import { Role } from "@chatcrm/contracts/chatcrm/gateway/v1/identity_pb";
import { LiveService } from "@chatcrm/contracts/chatcrm/gateway/v1/live_service_pb";
import { ServiceState, SystemService } from "@chatcrm/contracts/chatcrm/system/v1/system_service_pb";
import { waitFor } from "@chatcrm/testing";
import { methodKey, POLICY } from "../../src/access/policy";
import { publicClient, seedProject, startGatewayStack, type GatewayStack, type SeededProject } from "../harness";

/**
 * Every public method, called as every kind of caller, against the real services: what each one may do is
 * what POLICY says, an operator's hands stay off another operator's clients, and another project's admin
 * holding this project's ids gets nothing (NotFound, or lists of their own data only).
 */

type Caller = "anonymous" | "admin" | "operator" | "apiKey" | "foreign";
const CALLERS: Caller[] = ["anonymous", "admin", "operator", "apiKey", "foreign"];
/** The client a call acts on: the operator's own, a free one, or one assigned to another operator. */
type Target = "own" | "free" | "other";
type Audience = "admin" | "operator" | "api-key";
/** Who may call, as the test expects it; checked against POLICY so the two cannot drift apart silently. */
type Access = "public" | "everyone" | "scoped" | "managers" | "people" | "admins";
const AUDIENCES: Record<Access, Audience[]> = {
  public: ["admin", "operator", "api-key"],
  everyone: ["admin", "operator", "api-key"],
  // Everyone, but an operator only on their own and free clients.
  scoped: ["admin", "operator", "api-key"],
  managers: ["admin", "api-key"],
  people: ["admin", "operator"],
  admins: ["admin"],
};
type Outcome = "OK" | Code;

interface Call {
  caller: Caller;
  target: Target;
  /** Unique per call: names, tags and emails the call creates. */
  tag: string;
}

interface Row<Req, Res> {
  access: Access;
  /** The request names a client: an operator is tried on their own, a free and another operator's client. */
  perClient?: true;
  /** Another project's admin sending this project's ids. */
  foreign: Outcome;
  request: (call: Call) => Req | Promise<Req>;
  /** Credentials other than the caller's usual ones (a fresh session for Logout). */
  as?: (call: Call) => Promise<string | undefined>;
  /** A public method called without a token, when it is not OK. */
  anonymous?: { code: Code; message: string };
  /** More to say about an OK answer: a problem, or undefined. */
  check?: (res: Res, call: Call) => string | undefined;
  /** The part of an OK answer to search for the other project's ids, when the answer echoes an earlier request. */
  scan?: (res: Res) => unknown;
}

type RequestOf<F> = F extends (request: infer R, options?: CallOptions) => unknown ? R : never;
type ResponseOf<F> = F extends (...args: never[]) => Promise<infer O> ? O : F extends (...args: never[]) => AsyncIterable<infer O> ? O | undefined : never;
/** One row per method, typed by the service: a method without a row does not compile. */
type Rows<S extends DescService> = { [K in keyof Client<S>]: Row<RequestOf<Client<S>[K]>, ResponseOf<Client<S>[K]>> };
type AnyRow = Row<unknown, never>;

/**
 * Answers that are wrong today, each reported as a bug (see the tests at the end). The matrix accepts exactly
 * these answers for these cells and lists them in the known-gaps test; once a cell answers as expected, the matrix
 * fails until its entry is removed here.
 */
const KNOWN_GAPS: Record<string, { got: Outcome; bug: string }> = {};

/** Responses carry bigints, which JSON.stringify refuses. */
const json = (value: unknown) => JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) ?? "";
const outcomeName = (o: Outcome) => (o === "OK" ? "OK" : Code[o]);
/** What no answer may hold: a stack frame, a file of ours, or where a backend listens. */
const INTERNALS = /127\.0\.0\.1:|localhost:\d|0\.0\.0\.0:|\[::1?\]:|mongodb:\/\/|\bat \/|\bat .+\(.+:\d+:\d+\)|\.ts:\d+|node_modules/;
const unique = () => randomBytes(3).toString("hex");

describe("gateway authorization matrix: every public method as every caller", () => {
  let stack: GatewayStack;
  let a: SeededProject;
  let b: SeededProject;
  let tokens: Record<Caller, string | undefined>;
  let otherOperatorId: string;
  let channelId: string;
  let flowId: string;
  let clients: Record<Target, Contact>;
  let massJobId: string;
  let resendJobId: string;
  let foreignData: { channelId: string; contactId: string; flowId: string };
  /** Ids of each project, which must never show up in the other project's answers. */
  const ids = { a: new Set<string>(), b: new Set<string>() };
  /** This project's resources another project's admin tried to change: they must be as they were. */
  const spared = { channels: [] as string[], flows: [] as string[], operators: [] as string[], apiKeys: [] as string[], filters: [] as string[], clients: [] as Contact[] };
  const answers: { cell: string; outcome: Outcome; message: string; body: string }[] = [];
  const openGaps: string[] = [];

  const as = <S extends DescService>(service: S, token: string | undefined) => publicClient(stack.url, service, token);
  const admin = <S extends DescService>(service: S) => as(service, a.admin.token);
  const webChannel = (name: string) => ({ name, settings: { case: "web" as const, value: { allowedOrigins: [] } } });
  const definition = (name: string) => ({ name, entryBlockId: "hello", blocks: [{ blockId: "hello", kind: { case: "message" as const, value: { text: "Hello from the matrix" } } }] });
  const ref = (c: Contact) => ({ ref: { case: "contactId" as const, value: c.contactId } });
  const clientOf = (call: Call) => clients[call.target];
  const projectOf = (call: Call) => (call.caller === "foreign" ? b : a);
  /** The person behind a caller's fresh sessions; a key and no token borrow this project's operator's login. */
  const person = (caller: Caller) => (caller === "foreign" ? b.admin : caller === "admin" ? a.admin : a.operator);
  const session = async (caller: Caller) => {
    const { email, password } = person(caller);
    return (await as(AuthService, undefined).login({ email, password })).tokens!;
  };
  const includes = (list: string[], id: string, what: string) => (list.includes(id) ? undefined : `the answer lacks the caller's own ${what} ${id}`);

  /** A client of this project, imported into the web channel, then assigned as the target says. */
  async function newClient(target: Target): Promise<Contact> {
    const visitor = `v-${unique()}${unique()}`;
    await admin(ContactsService).importSubscribers({ channelId, messenger: Messenger.WEB, subscriberIds: visitor });
    let [contact] = (await admin(ContactsService).listContacts({ filter: { search: visitor }, pageSize: 5 })).contacts;
    if (!contact) throw new Error(`the imported visitor ${visitor} has no contact`);
    const operatorId = { own: a.operator.operatorId, other: otherOperatorId, free: "" }[target];
    if (operatorId) contact = (await admin(ContactsService).assignOperator({ contact: ref(contact), operatorId })).contact!;
    ids.a.add(contact.contactId);
    return contact;
  }

  /** Dedicated resources for calls that change or remove them, so later rows keep theirs. */
  const fresh = {
    async client(call: Call) {
      const contact = await newClient(call.target);
      if (call.caller === "foreign") spared.clients.push(contact);
      return contact;
    },
    async channel(call: Call) {
      const id = (await admin(ChannelsService).connectChannel(webChannel(`spare ${call.tag}`))).channel!.id;
      if (call.caller === "foreign") spared.channels.push(id);
      return id;
    },
    async flow(call: Call) {
      const id = (await admin(FlowsService).createFlow({ definition: definition(`Spare ${call.tag}`) })).flow!.flowId;
      if (call.caller === "foreign") spared.flows.push(id);
      return id;
    },
    async operator(call: Call) {
      const id = (await admin(AccessService).createOperator({ email: `spare-${call.tag}@example.com`, name: "Spare", role: Role.OPERATOR, password: "a long enough password" })).operator!.operatorId;
      if (call.caller === "foreign") spared.operators.push(id);
      return id;
    },
    async apiKey(call: Call) {
      const id = (await admin(AccessService).createApiKey({ name: `spare ${call.tag}` })).apiKey!.keyId;
      if (call.caller === "foreign") spared.apiKeys.push(id);
      return id;
    },
    async filter(call: Call) {
      const id = (await admin(ContactsService).createSavedFilter({ name: `spare ${call.tag}`, filter: { tags: ["vip"] } })).savedFilter!.filterId;
      if (call.caller === "foreign") spared.filters.push(id);
      return id;
    },
  };

  // ---- The table: a valid request per method, and who may call it. ----

  const system: Rows<typeof SystemService> = {
    getSystemStatus: {
      access: "public",
      foreign: "OK",
      request: () => ({}),
      check: (res) => (res.services.find((s) => s.name === "contacts")?.state === ServiceState.SERVING ? undefined : "contacts is not SERVING"),
    },
  };

  const auth: Rows<typeof AuthService> = {
    login: {
      access: "public",
      foreign: "OK",
      anonymous: { code: Code.Unauthenticated, message: "wrong email or password" },
      request: ({ caller }) => (caller === "anonymous" ? { email: "nobody-matrix@example.com", password: "not the password" } : { email: person(caller).email, password: person(caller).password }),
      check: (res, call) => (res.project?.projectId === projectOf(call).projectId ? undefined : `logged into project ${res.project?.projectId}`),
    },
    refreshSession: { access: "public", foreign: "OK", request: async ({ caller }) => ({ refreshToken: (await session(caller)).refreshToken }) },
    logout: {
      access: "people",
      foreign: "OK",
      request: () => ({}),
      as: async ({ caller }) => (caller === "admin" || caller === "operator" || caller === "foreign" ? (await session(caller)).accessToken : tokens[caller]),
    },
    getCurrentIdentity: {
      access: "everyone",
      foreign: "OK",
      request: () => ({}),
      check: (res, call) => (res.project?.projectId === projectOf(call).projectId ? undefined : `identity in project ${res.project?.projectId}`),
    },
  };

  const access: Rows<typeof AccessService> = {
    createOperator: { access: "admins", foreign: "OK", request: ({ tag }) => ({ email: `new-${tag}@example.com`, name: "New", role: Role.OPERATOR, password: "a long enough password" }) },
    listOperators: { access: "admins", foreign: "OK", request: () => ({}), check: (res, call) => includes(res.operators.map((o) => o.operatorId), projectOf(call).admin.operatorId, "admin") },
    updateOperator: { access: "admins", foreign: Code.NotFound, request: async (call) => ({ operatorId: await fresh.operator(call), name: `Renamed ${call.tag}` }) },
    createApiKey: { access: "admins", foreign: "OK", request: ({ tag }) => ({ name: `key ${tag}` }) },
    listApiKeys: { access: "admins", foreign: "OK", request: () => ({}) },
    revokeApiKey: { access: "admins", foreign: Code.NotFound, request: async (call) => ({ keyId: await fresh.apiKey(call) }) },
  };

  const conversations: Rows<typeof ConversationsService> = {
    sendToContact: { access: "scoped", perClient: true, foreign: Code.NotFound, request: (call) => ({ contact: ref(clientOf(call)), text: `hello ${call.tag}` }) },
    listContactMessages: { access: "everyone", perClient: true, foreign: Code.NotFound, request: (call) => ({ contact: ref(clientOf(call)) }) },
  };

  const live: Rows<typeof LiveService> = {
    streamUpdates: { access: "everyone", foreign: "OK", request: () => ({}), check: (res) => (res?.update.case === "unreadTotals" ? undefined : `the stream began with ${res?.update.case}`) },
  };

  const contacts: Rows<typeof ContactsService> = {
    getContact: { access: "everyone", perClient: true, foreign: Code.NotFound, request: (call) => ({ contact: ref(clientOf(call)) }) },
    listContacts: {
      access: "everyone",
      foreign: "OK",
      request: () => ({ pageSize: 200 }),
      check: (res, call) => includes(res.contacts.map((c) => c.contactId), call.caller === "foreign" ? foreignData.contactId : clients.free.contactId, "client"),
    },
    countTabs: { access: "everyone", foreign: "OK", request: () => ({ filter: {} }), check: (res) => (res.all > 0n ? undefined : "no clients counted") },
    getUnreadTotals: { access: "everyone", foreign: "OK", request: () => ({}) },
    streamContacts: { access: "managers", foreign: "OK", request: () => ({ filter: {} }), check: (res) => (res?.contact?.contactId ? undefined : "the stream held no client") },
    listTimeline: { access: "everyone", perClient: true, foreign: Code.NotFound, request: (call) => ({ contact: ref(clientOf(call)) }) },
    setVariables: { access: "scoped", perClient: true, foreign: Code.NotFound, request: (call) => ({ contact: ref(clientOf(call)), set: { matrix: call.tag } }) },
    setAnswer: { access: "scoped", perClient: true, foreign: Code.NotFound, request: (call) => ({ contact: ref(clientOf(call)), field: AnswerField.FREE_TEXT, value: call.tag }) },
    modifyTags: { access: "scoped", perClient: true, foreign: Code.NotFound, request: (call) => ({ contact: ref(clientOf(call)), add: [call.tag] }) },
    modifyLists: { access: "scoped", perClient: true, foreign: Code.NotFound, request: (call) => ({ contact: ref(clientOf(call)), add: [call.tag] }) },
    setStatus: { access: "scoped", perClient: true, foreign: Code.NotFound, request: (call) => ({ contact: ref(clientOf(call)), status: ContactStatus.SUBSCRIBED }) },
    setFunnelPosition: { access: "scoped", perClient: true, foreign: Code.NotFound, request: (call) => ({ contact: ref(clientOf(call)), flowId, blockId: "hello" }) },
    setDealStage: { access: "scoped", perClient: true, foreign: Code.NotFound, request: (call) => ({ contact: ref(clientOf(call)), dealStage: call.tag }) },
    setRead: { access: "scoped", perClient: true, foreign: Code.NotFound, request: (call) => ({ contact: ref(clientOf(call)), read: true }) },
    // A dedicated client each time, assigned as the target says: assigning changes who may act on it.
    assignOperator: { access: "scoped", perClient: true, foreign: Code.NotFound, request: async (call) => ({ contact: ref(await fresh.client(call)), operatorId: a.operator.operatorId }) },
    setPinned: { access: "scoped", perClient: true, foreign: Code.NotFound, request: (call) => ({ contact: ref(clientOf(call)), pinned: true }) },
    addComment: { access: "scoped", perClient: true, foreign: Code.NotFound, request: (call) => ({ contact: ref(clientOf(call)), text: `note ${call.tag}` }) },
    deleteContact: { access: "managers", perClient: true, foreign: Code.NotFound, request: async (call) => ({ contact: ref(await fresh.client(call)) }) },
    createSavedFilter: { access: "managers", foreign: "OK", request: ({ tag }) => ({ name: `filter ${tag}`, filter: { tags: ["vip"] } }) },
    listSavedFilters: { access: "everyone", foreign: "OK", request: () => ({}) },
    deleteSavedFilter: { access: "managers", foreign: Code.NotFound, request: async (call) => ({ filterId: await fresh.filter(call) }) },
    // An explicit selection is a filter: in another project it matches nobody.
    startMassAction: {
      access: "managers",
      foreign: "OK",
      request: (call) => ({ action: { kind: MassActionKind.ADD_TAGS, values: [call.tag] }, selection: { selection: { case: "contactIds", value: { ids: [clientOf(call).contactId] } } } }),
      check: (res, call) => (res.job?.total === (call.caller === "foreign" ? 0n : 1n) ? undefined : `the job selected ${res.job?.total} clients`),
    },
    getMassAction: { access: "managers", foreign: Code.NotFound, request: () => ({ jobId: massJobId }) },
    // A job shows the selection it was started with: another project's job may name the ids its admin sent.
    listMassActions: { access: "managers", foreign: "OK", request: () => ({}), scan: (res) => res.jobs.map((job) => ({ ...job, selection: undefined })) },
    importSubscribers: {
      access: "managers",
      foreign: Code.NotFound,
      request: ({ tag }) => ({ channelId, messenger: Messenger.WEB, subscriberIds: `v-${tag}` }),
      check: (res) => (res.imported === 1 ? undefined : `imported ${res.imported}`),
    },
  };

  const channels: Rows<typeof ChannelsService> = {
    connectChannel: { access: "managers", foreign: "OK", request: ({ tag }) => webChannel(`web ${tag}`) },
    disconnectChannel: { access: "managers", foreign: Code.NotFound, request: async (call) => ({ channelId: await fresh.channel(call) }) },
    getChannel: { access: "everyone", foreign: Code.NotFound, request: () => ({ channelId }) },
    listChannels: {
      access: "everyone",
      foreign: "OK",
      request: () => ({ includeDisconnected: true }),
      check: (res, call) => includes(res.channels.map((c) => c.id), call.caller === "foreign" ? foreignData.channelId : channelId, "channel"),
    },
    // Operators write through ConversationsService.SendToContact: a raw send names any recipient id.
    sendMessage: {
      access: "managers",
      foreign: Code.NotFound,
      request: (call) => ({ channelId, recipientId: clientOf(call).messengerUserId, contactId: clientOf(call).contactId, text: `hello ${call.tag}` }),
    },
    listMessages: { access: "managers", foreign: Code.NotFound, request: () => ({ channelId, peerId: clients.free.messengerUserId }) },
    startResendFailed: { access: "managers", foreign: Code.NotFound, request: () => ({ channelId }) },
    getResendJob: { access: "managers", foreign: Code.NotFound, request: () => ({ jobId: resendJobId }) },
    listResendJobs: { access: "managers", foreign: "OK", request: () => ({}) },
  };

  const flows: Rows<typeof FlowsService> = {
    createFlow: { access: "managers", foreign: "OK", request: ({ tag }) => ({ definition: definition(`Flow ${tag}`) }) },
    updateFlow: { access: "managers", foreign: Code.NotFound, request: async (call) => ({ flowId: await fresh.flow(call), definition: definition(`Updated ${call.tag}`) }) },
    getFlow: { access: "everyone", foreign: Code.NotFound, request: () => ({ flowId }) },
    listFlows: {
      access: "everyone",
      foreign: "OK",
      request: () => ({}),
      check: (res, call) => includes(res.flows.map((f) => f.flowId), call.caller === "foreign" ? foreignData.flowId : flowId, "flow"),
    },
    validateFlow: { access: "everyone", foreign: "OK", request: () => ({ definition: definition("Check") }), check: (res) => (res.problems.length ? json(res.problems) : undefined) },
    archiveFlow: { access: "managers", foreign: Code.NotFound, request: async (call) => ({ flowId: await fresh.flow(call) }) },
    startFlow: { access: "scoped", perClient: true, foreign: Code.NotFound, request: (call) => ({ contactId: clientOf(call).contactId, flowId, idempotencyKey: call.tag }) },
    stopFlow: { access: "scoped", perClient: true, foreign: Code.NotFound, request: (call) => ({ contactId: clientOf(call).contactId, flowId, idempotencyKey: call.tag }) },
    listSessions: {
      access: "everyone",
      perClient: true,
      foreign: "OK",
      request: (call) => ({ contactId: clientOf(call).contactId }),
      check: (res, call) => (call.caller === "foreign" && res.sessions.length ? `another project's sessions: ${json(res.sessions)}` : undefined),
    },
    getSalesPlan: { access: "everyone", foreign: "OK", request: () => ({ plan: "gold" }) },
  };

  const SERVICES: [DescService, Record<string, AnyRow>][] = [
    [SystemService, system],
    [AuthService, auth],
    [AccessService, access],
    [ConversationsService, conversations],
    [LiveService, live],
    [ContactsService, contacts],
    [ChannelsService, channels],
    [FlowsService, flows],
  ];

  // ---- How a call should end, and how it did. ----

  function expected(row: AnyRow, { caller, target }: Call): Outcome {
    if (row.access === "public") return caller === "anonymous" ? (row.anonymous?.code ?? "OK") : "OK";
    if (caller === "anonymous") return Code.Unauthenticated;
    if (caller === "foreign") return row.foreign;
    const audience: Audience = caller === "apiKey" ? "api-key" : caller;
    if (!AUDIENCES[row.access].includes(audience)) return Code.PermissionDenied;
    if (caller === "operator" && row.access === "scoped" && target === "other") return Code.PermissionDenied;
    return "OK";
  }

  const describeCall = ({ caller, target }: Call, perClient: boolean) => {
    const who = { anonymous: "no token", admin: "admin", operator: "operator", apiKey: "API key", foreign: "another project's admin" }[caller];
    return caller === "operator" && perClient ? `${who} on ${{ own: "their own", free: "a free", other: "another operator's" }[target]} client` : who;
  };

  async function invoke(service: DescService, localName: string, streaming: boolean, token: string | undefined, request: unknown) {
    const client = as(service, token) as unknown as Record<string, (req: unknown, options: CallOptions) => unknown>;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 15_000);
    try {
      const pending = client[localName]!(request, { signal: abort.signal });
      let res: unknown;
      if (streaming) {
        // The first message is enough; leaving the loop closes the stream.
        for await (const message of pending as AsyncIterable<unknown>) {
          res = message;
          break;
        }
      } else res = await pending;
      return { outcome: "OK" as Outcome, message: "", res };
    } catch (err) {
      const e = ConnectError.from(err);
      return { outcome: e.code as Outcome, message: e.rawMessage, res: undefined };
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
  }

  let calls = 0;
  /** Calls every method of a service as every caller; returns one line per answer that is not the expected one. */
  async function runMatrix(service: DescService, rows: Record<string, AnyRow>): Promise<string[]> {
    const problems: string[] = [];
    for (const method of service.methods) {
      const row = rows[method.localName]!;
      for (const caller of CALLERS) {
        for (const target of caller === "operator" && row.perClient ? (["own", "free", "other"] as const) : (["free"] as const)) {
          const call: Call = { caller, target, tag: `${caller.toLowerCase()}-${target}-${++calls}-${unique()}` };
          const cell = `${service.name}.${method.name} as ${describeCall(call, !!row.perClient)}`;
          const request = await row.request(call);
          const token = row.as ? await row.as(call) : tokens[caller];
          const got = await invoke(service, method.localName, method.methodKind === "server_streaming", token, request);
          const want = expected(row, call);
          const body = json(got.res !== undefined && row.scan ? row.scan(got.res as never) : got.res);
          answers.push({ cell, outcome: got.outcome, message: got.message, body });
          const gap = KNOWN_GAPS[cell];
          if (gap && got.outcome === want) problems.push(`${cell}: answers ${outcomeName(want)} now, so the known gap is closed: remove it from KNOWN_GAPS`);
          if (gap && got.outcome === gap.got && got.outcome !== want) openGaps.push(`${cell}: ${outcomeName(got.outcome)}, expected ${outcomeName(want)}: ${gap.bug}`);
          else if (got.outcome !== want) {
            problems.push(`${cell}: got ${outcomeName(got.outcome)}${got.message ? ` ("${got.message}")` : ""}, expected ${outcomeName(want)}`);
            continue;
          }
          if (caller === "anonymous" && want === Code.Unauthenticated && row.access !== "public" && !got.message.includes("needs credentials")) problems.push(`${cell}: refused with "${got.message}"`);
          if (row.anonymous && caller === "anonymous" && got.message !== row.anonymous.message) problems.push(`${cell}: "${got.message}", expected "${row.anonymous.message}"`);
          if (got.outcome !== "OK") continue;
          // Never the other project's data; another project's admin may see this project's ids only where it sent them.
          const sent = json(request);
          const leaked = [...(caller === "foreign" ? ids.a : ids.b)].filter((id) => body.includes(id) && !(caller === "foreign" && sent.includes(id)));
          if (leaked.length) problems.push(`${cell}: the answer holds the other project's ${leaked.join(", ")}`);
          const problem = row.check?.(got.res as never, call);
          if (problem) problems.push(`${cell}: ${problem}`);
        }
      }
    }
    return problems;
  }

  // ---- Two projects: this one with channels, clients, a flow and jobs; another with a little of each. ----

  beforeAll(async () => {
    stack = await startGatewayStack("gw_matrix", { REQUESTS_PER_SEC_PER_OPERATOR: 10_000, LOGINS_PER_MINUTE_PER_ADDRESS: 10_000 });
    a = await seedProject(stack, "matrix");
    b = await seedProject(stack, "foreign");
    const apiKey = await admin(AccessService).createApiKey({ name: "matrix script" });
    tokens = { anonymous: undefined, admin: a.admin.token, operator: a.operator.token, apiKey: apiKey.secret, foreign: b.admin.token };
    otherOperatorId = (await admin(AccessService).createOperator({ email: `other-${unique()}@example.com`, name: "Olga Other", role: Role.OPERATOR, password: "a long enough password" })).operator!
      .operatorId;
    channelId = (await admin(ChannelsService).connectChannel(webChannel("Site chat"))).channel!.id;
    flowId = (await admin(FlowsService).createFlow({ definition: definition("Welcome") })).flow!.flowId;
    clients = { own: await newClient("own"), free: await newClient("free"), other: await newClient("other") };
    massJobId = (await admin(ContactsService).startMassAction({ action: { kind: MassActionKind.ADD_TAGS, values: ["seeded"] }, selection: { selection: { case: "contactIds", value: { ids: [clients.free.contactId] } } } }))
      .job!.jobId;
    resendJobId = (await admin(ChannelsService).startResendFailed({ channelId })).job!.id;
    const filterId = (await admin(ContactsService).createSavedFilter({ name: "VIPs", filter: { tags: ["vip"] } })).savedFilter!.filterId;
    [a.projectId, a.admin.operatorId, a.admin.email, a.operator.operatorId, a.operator.email, otherOperatorId, apiKey.apiKey!.keyId, channelId, flowId, massJobId, resendJobId, filterId].forEach((id) => ids.a.add(id));

    const other = <S extends DescService>(service: S) => as(service, b.admin.token);
    const foreignChannel = (await other(ChannelsService).connectChannel(webChannel("Their chat"))).channel!.id;
    await other(ContactsService).importSubscribers({ channelId: foreignChannel, messenger: Messenger.WEB, subscriberIds: "their-visitor" });
    const foreignContact = (await other(ContactsService).listContacts({ filter: { search: "their-visitor" } })).contacts[0]!.contactId;
    const foreignFlow = (await other(FlowsService).createFlow({ definition: definition("Their flow") })).flow!.flowId;
    foreignData = { channelId: foreignChannel, contactId: foreignContact, flowId: foreignFlow };
    [b.projectId, b.admin.operatorId, b.admin.email, b.operator.operatorId, b.operator.email, foreignChannel, foreignContact, foreignFlow].forEach((id) => ids.b.add(id));
  }, 120_000);

  afterAll(() => stack?.stop(), 60_000);

  it("has a row for every method of every served service, and the rows agree with POLICY", () => {
    const problems: string[] = [];
    for (const [service, rows] of SERVICES) {
      for (const method of service.methods) {
        const key = methodKey(method);
        const row = rows[method.localName];
        const rule = POLICY[key];
        if (!row) problems.push(`${key}: no row in the matrix`);
        if (!rule) problems.push(`${key}: no POLICY entry, so the gateway refuses it`);
        if (!row || !rule) continue;
        const allowed = [...rule.allow].sort().join(",");
        const want = [...AUDIENCES[row.access]].sort().join(",");
        if (allowed !== want) problems.push(`${key}: POLICY allows ${allowed}, the matrix expects ${want}`);
        if (!!rule.public !== (row.access === "public")) problems.push(`${key}: POLICY public=${!!rule.public}, the matrix expects ${row.access}`);
        if (!!rule.contact !== (row.access === "scoped")) problems.push(`${key}: POLICY ${rule.contact ? "checks" : "does not check"} the client, the matrix expects ${row.access}`);
      }
      for (const name of Object.keys(rows)) if (!service.methods.some((m) => m.localName === name)) problems.push(`${service.typeName}: row ${name} names no method`);
    }
    const covered = new Set(SERVICES.flatMap(([service]) => service.methods.map(methodKey)));
    for (const key of Object.keys(POLICY)) if (!covered.has(key)) problems.push(`${key}: in POLICY but in no service the matrix calls`);
    expect(problems).toEqual([]);
  });

  for (const [service, rows] of SERVICES) {
    it(`${service.name}: every method answers every caller as expected`, async () => {
      expect(await runMatrix(service, rows)).toEqual([]);
    }, 180_000);
  }

  it("leaves this project as it was after another project's admin called with its ids", async () => {
    // Their mass action named one of our clients; wait until it has run, so a leak would show.
    await waitFor("the other project's mass actions to finish", async () => (await as(ContactsService, b.admin.token).listMassActions({})).jobs.every((j) => j.state !== MassActionState.RUNNING));
    const problems: string[] = [];
    for (const id of spared.channels) {
      const { channel } = await admin(ChannelsService).getChannel({ channelId: id });
      if (channel?.state !== ChannelState.CONNECTED) problems.push(`channel ${id} is ${ChannelState[channel?.state ?? 0]}`);
    }
    for (const id of spared.flows) {
      const { flow } = await admin(FlowsService).getFlow({ flowId: id });
      if (flow?.archived || flow?.version !== 1) problems.push(`flow ${id}: archived=${flow?.archived} version=${flow?.version}`);
    }
    const operators = (await admin(AccessService).listOperators({})).operators;
    for (const id of spared.operators) if (operators.find((o) => o.operatorId === id)?.name !== "Spare") problems.push(`operator ${id} was changed`);
    const keys = (await admin(AccessService).listApiKeys({})).apiKeys;
    for (const id of spared.apiKeys) if (!keys.some((k) => k.keyId === id && !k.revokedAt)) problems.push(`API key ${id} was revoked`);
    const filters = (await admin(ContactsService).listSavedFilters({})).savedFilters;
    for (const id of spared.filters) if (!filters.some((f) => f.filterId === id)) problems.push(`saved filter ${id} is gone`);
    for (const before of spared.clients) {
      const after = await admin(ContactsService)
        .getContact({ contact: ref(before) })
        .then((r) => r.contact)
        .catch(() => undefined);
      if (after?.operatorId !== before.operatorId) problems.push(`client ${before.contactId}: ${after ? `operator ${before.operatorId} → ${after.operatorId}` : "deleted"}`);
    }
    // Every value another project's admin sent carried the "foreign-" tag.
    const cards = (await admin(ContactsService).listContacts({ pageSize: 200 })).contacts;
    if (json(cards).includes("foreign-")) problems.push(`a card holds another project's values: ${json(cards.filter((c) => json(c).includes("foreign-")))}`);
    for (const target of ["own", "free", "other"] as const) {
      const timeline = await admin(ContactsService).listTimeline({ contact: ref(clients[target]), pageSize: 200 });
      if (json(timeline).includes("foreign-")) problems.push(`the ${target} client's timeline holds another project's values`);
    }
    const chat = await admin(ChannelsService).listMessages({ channelId, peerId: clients.free.messengerUserId });
    if (json(chat).includes("foreign-")) problems.push("the free client's chat holds another project's message");
    expect(problems).toEqual([]);
  });


  it("never answers with a stack trace or an internal address", () => {
    expect(answers.length).toBeGreaterThan(300);
    const leaks = answers.filter((r) => INTERNALS.test(r.message) || INTERNALS.test(r.body)).map((r) => `${r.cell}: ${r.message || r.body.slice(0, 300)}`);
    expect(leaks).toEqual([]);
  });

  // ---- Bugs this suite found, fixed; each test states the right behaviour. ----

  const outcomeOf = (call: Promise<unknown>): Promise<Outcome> => call.then(() => "OK" as const, (err: unknown) => ConnectError.from(err).code);

  it("closes the known gaps of the matrix (KNOWN_GAPS)", () => {
    expect(openGaps).toEqual([]);
  });

  // Channels sends to recipient_id whatever contact_id names, so operators may not make raw sends at all.
  it("refuses an operator's raw send to another operator's client named by its messenger id alone", async () => {
    const send = as(ChannelsService, a.operator.token).sendMessage({ channelId, recipientId: clients.other.messengerUserId, text: "not yours to write to" });
    expect(outcomeName(await outcomeOf(send))).toBe("PermissionDenied");
  });

  it("refuses an operator's raw send to another operator's client under the contact id of their own client", async () => {
    const send = as(ChannelsService, a.operator.token).sendMessage({ channelId, recipientId: clients.other.messengerUserId, contactId: clients.own.contactId, text: "not yours either" });
    expect(outcomeName(await outcomeOf(send))).toBe("PermissionDenied");
  });

  // AddComment takes its author from the request: the guard holds people to their own name.
  it("does not let an operator write a comment in another operator's name", async () => {
    const got = await outcomeOf(as(ContactsService, a.operator.token).addComment({ contact: ref(clients.own), authorOperatorId: otherOperatorId, text: "signed by someone else" }));
    if (got !== "OK") return expect([Code.PermissionDenied, Code.InvalidArgument]).toContain(got);
    const [entry] = (await admin(ContactsService).listTimeline({ contact: ref(clients.own), pageSize: 1 })).entries;
    expect(entry?.actor).toBe(`operator:${a.operator.operatorId}`);
  });
});
