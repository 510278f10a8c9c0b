/**
 * Gateway benchmark (issue 6; see REPORT.md next to this file).
 *
 * What the gateway adds over calling the contacts service directly, for the two reads a UI makes most: a card
 * (GetContact) and the first page of a filtered list (ListContacts, tab ALL, a tag filter, 50 per page). The
 * gateway runs in a child process (its own event loop, as in production); this process runs the contacts service,
 * the load generators and a stub contacts service. Two gateways run in the child, sharing one database (projects,
 * operators, API keys): one in front of the real contacts service on the harness database, one in front of the
 * stub, which answers every GetContact / ListContacts from memory with the real service's own answers (same cards,
 * same page, same bytes). The stub takes the database out, so what is left is the gateway's own cost: Connect JSON
 * over HTTP/1.1, authentication (API key or access token), the request budget, the access guard, the gRPC call to
 * the backend and the JSON answer.
 *
 * For each upstream (stub, real) it measures, in one run:
 *   - sequential latency, one call in flight: per round one random contact (or the list request) is read by six
 *     sides, direct gRPC and through the gateway for each of three callers (API key = role service, an admin's
 *     access token, an operator's access token), in an order that rotates every round and reverses every other round;
 *     p50 / p90 / p99 per side, the overhead gateway p50 − direct p50, the ratio, and the median of the per-round
 *     differences (same contact, same moment);
 *   - throughput: card reads/s with the API key at BENCH_CONCURRENCY calls in flight for BENCH_WINDOW_SECONDS,
 *     gateway and direct windows interleaved (G D, D G, ...), median of the windows per side; with the CPU each
 *     process used (gateway child, this process, FerretDB when it can be found) and the machine's busy %. On the
 *     stub a third side calibrates the machine: a bare node:http server in the gateway's process that answers the
 *     same card JSON (no Connect, no auth, no backend call).
 * Also timed in this process: protobuf decode / JSON encode / JSON parse of one card and one page (the codec work
 * the gateway adds at the least). BENCH_PROFILE=1 CPU-profiles the gateway process during the stub's phases and
 * summarises where its time went (diagnostic: the profiler slows it down, so such a run is not for figures).
 * The request budgets per API key / operator are raised for the run (the defaults, 300/s per key and 50/s per
 * operator, would cap one caller far below the targets); the budget is still taken on every call.
 * Prints a table, writes a JSON summary (services/gateway/bench/run-<date>[-n].json, or BENCH_JSON), stops
 * everything, drops the databases and deletes the run's consumer groups (also on Ctrl-C).
 *
 * Run: npm run bench:gateway  (env: MONGO_URL, KAFKA_BROKERS, BENCH_*; see readSettings below)
 */
import { create, fromBinary, toBinary, toJsonString, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { findSourceMap } from "node:module";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import mongoose from "mongoose";
import { Pool } from "undici";
import {
  ContactSchema,
  ContactsService,
  ContactTab,
  GetContactResponseSchema,
  ListContactsRequestSchema,
  ListContactsResponseSchema,
  type Contact,
  type ListContactsRequest,
  type ListContactsResponse,
} from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { AuthService } from "@chatcrm/contracts/chatcrm/gateway/v1/auth_service_pb";
import { createGrpcClient, GrpcServer, notFound, PROJECT_METADATA_KEY, ROLE_METADATA_KEY, RpcError, Status, type GrpcClient, type ServiceHandlers } from "@chatcrm/grpc";
import { createKafka, Topics } from "@chatcrm/kafka";
import { createLogger, type Logger } from "@chatcrm/logging";
import { benchMachine, callAs, cpuBetween, cpuSnapshot, freePort, median, pidOnPort, type Pids, quantile, seededRandom, startGroupsAtEnd, stopAndDrop } from "@chatcrm/testing";
// The benchmark starts the real contacts service behind the gateway, as the gateway's suites do.
// eslint-disable-next-line @nx/enforce-module-boundaries
import { startContacts } from "../../contacts/src/app";
// eslint-disable-next-line @nx/enforce-module-boundaries
import { configSchema as contactsConfigSchema } from "../../contacts/src/config";
// eslint-disable-next-line @nx/enforce-module-boundaries
import { variableIndexFields, type ContactDoc } from "../../contacts/src/store/contact-document";
// eslint-disable-next-line @nx/enforce-module-boundaries
import { clientIdKey, identityId } from "../../contacts/src/store/support-models";
// eslint-disable-next-line @nx/enforce-module-boundaries
import { derivedContactId, newContactDoc } from "../../contacts/src/usecases/new-contact";
// eslint-disable-next-line @nx/enforce-module-boundaries
import { CITIES as ALL_CITIES, DAY, FIRST, LAST, LISTS, TAGS, variablesFor } from "../../contacts/bench/seed-vocabulary";
import { startGateway } from "../src/app";
import { configSchema as gatewayConfigSchema } from "../src/config";
import { createApiKey } from "../src/usecases/api-keys";
import { createOperator } from "../src/usecases/operators";
import { createProject } from "../src/usecases/create-project";
import { publicClient } from "../test/harness";

const { MongoClient } = mongoose.mongo;
type Env = NodeJS.ProcessEnv;
type AnyDoc = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------------------------
// Settings

function readSettings(env: Env) {
  const int = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${raw}: expected a whole number`);
    return n;
  };
  return {
    mongoUrl: env.MONGO_URL!,
    kafkaBrokers: env.KAFKA_BROKERS!.split(",").map((b) => b.trim()),
    /** Contacts in the project (seeded with the raw driver, ~3 kB of BSON each, as in the contacts benchmark). */
    n: int("BENCH_N", 1_000),
    /** Which upstreams to measure: stub (the gateway's own cost) and real (the contacts service on MONGO_URL). */
    upstreams: (env.BENCH_UPSTREAMS || "stub,real").split(",").map((u) => u.trim()).filter((u): u is Upstream => u === "stub" || u === "real"),
    /** Sequential rounds (six calls each) per read and upstream, after the warm-up; a phase also stops at its time budget. */
    stubCardRounds: int("BENCH_STUB_CARD_ROUNDS", 1_500),
    stubListRounds: int("BENCH_STUB_LIST_ROUNDS", 400),
    realCardRounds: int("BENCH_REAL_CARD_ROUNDS", 400),
    realListRounds: int("BENCH_REAL_LIST_ROUNDS", 10),
    /** Rounds run first and not counted (connections, JIT, the API key cache); fewer on the real upstream, where a list takes a second on FerretDB. */
    stubWarmup: int("BENCH_STUB_WARMUP", 50),
    realWarmup: int("BENCH_REAL_WARMUP", 2),
    /** A latency phase stops at its time budget, but only after this many measured rounds. */
    minRounds: int("BENCH_MIN_ROUNDS", 5),
    /** Seconds one latency phase (one read on one upstream) may take. */
    phaseSeconds: int("BENCH_PHASE_SECONDS", 25),
    realListSeconds: int("BENCH_REAL_LIST_SECONDS", 40),
    /** Throughput: calls in flight, seconds per window, windows per side (stub / real). */
    concurrency: int("BENCH_CONCURRENCY", 32),
    windowSeconds: int("BENCH_WINDOW_SECONDS", 10),
    realWindowSeconds: int("BENCH_REAL_WINDOW_SECONDS", 5),
    windows: int("BENCH_WINDOWS", 3),
    /** The list's total count costs the real service a second query; the UI may skip it (skip_total). */
    listTotal: env.BENCH_LIST_TOTAL === "1",
    /** Diagnostic: CPU-profile the gateway process during the stub's gateway throughput windows (adds overhead; not for figures). */
    profile: env.BENCH_PROFILE === "1",
    keepDb: env.BENCH_KEEP_DB === "1",
    json: env.BENCH_JSON ?? "",
    logLevel: env.LOG_LEVEL ?? "warn",
    seed: int("BENCH_SEED", 42),
  };
}

type Settings = ReturnType<typeof readSettings>;
type Upstream = "stub" | "real";

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

const log = (...parts: unknown[]) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...parts);
const r2 = (x: number) => +x.toFixed(2);
const r3 = (x: number) => +x.toFixed(3);

function dist(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: r3(quantile(s, 0.5)), p90: r3(quantile(s, 0.9)), p99: r3(quantile(s, 0.99)), max: r3(s[s.length - 1] ?? NaN) };
}

// ---------------------------------------------------------------------------------------------------------------
// CPU accounting from /proc (read-only): the gateway child, this process, FerretDB, and the machine.

// ---------------------------------------------------------------------------------------------------------------
// The gateway child: two gateways (in front of the real contacts service and in front of the stub) on one database.

interface ChildConfig {
  mongoUrl: string;
  kafkaBrokers: string[];
  database: string;
  groupPrefix: string;
  upstreams: Record<Upstream, string>;
  logLevel: string;
}

interface BenchPrincipals {
  projectId: string;
  password: string;
  admin: { operatorId: string; email: string };
  operator: { operatorId: string; email: string };
  apiKey: string;
}

type ChildToParent =
  | { type: "ready"; httpPorts: Record<Upstream, number>; principals: BenchPrincipals; startSeconds: number }
  | { type: "stats"; id: number; cpu: NodeJS.CpuUsage; eventLoopDelayMs: { p50: number; p99: number; max: number }; rssMiB: number }
  | { type: "profile"; id: number; profile?: ProfileSummary }
  | { type: "bare"; id: number; port: number }
  | { type: "stopped" }
  | { type: "failed"; message: string };

type ParentToChild = { type: "stats"; id: number } | { type: "bare-start"; id: number; body: string } | { type: "profile-start"; id: number } | { type: "profile-stop"; id: number; label: string } | { type: "stop" };

interface ProfileSummary {
  file: string;
  /** Sampled CPU time, idle excluded. */
  totalMs: number;
  /** Self time by where the code lives: a node_modules package, a source file of ours (through the bundle's source map), node internals, GC. */
  selfMsByPlace: Record<string, number>;
  /** Time with a frame of the place anywhere on the stack (counted once per sample). */
  inclusiveMsByPlace: Record<string, number>;
  /** Time with a frame matching the concern's pattern anywhere on the stack; concerns overlap (grpc-js calls protobuf). */
  inclusiveMsByConcern: Record<string, { ms: number; pct: number }>;
  topSelfFunctions: { fn: string; place: string; ms: number }[];
}

type ProfileNode = { id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }; hitCount?: number; children?: number[] };

/** Frames ("function@url") that mark where a gateway call spends its time, for the profile summary. */
const CONCERNS: Record<string, RegExp> = {
  "grpc-js: the call to the backend": /@grpc\/grpc-js/,
  "protobuf (all)": /@bufbuild\/protobuf/,
  "protobuf: decoding the backend's answer": /^fromBinary@/,
  "protobuf: the answer as JSON": /^(toJson|toJsonString|reflectToJson)@/,
  "Connect (all, including the interceptors and handler)": /@connectrpc/,
  "abort signals ended per request (AbortController.abort, DOMException)": /^(abort@node:internal\/abort_controller|DOMException@)/,
  "authentication (Authenticator.authenticate)": /^authenticate@/,
  "RpcError construction (Authenticator.apiKey builds one per call)": /^RpcError@/,
  "access token verification (jose)": /jose/,
  "request budget (RequestLimits.take)": /^take@/,
  "http2 stream: AsyncResource.bind's deprecate wrappers (node 20)": /^deprecate@/,
  "socket writes (writev)": /^writev@/,
  "garbage collector": /^\(garbage collector\)@/,
};

/** Summarises a CPU profile by place (package, our source file, node, GC), self and inclusive, and by concern. */
function summarizeProfile(profile: { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[] }, file: string): ProfileSummary {
  const perSampleMs = (profile.endTime - profile.startTime) / 1000 / Math.max(1, profile.samples.length);
  const bundleMaps = new Map<string, ReturnType<typeof findSourceMap>>();
  const placeOf = (frame: ProfileNode["callFrame"]) => {
    const { url, functionName } = frame;
    if (!url) return functionName.startsWith("(") ? functionName : "native";
    const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (nm) return nm[1]!;
    if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[0]}`;
    const filePath = url.startsWith("file://") ? new URL(url).pathname : url;
    if (!bundleMaps.has(filePath)) bundleMaps.set(filePath, findSourceMap(filePath));
    const origin = bundleMaps.get(filePath)?.findEntry(frame.lineNumber, frame.columnNumber) as { originalSource?: string } | undefined;
    const source = origin?.originalSource;
    if (!source) return path.basename(filePath);
    const rel = source.replace(/^.*?\/((?:services|libs)\/)/, "$1");
    return rel.includes("node_modules") ? (/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(rel)?.[1] ?? rel) : rel;
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const childIds = new Set(profile.nodes.flatMap((n) => n.children ?? []));
  const self: Record<string, number> = {};
  const inclusive: Record<string, number> = {};
  const concerns: Record<string, number> = {};
  const byFn = new Map<string, { fn: string; place: string; ms: number }>();
  const walk = (id: number, onStack: string[], onConcerns: string[]) => {
    const n = byId.get(id)!;
    const place = placeOf(n.callFrame);
    const stack = onStack.includes(place) ? onStack : [...onStack, place];
    const frame = `${n.callFrame.functionName}@${n.callFrame.url}`;
    const concernsHere = [...onConcerns, ...Object.keys(CONCERNS).filter((c) => !onConcerns.includes(c) && CONCERNS[c]!.test(frame))];
    const ms = (n.hitCount ?? 0) * perSampleMs;
    if (ms && place !== "(idle)") {
      self[place] = (self[place] ?? 0) + ms;
      for (const p of stack) inclusive[p] = (inclusive[p] ?? 0) + ms;
      for (const c of concernsHere) concerns[c] = (concerns[c] ?? 0) + ms;
      const key = `${place}|${n.callFrame.functionName}|${n.callFrame.lineNumber}`;
      const e = byFn.get(key) ?? byFn.set(key, { fn: n.callFrame.functionName || "(anonymous)", place, ms: 0 }).get(key)!;
      e.ms += ms;
    }
    for (const c of n.children ?? []) walk(c, stack, concernsHere);
  };
  for (const n of profile.nodes) if (!childIds.has(n.id)) walk(n.id, [], []);
  const sorted = (o: Record<string, number>, min = 1) => Object.fromEntries(Object.entries(o).filter(([, v]) => v >= min).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round(v)]));
  const totalMs = Object.values(self).reduce((a, b) => a + b, 0);
  return {
    file,
    totalMs: Math.round(totalMs),
    selfMsByPlace: sorted(self),
    inclusiveMsByPlace: sorted(inclusive, totalMs / 100),
    inclusiveMsByConcern: Object.fromEntries(Object.keys(CONCERNS).map((c) => [c, { ms: Math.round(concerns[c] ?? 0), pct: +((100 * (concerns[c] ?? 0)) / Math.max(1, totalMs)).toFixed(1) }])),
    topSelfFunctions: [...byFn.values()].sort((a, b) => b.ms - a.ms).slice(0, 30).map((f) => ({ ...f, ms: Math.round(f.ms) })),
  };
}

async function runGatewayChild(env: Env): Promise<void> {
  const cfg = JSON.parse(env.BENCH_GATEWAY_CHILD!) as ChildConfig;
  const send = (msg: ChildToParent) => process.send?.(msg);
  const logger = createLogger({ service: "gateway", level: cfg.logLevel as never, destination: process.stderr });
  const eld = monitorEventLoopDelay({ resolution: 5 });
  eld.enable();
  const secret = randomBytes(48).toString("base64");
  const t0 = performance.now();
  const configFor = (upstream: Upstream) =>
    gatewayConfigSchema.parse({
      ...env,
      MONGO_URL: cfg.mongoUrl,
      KAFKA_BROKERS: cfg.kafkaBrokers.join(","),
      MONGO_DATABASE: cfg.database,
      KAFKA_CLIENT_ID: `${cfg.database}-${upstream}`,
      KAFKA_CONSUMER_GROUP: `${cfg.groupPrefix}_live_${upstream}`,
      GRPC_HOST: "127.0.0.1",
      GRPC_PORT: "0",
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: "0",
      LOG_LEVEL: cfg.logLevel,
      ACCESS_TOKEN_SECRET: secret,
      CONTACTS_GRPC_ADDR: cfg.upstreams[upstream],
      // Card and list reads reach only contacts; the other backends are never called (gRPC connects lazily).
      CHANNELS_GRPC_ADDR: "127.0.0.1:9",
      FLOW_RUNTIME_GRPC_ADDR: "127.0.0.1:9",
      // One API key and one operator drive the whole load; the budget is still taken on every call.
      REQUESTS_PER_SEC_PER_API_KEY: "1000000",
      REQUESTS_PER_SEC_PER_OPERATOR: "1000000",
    });
  // One after the other: both sync the indexes of the shared database.
  const real = await startGateway(configFor("real"), logger);
  const stub = await startGateway(configFor("stub"), logger);
  const models = real.parts.models;
  const password = `pw-${randomBytes(9).toString("base64url")}`;
  const tag = randomBytes(3).toString("hex");
  const adminEmail = `bench-admin-${tag}@example.com`;
  const { project, admin } = await createProject(models, { name: "Gateway bench", adminEmail, adminName: "Anna Admin", adminPassword: password });
  const operatorEmail = `bench-op-${tag}@example.com`;
  const operator = await createOperator(models, project._id, { email: operatorEmail, name: "Oleg Operator", role: "operator", password });
  const key = await createApiKey(models, project._id, admin._id, "gateway benchmark");
  send({
    type: "ready",
    httpPorts: { real: real.httpPort, stub: stub.httpPort },
    startSeconds: r2((performance.now() - t0) / 1000),
    principals: {
      projectId: project._id,
      password,
      admin: { operatorId: admin._id, email: adminEmail },
      operator: { operatorId: operator._id, email: operatorEmail },
      apiKey: key.secret,
    },
  });
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params: object = {}) =>
    new Promise<T>((resolve, reject) => session.post(method, params, (err: Error | null, result: unknown) => (err ? reject(err) : resolve(result as T))));
  process.on("message", (msg: ParentToChild) => {
    if (msg.type === "bare-start") {
      // The calibration: a bare Node HTTP/1.1 server in the gateway's process that reads the request and answers a
      // fixed card, no Connect, no auth, no backend call: what HTTP alone costs on this machine.
      const bare = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          JSON.parse(Buffer.concat(chunks).toString("utf8"));
          res.writeHead(200, { "content-type": "application/json" });
          res.end(msg.body);
        });
      });
      bare.listen(0, "127.0.0.1", () => send({ type: "bare", id: msg.id, port: (bare.address() as AddressInfo).port }));
    } else if (msg.type === "profile-start") {
      void (async () => {
        await post("Profiler.enable");
        await post("Profiler.setSamplingInterval", { interval: 200 });
        await post("Profiler.start");
        send({ type: "profile", id: msg.id });
      })();
    } else if (msg.type === "profile-stop") {
      void (async () => {
        const { profile } = await post<{ profile: Parameters<typeof summarizeProfile>[0] }>("Profiler.stop");
        const file = path.resolve("dist", "bench", `gateway-${cfg.database}-${msg.label}.cpuprofile`);
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, JSON.stringify(profile));
        send({ type: "profile", id: msg.id, profile: summarizeProfile(profile, path.relative(process.cwd(), file)) });
      })();
    } else if (msg.type === "stats") {
      send({
        type: "stats",
        id: msg.id,
        cpu: process.cpuUsage(),
        eventLoopDelayMs: { p50: r2(eld.percentile(50) / 1e6), p99: r2(eld.percentile(99) / 1e6), max: r2(eld.max / 1e6) },
        rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
      });
      eld.reset();
    } else if (msg.type === "stop") {
      void (async () => {
        // Both gateways use the database: stop both, then drop it (dropping under a running service hurts FerretDB).
        await stub.stop().catch((err: unknown) => logger.error({ err }, "stopping the stub's gateway failed"));
        await stopAndDrop(real).catch((err: unknown) => logger.error({ err }, "stopping the gateway or dropping its database failed"));
        send({ type: "stopped" });
        process.exit(0);
      })();
    }
  });
  // The parent gone (killed, crashed): stop rather than linger with the harness's connections.
  process.on("disconnect", () => {
    void Promise.allSettled([stub.stop(), real.stop()]).then(() => process.exit(1));
  });
}

/** The parent's handle on the child: start, ask for its CPU and event-loop figures, stop. */
class GatewayChild {
  private nextId = 1;
  private readonly waiting = new Map<number, (msg: ChildToParent) => void>();
  private stopped?: Promise<void>;
  private constructor(readonly proc: ChildProcess) {
    proc.on("message", (msg: ChildToParent) => {
      if (msg.type === "stats" || msg.type === "profile" || msg.type === "bare") this.waiting.get(msg.id)?.(msg);
    });
  }

  static async start(cfg: ChildConfig, env: Env): Promise<{ child: GatewayChild; ready: Extract<ChildToParent, { type: "ready" }> }> {
    const proc = fork(process.argv[1]!, [], { env: { ...env, BENCH_GATEWAY_CHILD: JSON.stringify(cfg) }, execArgv: process.execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const child = new GatewayChild(proc);
    const ready = await new Promise<Extract<ChildToParent, { type: "ready" }>>((resolve, reject) => {
      proc.on("message", (msg: ChildToParent) => {
        if (msg.type === "ready") resolve(msg);
        if (msg.type === "failed") reject(new Error(`gateway child: ${msg.message}`));
      });
      proc.once("exit", (code) => reject(new Error(`the gateway child exited with ${code} before it was ready`)));
    });
    return { child, ready };
  }

  private ask<T extends ChildToParent>(msg: ParentToChild & { id: number }): Promise<T> {
    return new Promise((resolve) => {
      this.waiting.set(msg.id, (answer) => {
        this.waiting.delete(msg.id);
        resolve(answer as T);
      });
      this.proc.send(msg);
    });
  }

  stats() {
    return this.ask<Extract<ChildToParent, { type: "stats" }>>({ type: "stats", id: this.nextId++ });
  }

  async startBare(body: string): Promise<number> {
    return (await this.ask<Extract<ChildToParent, { type: "bare" }>>({ type: "bare-start", id: this.nextId++, body })).port;
  }

  async startProfile(): Promise<void> {
    await this.ask({ type: "profile-start", id: this.nextId++ });
  }

  async stopProfile(label: string): Promise<ProfileSummary | undefined> {
    return (await this.ask<Extract<ChildToParent, { type: "profile" }>>({ type: "profile-stop", id: this.nextId++, label })).profile;
  }

  stop(): Promise<void> {
    return (this.stopped ??= new Promise<void>((resolve) => {
      if (this.proc.exitCode !== null || !this.proc.connected) return resolve();
      const timer = setTimeout(() => {
        this.proc.kill("SIGKILL");
        resolve();
      }, 60_000);
      this.proc.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      this.proc.send({ type: "stop" } satisfies ParentToChild);
    }));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The data set: realistic cards (20 variables, 5 of 20 tags, lists, a last message), as the contacts benchmark seeds.

const CHANNELS = [
  { id: "bench-telegram", messenger: "telegram" },
  { id: "bench-whatsapp", messenger: "whatsapp" },
  { id: "bench-vk", messenger: "vk" },
] as const;
const LIST_TAG = "tag-03";
// This bench's cards name the first ten cities of the shared vocabulary (its data set predates sharing it).
const CITIES = ALL_CITIES.slice(0, 10);

function contactFor(r: ReturnType<typeof seededRandom>, projectId: string, operators: string[], i: number, now: number) {
  const channel = CHANNELS[i % CHANNELS.length]!;
  const messengerUserId = `${channel.messenger}-${100_000_000 + i}`;
  const createdAt = new Date(now - Math.floor(r.next() * 730 * DAY));
  const first = r.pick(FIRST);
  const doc = newContactDoc(
    {
      projectId,
      contactId: derivedContactId(projectId, `seed:${i}`),
      messenger: channel.messenger,
      channelId: channel.id,
      messengerUserId,
      profile: { firstName: first, lastName: r.pick(LAST), username: `${first.toLowerCase()}${i}`, language: r.pick(["ru", "en", "de", "kk"]), avatarUrl: `https://cdn.example.com/a/${i}.jpg` },
      at: createdAt,
      utm: r.next() < 0.4 ? { source: r.pick(["google", "yandex", "vk_ads"]), medium: "cpc", campaign: `camp-${r.int(20)}`, content: "", term: "" } : null,
      lists: r.sample(LISTS, r.int(3)),
    },
    i + 1,
  );
  const variables = variablesFor(r, i, CITIES);

  const lastAt = new Date(Math.min(now, createdAt.getTime() + Math.floor(r.next() * (now - createdAt.getTime()))));
  const unread = r.next() < 0.2;
  const assigned = r.next();
  Object.assign(doc, {
    variables,
    ...variableIndexFields(variables),
    tags: r.sample(TAGS, 5),
    firstInteractionAt: createdAt,
    lastInteractionAt: lastAt,
    lastInboundAt: lastAt,
    updatedAt: lastAt,
    // A fifth of the clients are the bench operator's, a tenth the admin's, the rest free.
    operatorId: assigned < 0.2 ? operators[0]! : assigned < 0.3 ? operators[1]! : "",
    unread,
    unreadCount: unread ? 1 + r.int(5) : 0,
    lastMessage: { author: "client", operatorId: "", excerpt: `Hello! I would like to know more about order ${r.int(100_000)} and the delivery options.`, hasAttachment: false, at: lastAt, failed: false, error: "", commandId: "" },
    recentInbound: Array.from({ length: 1 + r.int(5) }, (_, k) => `seed-msg-${i}-${k}`),
    rev: r.int(20),
  } satisfies Partial<ContactDoc>);
  return { doc, identity: { _id: identityId(projectId, channel.id, messengerUserId), projectId, contactId: doc._id, deletedAt: null, blacklisted: false } };
}

async function seed(db: mongoose.mongo.Db, s: Settings, projectId: string, operators: string[]) {
  const r = seededRandom(s.seed);
  const now = Date.now();
  const t0 = performance.now();
  const ids: string[] = [];
  for (let from = 0; from < s.n; from += 500) {
    const docs: ContactDoc[] = [];
    const identities: AnyDoc[] = [];
    const keys: AnyDoc[] = [];
    for (let i = from; i < Math.min(s.n, from + 500); i++) {
      const { doc, identity } = contactFor(r, projectId, operators, i, now);
      docs.push(doc);
      identities.push(identity);
      keys.push({ _id: clientIdKey(projectId, doc.clientId), contactId: doc._id });
      ids.push(doc._id);
    }
    await Promise.all([
      db.collection<AnyDoc>("contacts").insertMany(docs as never[], { ordered: false }),
      db.collection<AnyDoc>("identities").insertMany(identities as never[], { ordered: false }),
      db.collection<AnyDoc>("client_ids").insertMany(keys as never[], { ordered: false }),
    ]);
  }
  await db.collection<AnyDoc>("counters").insertOne({ _id: projectId as never, seq: s.n });
  return { ids, seconds: r2((performance.now() - t0) / 1000) };
}

// ---------------------------------------------------------------------------------------------------------------
// The stub contacts service: the real service's answers, served from memory.

interface StubData {
  cards: Map<string, Contact>;
  page?: ListContactsResponse;
}

function stubHandlers(data: StubData): ServiceHandlers<typeof ContactsService> {
  const handlers: Record<string, unknown> = {};
  for (const method of ContactsService.methods) {
    handlers[method.localName] = async () => {
      throw new RpcError(Status.UNIMPLEMENTED, `the benchmark's stub does not serve ${method.name}`);
    };
  }
  handlers.getContact = async (req: { contact?: { ref: { case?: string; value?: unknown } } }) => {
    const card = req.contact?.ref.case === "contactId" ? data.cards.get(req.contact.ref.value as string) : undefined;
    if (!card) throw notFound("contact");
    return { contact: card };
  };
  handlers.listContacts = async () => {
    if (!data.page) throw notFound("page");
    return data.page;
  };
  return handlers as ServiceHandlers<typeof ContactsService>;
}

// ---------------------------------------------------------------------------------------------------------------
// Clients: direct gRPC, and the gateway's Connect JSON over HTTP/1.1 keep-alive (undici).

type Caller = "apiKey" | "admin" | "operator";
const CALLERS: Caller[] = ["apiKey", "admin", "operator"];

class ConnectJsonClient {
  readonly pool: Pool;
  constructor(url: string, connections: number) {
    this.pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
  }

  async call(method: string, body: string, token: string): Promise<string> {
    const res = await this.pool.request({
      path: method.startsWith("/") ? method : `/chatcrm.contacts.v1.ContactsService/${method}`,
      method: "POST",
      headers: { "content-type": "application/json", "connect-protocol-version": "1", authorization: `Bearer ${token}` },
      body,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`${method}: HTTP ${res.statusCode}: ${text.slice(0, 300)}`);
    return text;
  }

  close() {
    return this.pool.close();
  }
}

interface Side {
  name: string;
  via: "direct" | "gateway";
  caller: Caller;
  run: (contactId: string) => Promise<unknown>;
}

/** The six sides of a read on one upstream: direct and through the gateway, for each caller. */
function sidesFor(
  read: "card" | "list",
  direct: GrpcClient<typeof ContactsService>,
  gateway: ConnectJsonClient,
  metadata: Record<Caller, { metadata: Record<string, string> }>,
  tokens: Record<Caller, string>,
  listRequest: ListContactsRequest,
): Side[] {
  const listJson = toJsonString(ListContactsRequestSchema, listRequest);
  const sides: Side[] = [];
  for (const caller of CALLERS) {
    if (read === "card") {
      sides.push({
        name: `direct/${caller}`,
        via: "direct",
        caller,
        run: async (contactId) => {
          const { contact } = await direct.getContact({ contact: { ref: { case: "contactId", value: contactId } } }, metadata[caller]);
          if (contact?.contactId !== contactId) throw new Error(`direct GetContact answered ${contact?.contactId} for ${contactId}`);
        },
      });
      sides.push({
        name: `gateway/${caller}`,
        via: "gateway",
        caller,
        run: async (contactId) => {
          const body = JSON.parse(await gateway.call("GetContact", JSON.stringify({ contact: { contactId } }), tokens[caller])) as { contact?: { contactId?: string } };
          if (body.contact?.contactId !== contactId) throw new Error(`gateway GetContact answered ${body.contact?.contactId} for ${contactId}`);
        },
      });
    } else {
      sides.push({
        name: `direct/${caller}`,
        via: "direct",
        caller,
        run: async () => {
          const res = await direct.listContacts(listRequest, metadata[caller]);
          if (res.contacts.length === 0) throw new Error("direct ListContacts answered an empty page");
        },
      });
      sides.push({
        name: `gateway/${caller}`,
        via: "gateway",
        caller,
        run: async () => {
          const body = JSON.parse(await gateway.call("ListContacts", listJson, tokens[caller])) as { contacts?: unknown[] };
          if (!body.contacts?.length) throw new Error("gateway ListContacts answered an empty page");
        },
      });
    }
  }
  return sides;
}

// ---------------------------------------------------------------------------------------------------------------
// Measurements

/**
 * Sequential rounds: in each, every side reads the same contact once, one call in flight, in an order that rotates
 * every round and reverses every other one. The first `warmup` rounds are not counted. Stops after `rounds`, or
 * (after at least `minRounds`) once another round would end past the time budget.
 */
async function latencyPhase(name: string, sides: Side[], pickContact: () => string, opts: { rounds: number; warmup: number; minRounds: number; budgetSeconds: number }) {
  const samples = new Map<string, number[]>(sides.map((side) => [side.name, []]));
  const t0 = performance.now();
  let measured = 0;
  for (let round = 0; round < opts.warmup + opts.rounds; round++) {
    if (round >= opts.warmup && measured >= opts.minRounds) {
      const elapsed = performance.now() - t0;
      if (elapsed + elapsed / round > opts.budgetSeconds * 1000) break;
    }
    const contactId = pickContact();
    const order = sides.map((_, i) => sides[(i + round) % sides.length]!);
    if (round % 2 === 1) order.reverse();
    for (const side of order) {
      const t = performance.now();
      await side.run(contactId);
      const elapsed = performance.now() - t;
      if (round >= opts.warmup) samples.get(side.name)!.push(elapsed);
    }
    if (round >= opts.warmup) measured++;
  }
  const bySide = Object.fromEntries([...samples].map(([side, xs]) => [side, dist(xs)]));
  const overhead: Record<string, unknown> = {};
  for (const caller of CALLERS) {
    const d = samples.get(`direct/${caller}`)!;
    const g = samples.get(`gateway/${caller}`)!;
    const dd = dist(d);
    const gd = dist(g);
    overhead[caller] = {
      p50OverheadMs: r3(gd.p50 - dd.p50),
      p90OverheadMs: r3(gd.p90 - dd.p90),
      p99OverheadMs: r3(gd.p99 - dd.p99),
      p50Ratio: r3(gd.p50 / dd.p50),
      /** Median over rounds of (gateway − direct), the two calls reading the same contact a moment apart. */
      pairedMedianOverheadMs: r3(median(g.map((t, i) => t - d[i]!))),
    };
  }
  const seconds = r2((performance.now() - t0) / 1000);
  log(
    `${name}: ${measured} rounds in ${seconds} s; p50 ms ` +
      CALLERS.map((c) => `${c} direct ${bySide[`direct/${c}`]!.p50} / gateway ${bySide[`gateway/${c}`]!.p50} (+${(overhead[c] as { p50OverheadMs: number }).p50OverheadMs})`).join(", "),
  );
  return { rounds: measured, warmupRounds: opts.warmup, seconds, bySide, overhead };
}

/** Card reads at `concurrency` in flight for `seconds`: calls/s, latency under load, errors. */
async function throughputWindow(run: (contactId: string) => Promise<unknown>, ids: string[], concurrency: number, seconds: number, seed: number) {
  const r = seededRandom(seed);
  const latencies: number[] = [];
  let errors = 0;
  let firstError = "";
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      try {
        await run(ids[r.int(ids.length)]!);
        latencies.push(performance.now() - t);
      } catch (err) {
        errors++;
        firstError ||= (err as Error).message.slice(0, 300);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  const lat = dist(latencies);
  return { calls: latencies.length, errors, firstError, seconds: r2(elapsed), perSecond: Math.round(latencies.length / elapsed), latencyMs: { p50: lat.p50, p90: lat.p90, p99: lat.p99, max: lat.max } };
}

/** Median µs of protobuf encode/decode, JSON encode (as Connect does: toJson, then JSON.stringify) and JSON.parse of one answer. */
function codecCosts<D extends DescMessage>(schema: D, message: MessageShape<D>) {
  const bytes = toBinary(schema, message);
  const json = toJsonString(schema, message);
  const time = (fn: () => unknown) => {
    const perBatch: number[] = [];
    for (let batch = 0; batch < 7; batch++) {
      const t = performance.now();
      for (let i = 0; i < 50; i++) fn();
      perBatch.push(((performance.now() - t) / 50) * 1000);
    }
    return Math.round(median(perBatch.slice(2)));
  };
  return {
    protobufBytes: bytes.length,
    jsonBytes: Buffer.byteLength(json),
    protobufEncodeUs: time(() => toBinary(schema, message)),
    protobufDecodeUs: time(() => fromBinary(schema, bytes)),
    jsonEncodeUs: time(() => toJsonString(schema, message)),
    jsonParseUs: time(() => JSON.parse(json)),
  };
}

// ---------------------------------------------------------------------------------------------------------------

function defaultJsonPath(day: string): string {
  const dir = path.join("services", "gateway", "bench");
  for (let i = 1; ; i++) {
    const file = path.join(dir, `run-${day}${i === 1 ? "" : `-${i}`}.json`);
    if (!existsSync(file)) return file;
  }
}

async function main(env: Env) {
  if (!env.MONGO_URL || !env.KAFKA_BROKERS) throw new Error("set MONGO_URL and KAFKA_BROKERS (e.g. the test harness: MONGO_URL=mongodb://127.0.0.1:37017 KAFKA_BROKERS=127.0.0.1:19092)");
  const s = readSettings(env);
  const runStarted = new Date();
  const machine = benchMachine();
  const stamp = Date.now();
  const groupPrefix = `bench_gateway_${stamp}`;
  const contactsDb = `${groupPrefix}_contacts`;
  const gatewayDb = `${groupPrefix}_gw`;
  const logger: Logger = createLogger({ service: "bench", level: s.logLevel as never, destination: process.stderr });
  const rawClient = await MongoClient.connect(s.mongoUrl, { serverSelectionTimeoutMS: 10_000 });
  const info = (await rawClient.db("admin").command({ buildInfo: 1 })) as AnyDoc;
  const ferret = typeof info.ferretdbVersion === "string";
  const server = ferret ? `FerretDB ${String(info.ferretdbVersion)} (reports MongoDB ${String(info.version)})` : `MongoDB ${String(info.version)}`;
  const mongoPort = Number(/:(\d+)(?:[/?,]|$)/.exec(s.mongoUrl.replace(/^mongodb(\+srv)?:\/\/[^@/]*@/, "mongodb://"))?.[1]) || 27017;
  const dbPid = pidOnPort(mongoPort);
  log(`gateway benchmark: ${server}, N=${s.n}, upstreams ${s.upstreams.join(", ")}; ${machine.nproc} cpus (${machine.cpuModel}), load ${machine.loadavgAtStart.join(" ")}, node ${machine.node}, HEAD ${machine.gitHead}`);

  const summary: AnyDoc = {
    benchmark: "gateway",
    startedAt: runStarted.toISOString(),
    command: "npm run bench:gateway",
    server,
    machine,
    databases: { contacts: contactsDb, gateway: gatewayDb },
    settings: { ...s, mongoUrl: s.mongoUrl.replace(/\/\/[^@/]*@/, "//***@") },
    process:
      "the gateways run in a child process of their own; this process runs the contacts service (real upstream), the stub contacts service, the gRPC and HTTP load generators",
  };
  const results: AnyDoc = {};
  summary.results = results;

  const stubData: StubData = { cards: new Map() };
  const stub = new GrpcServer({ logger, reflection: false }).addService(ContactsService, stubHandlers(stubData));
  const stubPort = await stub.listen("127.0.0.1", 0);
  const contactsPort = await freePort();
  let child: GatewayChild | undefined;
  let contacts: Awaited<ReturnType<typeof startContacts>> | undefined;
  const clients: { close(): unknown }[] = [];

  let cleaning: Promise<void> | undefined;
  const cleanUp = (interrupted = false) =>
    (cleaning ??= (async () => {
      summary.finishedAt = new Date().toISOString();
      summary.loadavgAtEnd = os.loadavg().map(r2);
      if (interrupted) summary.interrupted = true;
      for (const c of clients) await Promise.resolve(c.close()).catch(() => undefined);
      // The child stops both gateways and drops their database.
      await child?.stop();
      if (s.keepDb) await contacts?.stop().catch((err: unknown) => log(`contacts stop failed: ${(err as Error).message}`));
      else await stopAndDrop(contacts).catch((err: unknown) => log(`contacts stop/drop failed: ${(err as Error).message}`));
      if (!contacts && !s.keepDb) await rawClient.db(contactsDb).dropDatabase().catch(() => undefined);
      await stub.shutdown(2_000);
      await rawClient.close().catch(() => undefined);
      log(s.keepDb ? `kept ${contactsDb} (the gateway's database ${gatewayDb} is dropped by the child)` : `dropped ${contactsDb} and ${gatewayDb}`);
      try {
        const admin = createKafka({ brokers: s.kafkaBrokers, clientId: `${groupPrefix}_admin`, logger }).admin();
        await admin.connect();
        const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(groupPrefix));
        if (groups.length) await admin.deleteGroups(groups);
        await admin.disconnect();
        log(`deleted ${groups.length} consumer groups of the run`);
      } catch (err) {
        log(`could not delete the run's consumer groups: ${(err as Error).message}`);
      }
      const file = s.json || defaultJsonPath(runStarted.toISOString().slice(0, 10));
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
      log(`summary written to ${file}`);
    })());
  const onSignal = (signal: string) => {
    log(`${signal}: stopping the services and dropping the databases`);
    summary.interruptedBy = signal;
    void cleanUp(true).finally(() => process.exit(130));
  };
  process.once("SIGINT", () => onSignal("SIGINT"));
  process.once("SIGTERM", () => onSignal("SIGTERM"));

  try {
    // 1. The gateways (child), a project with an admin, an operator and an API key.
    const started = await GatewayChild.start(
      { mongoUrl: s.mongoUrl, kafkaBrokers: s.kafkaBrokers, database: gatewayDb, groupPrefix, upstreams: { real: `127.0.0.1:${contactsPort}`, stub: `127.0.0.1:${stubPort}` }, logLevel: s.logLevel },
      env,
    );
    child = started.child;
    const { principals, httpPorts } = started.ready;
    const projectId = principals.projectId;
    summary.gatewayStartSeconds = started.ready.startSeconds;
    log(`gateways started in ${started.ready.startSeconds} s (child pid ${child.proc.pid}): real on :${httpPorts.real}, stub on :${httpPorts.stub}; project ${projectId}`);

    // 2. Contacts: seed the project's cards, then start the real service on them (its start syncs the indexes).
    const seeded = await seed(rawClient.db(contactsDb), s, projectId, [principals.operator.operatorId, principals.admin.operatorId]);
    summary.seedSeconds = seeded.seconds;
    log(`seeded ${s.n} contacts in ${seeded.seconds} s`);
    const contactsGroup = `${groupPrefix}_contacts`;
    await startGroupsAtEnd({ [contactsGroup]: [Topics.inboundMessages.name, Topics.deliveryStatuses.name, Topics.subscriberStatuses.name] }, logger);
    const contactsStart = performance.now();
    contacts = await startContacts(
      contactsConfigSchema.parse({
        ...env,
        MONGO_URL: s.mongoUrl,
        KAFKA_BROKERS: s.kafkaBrokers.join(","),
        MONGO_DATABASE: contactsDb,
        KAFKA_CLIENT_ID: contactsDb,
        KAFKA_CONSUMER_GROUP: contactsGroup,
        FUNNEL_MOVES_CONSUMER_GROUP: `${contactsGroup}_funnel`,
        GRPC_HOST: "127.0.0.1",
        GRPC_PORT: String(contactsPort),
        LOG_LEVEL: s.logLevel,
      }),
      logger,
    );
    summary.contactsStartSeconds = r2((performance.now() - contactsStart) / 1000);
    log(`contacts started on :${contactsPort} in ${summary.contactsStartSeconds} s`);

    // 3. Callers: the API key, and the admin's and the operator's access tokens (logged in through the gateway).
    const realUrl = `http://127.0.0.1:${httpPorts.real}`;
    const auth = publicClient(realUrl, AuthService);
    const login = async (email: string) => (await auth.login({ email, password: principals.password })).tokens!.accessToken;
    const tokens: Record<Caller, string> = { apiKey: principals.apiKey, admin: await login(principals.admin.email), operator: await login(principals.operator.email) };
    // What the gateway passes on for each caller (caller.ts backendMetadata): an API key calls as role "service".
    const metadata: Record<Caller, { metadata: Record<string, string> }> = {
      apiKey: { metadata: { [PROJECT_METADATA_KEY]: projectId, [ROLE_METADATA_KEY]: "service" } },
      admin: callAs(projectId, principals.admin.operatorId, "admin"),
      operator: callAs(projectId, principals.operator.operatorId, "operator"),
    };
    const direct: Record<Upstream, GrpcClient<typeof ContactsService>> = {
      real: createGrpcClient(ContactsService, `127.0.0.1:${contactsPort}`, { defaultTimeoutMs: 120_000 }),
      stub: createGrpcClient(ContactsService, `127.0.0.1:${stubPort}`, { defaultTimeoutMs: 120_000 }),
    };
    clients.push(direct.real, direct.stub);

    // 4. The stub's answers: every card (one stream) and the list's first page, from the real service.
    const listRequest = create(ListContactsRequestSchema, { filter: { tags: [LIST_TAG] }, tab: ContactTab.ALL, pageSize: 50, skipTotal: !s.listTotal });
    const t4 = performance.now();
    for await (const { contact } of direct.real.streamContacts({}, metadata.apiKey)) if (contact) stubData.cards.set(contact.contactId, contact);
    stubData.page = await direct.real.listContacts(listRequest, metadata.apiKey);
    const sampleId = seeded.ids[7]!;
    const realCard = (await direct.real.getContact({ contact: { ref: { case: "contactId", value: sampleId } } }, metadata.apiKey)).contact!;
    const cardJson = toJsonString(ContactSchema, realCard);
    const pageJsonBytes = Buffer.byteLength(toJsonString(ListContactsResponseSchema, stubData.page));
    log(`stub loaded in ${r2((performance.now() - t4) / 1000)} s: ${stubData.cards.size} cards, a page of ${stubData.page.contacts.length}`);
    const checks = {
      cardsStreamed: stubData.cards.size,
      streamedCardEqualsGetContact: toJsonString(ContactSchema, stubData.cards.get(sampleId)!) === cardJson,
      pageSize: stubData.page.contacts.length,
      pageMatches: stubData.page.contacts.filter((c) => c.tags.includes(LIST_TAG)).length,
      cardJsonBytes: Buffer.byteLength(cardJson),
      pageJsonBytes,
      gateway: {} as AnyDoc,
    };
    // Through each gateway (Connect JSON, the harness's client), the same card and page as directly.
    for (const upstream of s.upstreams) {
      const viaGateway = publicClient(`http://127.0.0.1:${httpPorts[upstream]}`, ContactsService, tokens.apiKey);
      const card = (await viaGateway.getContact({ contact: { ref: { case: "contactId", value: sampleId } } })).contact!;
      const page = await viaGateway.listContacts(listRequest);
      checks.gateway[upstream] = {
        sameCard: toJsonString(ContactSchema, card) === cardJson,
        samePage: page.contacts.map((c) => c.contactId).join() === stubData.page.contacts.map((c) => c.contactId).join(),
      };
    }
    summary.checks = checks;
    log(`checks: ${JSON.stringify(checks)}`);
    // What the gateway must do to every answer at the least (decode gRPC's protobuf, encode JSON) and the client then
    // (parse JSON), timed in this process: a floor under the gateway's own cost per call.
    summary.codecCostUs = { card: codecCosts(GetContactResponseSchema, create(GetContactResponseSchema, { contact: realCard })), page: codecCosts(ListContactsResponseSchema, stubData.page) };
    log(`codec costs, µs per answer (this process): ${JSON.stringify(summary.codecCostUs)}`);

    // 5. Sequential latency, per upstream: the card, then the first page.
    const pick = seededRandom(s.seed + 1);
    const pickContact = () => seeded.ids[pick.int(seeded.ids.length)]!;
    const latency: AnyDoc = {};
    results.latency = latency;
    for (const upstream of s.upstreams) {
      const gateway = new ConnectJsonClient(`http://127.0.0.1:${httpPorts[upstream]}`, 1);
      clients.push(gateway);
      const rounds = upstream === "stub" ? { card: s.stubCardRounds, list: s.stubListRounds } : { card: s.realCardRounds, list: s.realListRounds };
      latency[upstream] = {};
      for (const read of ["card", "list"] as const) {
        const sides = sidesFor(read, direct[upstream], gateway, metadata, tokens, listRequest);
        const profiled = s.profile && upstream === "stub";
        if (profiled) await child.startProfile();
        (latency[upstream] as AnyDoc)[read] = await latencyPhase(`latency ${upstream} ${read}`, sides, pickContact, {
          rounds: rounds[read],
          warmup: upstream === "stub" ? s.stubWarmup : s.realWarmup,
          minRounds: s.minRounds,
          budgetSeconds: upstream === "real" && read === "list" ? s.realListSeconds : s.phaseSeconds,
        });
        if (profiled) ((latency[upstream] as AnyDoc)[read] as AnyDoc).gatewayProfile = await child.stopProfile(`${upstream}-latency-${read}`);
      }
    }

    // 6. Throughput of card reads with the API key: gateway and direct windows interleaved (G D D G G D ...).
    const throughput: AnyDoc = {};
    results.throughput = throughput;
    const pids: Pids = { gateway: child.proc.pid, bench: process.pid, ...(dbPid && { database: dbPid }) };
    for (const upstream of s.upstreams) {
      const gateway = new ConnectJsonClient(`http://127.0.0.1:${httpPorts[upstream]}`, s.concurrency);
      clients.push(gateway);
      const bare = upstream === "stub" ? new ConnectJsonClient(`http://127.0.0.1:${await child.startBare(toJsonString(GetContactResponseSchema, create(GetContactResponseSchema, { contact: realCard })))}`, s.concurrency) : undefined;
      if (bare) clients.push(bare);
      const run: Record<string, (contactId: string) => Promise<void>> = {
        ...(bare && {
          bare: async (contactId: string) => {
            await bare.call("/bare", JSON.stringify({ contact: { contactId } }), tokens.apiKey);
          },
        }),
        gateway: async (contactId: string) => {
          const text = await gateway.call("GetContact", JSON.stringify({ contact: { contactId } }), tokens.apiKey);
          if (!text.includes(contactId)) throw new Error(`gateway GetContact answered without ${contactId}`);
        },
        direct: async (contactId: string) => {
          const { contact } = await direct[upstream].getContact({ contact: { ref: { case: "contactId", value: contactId } } }, metadata.apiKey);
          if (contact?.contactId !== contactId) throw new Error(`direct GetContact answered ${contact?.contactId} for ${contactId}`);
        },
      };
      const seconds = upstream === "stub" ? s.windowSeconds : s.realWindowSeconds;
      // A short warm-up of every side: connections, JIT.
      for (const [i, fn] of Object.values(run).entries()) await throughputWindow(fn, seeded.ids, s.concurrency, 2, i + 1);
      // Windows interleaved: each block runs every side once, in an order that rotates and reverses block by block
      // (G D, D G, G D ... or G D B, B D G, D B G ...).
      const sideNames = bare ? ["gateway", "direct", "bare"] : ["gateway", "direct"];
      const order: string[] = [];
      for (let block = 0; block < s.windows; block++) {
        const rotated = sideNames.map((_, i) => sideNames[(i + Math.floor(block / 2)) % sideNames.length]!);
        order.push(...(block % 2 === 1 ? rotated.reverse() : rotated));
      }
      const windows: AnyDoc[] = [];
      for (const [w, side] of order.entries()) {
        const profiled = s.profile && upstream === "stub" && side === "gateway";
        if (profiled) await child.startProfile();
        await child.stats();
        const a = cpuSnapshot(pids);
        const result = await throughputWindow(run[side]!, seeded.ids, s.concurrency, seconds, 100 + w);
        const b = cpuSnapshot(pids);
        const childStats = await child.stats();
        const profile = profiled ? await child.stopProfile(`${upstream}-window${w + 1}`) : undefined;
        const cpu = cpuBetween(a, b, { digits: 2, calls: result.calls });
        windows.push({ side, ...result, cpu, gatewayEventLoopDelayMs: side === "gateway" ? childStats.eventLoopDelayMs : undefined, gatewayRssMiB: childStats.rssMiB, ...(profile && { gatewayProfile: profile }) });
        log(
          `throughput ${upstream} ${side} window ${w + 1}: ${result.perSecond}/s (p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, errors ${result.errors}); CPU % of a core: ` +
            Object.entries(cpu.procs).map(([k, v]) => `${k} ${v.pctOfOneCore}`).join(", ") + `; machine busy ${cpu.machineBusyPct}%`,
        );
        if (result.errors) log(`  first error: ${result.firstError}`);
      }
      const per = (side: string) => windows.filter((w) => w.side === side).map((w) => w.perSecond as number);
      const procMedian = (side: string, proc: string, field: "pctOfOneCore" | "cpuUsPerCall") =>
        median(windows.filter((w) => w.side === side).map((w) => (w.cpu as ReturnType<typeof cpuBetween>).procs[proc]?.[field] ?? NaN));
      throughput[upstream] = {
        concurrency: s.concurrency,
        windowSeconds: seconds,
        windows,
        medianPerSecond: Object.fromEntries(sideNames.map((side) => [side, median(per(side))])),
        gatewayOverDirect: r3(median(per("gateway")) / median(per("direct"))),
        medianCpu: {
          gatewayProcessPctOfOneCore: procMedian("gateway", "gateway", "pctOfOneCore"),
          gatewayProcessCpuUsPerCall: procMedian("gateway", "gateway", "cpuUsPerCall"),
          ...(bare && { bareHttpProcessPctOfOneCore: procMedian("bare", "gateway", "pctOfOneCore"), bareHttpProcessCpuUsPerCall: procMedian("bare", "gateway", "cpuUsPerCall") }),
          benchProcessPctOfOneCore: { gatewaySide: procMedian("gateway", "bench", "pctOfOneCore"), directSide: procMedian("direct", "bench", "pctOfOneCore") },
          databasePctOfOneCore: { gatewaySide: procMedian("gateway", "database", "pctOfOneCore"), directSide: procMedian("direct", "database", "pctOfOneCore") },
          machineBusyPct: { gatewaySide: median(windows.filter((w) => w.side === "gateway").map((w) => (w.cpu as ReturnType<typeof cpuBetween>).machineBusyPct)), directSide: median(windows.filter((w) => w.side === "direct").map((w) => (w.cpu as ReturnType<typeof cpuBetween>).machineBusyPct)) },
        },
      };
    }

    // 7. The table.
    printTable(summary, s);
  } finally {
    await cleanUp();
  }
}

function printTable(summary: AnyDoc, s: Settings) {
  const results = summary.results as { latency: Record<string, Record<string, { rounds: number; bySide: Record<string, ReturnType<typeof dist>>; overhead: Record<Caller, AnyDoc> }>>; throughput: Record<string, AnyDoc> };
  console.log(`\nGateway benchmark — ${String(summary.server)}, N=${s.n}, ${String(summary.startedAt)}`);
  console.log("| upstream | read | caller | rounds | direct p50 / p90 / p99 ms | gateway p50 / p90 / p99 ms | p50 overhead ms | paired median ms | p50 ratio |");
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const [upstream, reads] of Object.entries(results.latency ?? {})) {
    for (const [read, phase] of Object.entries(reads)) {
      for (const caller of CALLERS) {
        const d = phase.bySide[`direct/${caller}`]!;
        const g = phase.bySide[`gateway/${caller}`]!;
        const o = phase.overhead[caller];
        console.log(`| ${upstream} | ${read} | ${caller} | ${phase.rounds} | ${d.p50} / ${d.p90} / ${d.p99} | ${g.p50} / ${g.p90} / ${g.p99} | ${String(o.p50OverheadMs)} | ${String(o.pairedMedianOverheadMs)} | ${String(o.p50Ratio)} |`);
      }
    }
  }
  for (const [upstream, t] of Object.entries(results.throughput ?? {})) {
    const m = t.medianPerSecond as { gateway: number; direct: number; bare?: number };
    const cpu = t.medianCpu as AnyDoc;
    console.log(
      `throughput ${upstream}, card reads with the API key at ${String(t.concurrency)} in flight, ${String(t.windowSeconds)} s windows: gateway ${m.gateway}/s, direct ${m.direct}/s` +
        `${m.bare === undefined ? "" : `, bare HTTP server ${m.bare}/s`} (median of windows), gateway/direct ${String(t.gatewayOverDirect)}; ` +
        `gateway process ${String(cpu.gatewayProcessPctOfOneCore)}% of a core, ${String(cpu.gatewayProcessCpuUsPerCall)} µs CPU per call` +
        `${m.bare === undefined ? "" : ` (bare HTTP: ${String(cpu.bareHttpProcessPctOfOneCore)}%, ${String(cpu.bareHttpProcessCpuUsPerCall)} µs)`}`,
    );
  }
}

// The benchmark is an entry point like a service's main.ts: the one place that reads the environment.
// eslint-disable-next-line no-restricted-properties
const env = process.env;
if (env.BENCH_GATEWAY_CHILD) {
  runGatewayChild(env).catch((err: unknown) => {
    console.error(err);
    process.send?.({ type: "failed", message: (err as Error).message } satisfies ChildToParent);
    process.exit(1);
  });
} else {
  main(env).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
