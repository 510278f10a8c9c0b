/**
 * Channels benchmark (see REPORT.md next to this file).
 *
 * Runs the real channels service in a child process (its own event loop, as in production) against the harness's
 * Kafka and MongoDB-compatible server, with the Telegram fake (default flood limits) and the load generators in this
 * process, and measures:
 *   - outbound: N send commands published to channels.send-commands.v1 for B bot channels × C chats × K per chat, from
 *     the first publish to the last SENT status read back from channels.delivery-statuses.v1; checks per-chat order at
 *     the fake, that the fake never answered 429 (its limitHits) and that every command got exactly one SENT;
 *   - inbound: autocannon posting Telegram text updates (unique update_id) with the webhook secret to one channel for
 *     BENCH_IN_SECONDS at each of BENCH_IN_CONNECTIONS; then reads the topic window back and checks that every
 *     accepted (2xx) update was published once for the bench project.
 * Each phase gets a fresh service on a fresh database; the service's consumer groups start at the topics' current
 * ends (so it does not chew through the harness's history first). After every round and run the records put on the
 * topics since the last clean are counted (bench / other projects) and deleted (deleteRecords up to the end offsets;
 * BENCH_KEEP_RECORDS=1 keeps them): every test suite reads these topics from their beginning, and contacts' tests would
 * otherwise ingest some 200,000 bench messages first. At the end the databases are dropped and the bench's consumer
 * groups deleted. The child process's own figures (CPU, event-loop delay, rate-limiter polls, in-flight waits, channel
 * reads, Kafka produce times, optional CPU profile with BENCH_PROFILE=1) come from wrapping src classes' prototypes
 * from this file; src is not changed. Prints a table and writes a JSON summary (dist/bench/ or BENCH_JSON).
 *
 * Run: npm run bench:channels  (env: MONGO_URL, KAFKA_BROKERS, BENCH_*; see readSettings below)
 */
import { benchMachine, cpuBetween, cpuSnapshot, freePort, pidOnPort, type Pids, quantile } from "@chatcrm/testing";
import { create, fromBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import autocannon, { type Result as CannonResult } from "autocannon";
import { AssignerProtocol, type Admin, type Kafka } from "kafkajs";
import mongoose from "mongoose";
import { ChannelsService, ConnectChannelRequestSchema } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { DeliveryState, MessageOrigin } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { createGrpcClient, PROJECT_METADATA_KEY, ROLE_METADATA_KEY } from "@chatcrm/grpc";
import { createKafka, EventPublisher, Header, headersToStrings, Topics, type OutgoingEvent } from "@chatcrm/kafka";
import { createLogger } from "@chatcrm/logging";
import { startChannels } from "../src/app";
import { configSchema, type Config } from "../src/config";
import { ChannelRegistry } from "../src/accounts/channel-registry";
import { WebhookAcceptor } from "../src/inbound/accept-webhook";
import { derivedId } from "../src/inbound/message-ids";
import { RateLimiter } from "../src/outbound/rate-limiter";
import { Semaphore } from "../src/outbound/sleep";
import { TelegramAdapter } from "../src/providers/telegram/telegram-adapter";
import { TelegramFake, textUpdate } from "../test/fakes/telegram-fake";

const { MongoClient } = mongoose.mongo;
type Env = NodeJS.ProcessEnv;

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
  const list = (name: string, fallback: string) => (env[name] || fallback).split(",").map((p) => p.trim()).filter(Boolean);
  return {
    mongoUrl: env.MONGO_URL!,
    kafkaBrokers: env.KAFKA_BROKERS!.split(",").map((b) => b.trim()),
    /** Which phases to run: outbound, inbound. */
    phases: new Set(list("BENCH_PHASES", "outbound,inbound")),
    /** Outbound: bot channels, chats per bot, commands per chat (N = bots × chats × perChat per round). */
    bots: int("BENCH_BOTS", 100),
    chats: int("BENCH_CHATS", 100),
    perChat: int("BENCH_PER_CHAT", 2),
    outRounds: int("BENCH_OUT_ROUNDS", 2),
    /** A round that has not seen every command's final status after this long is reported as incomplete. */
    outTimeoutSeconds: int("BENCH_OUT_TIMEOUT", 90),
    /** …or once no command has reached its final status for this long (a stall; the rest is reported as missing). */
    outStallSeconds: int("BENCH_OUT_STALL", 20),
    /** Inbound: autocannon connections per run (one run each), seconds per run, distinct senders cycled through. */
    inConnections: list("BENCH_IN_CONNECTIONS", "50,100").map(Number),
    inSeconds: int("BENCH_IN_SECONDS", 30),
    inWarmupSeconds: int("BENCH_IN_WARMUP", 3),
    inSenders: int("BENCH_IN_SENDERS", 1000),
    /** Diagnostic: CPU-profile the service process during each measured round/run (adds overhead; not for figures). */
    profile: env.BENCH_PROFILE === "1",
    keepDb: env.BENCH_KEEP_DB === "1",
    keepRecords: env.BENCH_KEEP_RECORDS === "1",
    json: env.BENCH_JSON ?? "",
    logLevel: (env.LOG_LEVEL ?? "warn") as Config["LOG_LEVEL"],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

const log = (...parts: unknown[]) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...parts);
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));
const r1 = (x: number) => +x.toFixed(1);
const r2 = (x: number) => +x.toFixed(2);

function dist(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: r2(quantile(s, 0.5)), p99: r2(quantile(s, 0.99)), max: r2(s[s.length - 1] ?? NaN) };
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

// ---------------------------------------------------------------------------------------------------------------
// CPU accounting from /proc: who used the two cores during a phase (read-only; nothing is signalled).

// ---------------------------------------------------------------------------------------------------------------
// The service in a child process. The child counts, by wrapping the classes' prototypes from outside (src is not
// changed): rate-limiter polls (tryAcquire calls and how many said "wait"), and how long a send waited for an
// in-flight slot (Semaphore.acquire; the rate slot is booked after it). It also reports its CPU and event-loop delay.

interface ChildConfig {
  mongoUrl: string;
  kafkaBrokers: string[];
  database: string;
  webhookPort: number;
  telegramApiUrl: string;
  secretsKey: string;
  logLevel: Config["LOG_LEVEL"];
}

type ChildStats = {
  cpuSeconds: number;
  wallSeconds: number;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  rssMiB: number;
  limiter: { tryAcquire: number; waits: number; granted: number };
  inFlightWaitMs: ReturnType<typeof dist>;
  /** TelegramAdapter.send: one Bot API call to the fake, answer parsed. */
  providerSendMs: ReturnType<typeof dist>;
  /** ChannelRegistry.resolve: a cache hit, or (every 10 s per channel) a read of the channel from the database. */
  channelResolveMs: ReturnType<typeof dist> & { over100ms: number; pendingNow: number; databaseReads: number };
  /** A findById on the channels collection once a second from the service's own connection: the database's answer time. */
  dbProbeMs: ReturnType<typeof dist>;
  /** With BENCH_PROFILE=1: where the service's CPU went between reset and stats (self time by package and function). */
  profile?: { file: string; totalMs: number; byPackage: Record<string, number>; topFunctions: { fn: string; where: string; ms: number }[] };
  /** WebhookAcceptor.accept: from a parsed update to its events being durable (the Kafka publish included). */
  webhookAcceptMs: ReturnType<typeof dist>;
  /** EventPublisher.publishBatch per topic: produce requests (acks = all) and events per request. */
  kafkaPublishes: Record<string, { requests: number; ms: ReturnType<typeof dist>; eventsPerRequest: ReturnType<typeof dist> }>;
};

async function runServiceChild(env: Env): Promise<void> {
  const cfg = JSON.parse(env.BENCH_CHILD_CONFIG!) as ChildConfig;
  const send = (msg: unknown) => process.send?.(msg);
  const counters = { tryAcquire: 0, waits: 0 };
  const inFlightWaits: number[] = [];
  const tryAcquire = RateLimiter.prototype.tryAcquire;
  RateLimiter.prototype.tryAcquire = function (this: RateLimiter, ...args: Parameters<RateLimiter["tryAcquire"]>) {
    counters.tryAcquire++;
    const wait = tryAcquire.apply(this, args);
    if (wait > 0) counters.waits++;
    return wait;
  };
  const acquire = Semaphore.prototype.acquire;
  Semaphore.prototype.acquire = async function (this: Semaphore): Promise<void> {
    const asked = performance.now();
    await acquire.call(this);
    inFlightWaits.push(performance.now() - asked);
  };
  const sendMs: number[] = [];
  const send0 = TelegramAdapter.prototype.send;
  TelegramAdapter.prototype.send = async function (this: TelegramAdapter, ...args: Parameters<TelegramAdapter["send"]>) {
    const t = performance.now();
    try {
      return await send0.apply(this, args);
    } finally {
      sendMs.push(performance.now() - t);
    }
  };
  const resolveMs: number[] = [];
  let resolvesPending = 0;
  const resolve0 = ChannelRegistry.prototype.resolve;
  ChannelRegistry.prototype.resolve = async function (this: ChannelRegistry, ...args: Parameters<ChannelRegistry["resolve"]>) {
    const t = performance.now();
    resolvesPending++;
    try {
      return await resolve0.apply(this, args);
    } finally {
      resolvesPending--;
      resolveMs.push(performance.now() - t);
    }
  };
  const probeMs: number[] = [];
  const channelReads = { n: 0 };
  const acceptMs: number[] = [];
  const accept = WebhookAcceptor.prototype.accept;
  WebhookAcceptor.prototype.accept = async function (this: WebhookAcceptor, ...args: Parameters<WebhookAcceptor["accept"]>) {
    const t = performance.now();
    try {
      return await accept.apply(this, args);
    } finally {
      acceptMs.push(performance.now() - t);
    }
  };
  const publishes = new Map<string, { ms: number[]; events: number[] }>();
  const publishBatch = EventPublisher.prototype.publishBatch;
  EventPublisher.prototype.publishBatch = async function (this: EventPublisher, ...args: Parameters<EventPublisher["publishBatch"]>) {
    const t = performance.now();
    try {
      return await publishBatch.apply(this, args);
    } finally {
      const name = args[0].name;
      const p = publishes.get(name) ?? publishes.set(name, { ms: [], events: [] }).get(name)!;
      p.ms.push(performance.now() - t);
      p.events.push(args[1].length);
    }
  } as EventPublisher["publishBatch"];
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  let base = { cpu: process.cpuUsage(), at: performance.now() };
  const reset = () => {
    counters.tryAcquire = counters.waits = 0;
    inFlightWaits.length = 0;
    acceptMs.length = 0;
    sendMs.length = 0;
    resolveMs.length = 0;
    probeMs.length = 0;
    channelReads.n = 0;
    publishes.clear();
    eld.reset();
    base = { cpu: process.cpuUsage(), at: performance.now() };
  };
  // Optional CPU profile of the service process (inspector), summarised by package: node_modules/<pkg>, the bundle
  // (service and libs code, bundled into one file), node internals, GC.
  const profiling = env.BENCH_PROFILE === "1";
  const session = profiling ? new Session() : undefined;
  session?.connect();
  const post = <T>(method: string, params: object = {}) =>
    new Promise<T>((resolve, reject) => session!.post(method, params, (err: Error | null, result: unknown) => (err ? reject(err) : resolve(result as T))));
  let profileSeq = 0;
  const startProfile = async () => {
    if (!profiling) return;
    await post("Profiler.enable");
    await post("Profiler.setSamplingInterval", { interval: 500 });
    await post("Profiler.start");
  };
  type ProfileNode = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number };
  const stopProfile = async (): Promise<ChildStats["profile"]> => {
    if (!profiling) return undefined;
    const { profile } = await post<{ profile: { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[] } }>("Profiler.stop");
    const file = path.resolve("dist", "bench", `channels-${cfg.database}-${profileSeq++}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    const perSampleMs = (profile.endTime - profile.startTime) / 1000 / Math.max(1, profile.samples.length);
    const where = (url: string, fn: string) => {
      if (!url) return fn.startsWith("(") ? fn : "native";
      const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
      if (nm) return nm[1]!;
      if (url.startsWith("node:")) return "node";
      return url.includes("dist/bench") ? "bundle (service + libs)" : url;
    };
    const byPackage: Record<string, number> = {};
    const byFn = new Map<string, { fn: string; where: string; ms: number }>();
    for (const n of profile.nodes) {
      const ms = (n.hitCount ?? 0) * perSampleMs;
      if (!ms) continue;
      const w = where(n.callFrame.url, n.callFrame.functionName);
      byPackage[w] = (byPackage[w] ?? 0) + ms;
      const key = `${w}|${n.callFrame.functionName}|${n.callFrame.lineNumber}`;
      const e = byFn.get(key) ?? byFn.set(key, { fn: n.callFrame.functionName || "(anonymous)", where: w, ms: 0 }).get(key)!;
      e.ms += ms;
    }
    const totalMs = Object.entries(byPackage).filter(([k]) => k !== "(idle)").reduce((a, [, b]) => a + b, 0);
    return {
      file,
      totalMs: Math.round(totalMs),
      byPackage: Object.fromEntries(Object.entries(byPackage).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round(v)])),
      topFunctions: [...byFn.values()].sort((a, b) => b.ms - a.ms).slice(0, 25).map((f) => ({ ...f, ms: Math.round(f.ms) })),
    };
  };

  const stats = (): ChildStats => {
    const cpu = process.cpuUsage(base.cpu);
    return {
      cpuSeconds: r1((cpu.user + cpu.system) / 1e6),
      wallSeconds: r1((performance.now() - base.at) / 1000),
      eventLoopDelayMs: { p50: r1(eld.percentile(50) / 1e6), p99: r1(eld.percentile(99) / 1e6), max: r1(eld.max / 1e6) },
      rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
      limiter: { ...counters, granted: counters.tryAcquire - counters.waits },
      inFlightWaitMs: dist(inFlightWaits),
      providerSendMs: dist(sendMs),
      channelResolveMs: { ...dist(resolveMs), over100ms: resolveMs.filter((x) => x > 100).length, pendingNow: resolvesPending, databaseReads: channelReads.n },
      dbProbeMs: dist(probeMs),
      webhookAcceptMs: dist(acceptMs),
      kafkaPublishes: Object.fromEntries([...publishes].map(([topic, p]) => [topic, { requests: p.ms.length, ms: dist(p.ms), eventsPerRequest: dist(p.events) }])),
    };
  };

  const config: Config = {
    ...configSchema.parse({ MONGO_URL: cfg.mongoUrl, KAFKA_BROKERS: cfg.kafkaBrokers.join(","), CHANNEL_SECRETS_KEY: cfg.secretsKey }),
    GRPC_HOST: "127.0.0.1",
    GRPC_PORT: 0,
    MONGO_DATABASE: cfg.database,
    MONGO_SERVER_SELECTION_TIMEOUT_MS: 10_000,
    KAFKA_CLIENT_ID: cfg.database,
    LOG_LEVEL: cfg.logLevel,
    SHUTDOWN_TIMEOUT_MS: 5_000,
    WEBHOOK_HOST: "127.0.0.1",
    WEBHOOK_PORT: cfg.webhookPort,
    PUBLIC_WEBHOOK_BASE_URL: `http://127.0.0.1:${cfg.webhookPort}`,
    TELEGRAM_API_URL: cfg.telegramApiUrl,
    KAFKA_CONSUMER_GROUP: cfg.database,
    MESSAGE_LOG_CONSUMER_GROUP: `${cfg.database}-log`,
  };
  const logger = createLogger({ service: "channels", level: config.LOG_LEVEL, destination: process.stderr });
  const t0 = performance.now();
  const service = await startChannels(config, logger);
  // Reads of channel records: ChannelRegistry.resolve's cache misses (the registry holds this very model object).
  const channelsModel = service.parts.models.channels;
  const findById0 = channelsModel.findById;
  channelsModel.findById = function (this: typeof channelsModel, ...args: Parameters<typeof findById0>) {
    if (args[0] !== "bench-probe") channelReads.n++;
    return findById0.apply(this, args);
  } as typeof findById0;
  // The database's answer time as the service sees it, once a second (one probe at a time).
  let probing = false;
  const probe = setInterval(() => {
    if (probing) return;
    probing = true;
    const t = performance.now();
    void service.parts.models.channels
      .findById("bench-probe")
      .lean()
      .then(
        () => probeMs.push(performance.now() - t),
        () => probeMs.push(performance.now() - t),
      )
      .finally(() => (probing = false));
  }, 1_000);
  probe.unref();
  send({ type: "ready", grpcPort: service.grpcPort, webhookPort: service.parts.webhookPort, startSeconds: r1((performance.now() - t0) / 1000) });

  process.on("message", (msg: { id: number; cmd: string }) => {
    const reply = (data: unknown) => send({ type: "reply", id: msg.id, data });
    void (async () => {
      switch (msg.cmd) {
        case "reset":
          reset();
          await startProfile();
          return reply(null);
        case "stats":
          return reply({ ...stats(), profile: await stopProfile() });
        case "pending":
          return reply(await service.parts.models.pendingEvents.countDocuments({}));
        case "stop":
          clearInterval(probe);
          await service.stop();
          reply(null);
          setTimeout(() => process.exit(0), 50);
          return;
      }
    })().catch((err: unknown) => send({ type: "reply", id: msg.id, error: (err as Error).message }));
  });
  // The parent went away (killed): do not linger with open consumers.
  process.on("disconnect", () => void service.stop().finally(() => process.exit(0)));
}

class ServiceChild {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  exited = false;

  private constructor(
    readonly proc: ChildProcess,
    readonly database: string,
    readonly grpcPort: number,
    readonly webhookPort: number,
    readonly startSeconds: number,
  ) {
    proc.on("message", (msg: { type: string; id: number; data?: unknown; error?: string }) => {
      if (msg.type !== "reply") return;
      const w = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      if (msg.error) w?.reject(new Error(msg.error));
      else w?.resolve(msg.data);
    });
    proc.on("exit", () => {
      this.exited = true;
      for (const w of this.waiting.values()) w.reject(new Error("the service process exited"));
      this.waiting.clear();
    });
  }

  static start(env: Env, cfg: ChildConfig): Promise<ServiceChild> {
    const proc = fork(process.argv[1]!, [], {
      env: { ...env, BENCH_CHANNELS_ROLE: "service", BENCH_CHILD_CONFIG: JSON.stringify(cfg) },
      execArgv: ["--enable-source-maps"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the service process exited during start-up (code ${code})`));
      proc.once("exit", onExit);
      proc.once("message", (msg: { type: string; grpcPort: number; webhookPort: number; startSeconds: number }) => {
        proc.off("exit", onExit);
        if (msg.type === "ready") resolve(new ServiceChild(proc, cfg.database, msg.grpcPort, msg.webhookPort, msg.startSeconds));
        else reject(new Error(`unexpected first message from the service: ${JSON.stringify(msg)}`));
      });
    });
  }

  call<T>(cmd: "reset" | "stats" | "pending" | "stop", timeoutMs = 60_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error("the service process has exited"));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`the service did not answer ${cmd} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v as T)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.proc.send({ id, cmd });
    });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((r) => this.proc.once("exit", r));
    await this.call("stop", 30_000).catch((err: unknown) => {
      log(`service ${this.database} did not stop cleanly (${(err as Error).message}); killing pid ${this.proc.pid}`);
      this.proc.kill("SIGKILL");
    });
    await Promise.race([exited, sleep(5_000)]);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Kafka: topic ends, group offsets, and reading a window of a topic back.

type Offsets = Map<number, string>;

async function topicEnds(admin: Admin, topic: string): Promise<Offsets> {
  return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high]));
}

/**
 * Commits offsets for a fresh group, so its consumers start exactly there (not at the topics' beginning). What
 * kafkajs' admin.setOffsets does (a paused consumer seeks, which commits, and stops after its first fetch), for
 * several topics at once and with a short fetch wait: setOffsets takes one topic and about 5 s per call.
 */
async function startGroupAt(kafka: Kafka, admin: Admin, groupId: string, at: Map<string, Offsets>) {
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    for (const topic of at.keys()) await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer.on(consumer.events.FETCH, () => void consumer.stop().then(resolve, reject));
      consumer.run({ eachBatchAutoResolve: false, eachBatch: async () => undefined }).catch(reject);
      consumer.pause([...at.keys()].map((topic) => ({ topic })));
      for (const [topic, offsets] of at) for (const [partition, offset] of offsets) consumer.seek({ topic, partition, offset });
    });
  } finally {
    await consumer.disconnect();
  }
  for (const [topic, offsets] of at) {
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    for (const p of committed?.partitions ?? []) {
      if (p.offset !== offsets.get(p.partition)) throw new Error(`group ${groupId}: ${topic}[${p.partition}] committed at ${p.offset}, wanted ${offsets.get(p.partition)}`);
    }
  }
}

interface TappedRecord {
  partition: number;
  offset: string;
  headers: Record<string, string>;
  value: Buffer | null;
  receivedAt: number;
}

/**
 * Reads one topic from `from` on with a throwaway group and hands every record once to `onRecord`; `reached(ends)`
 * says whether every record up to `ends` has been read. (The group starts at the topic's end and seeks back to
 * `from`: kafkajs' admin.setOffsets runs a consumer until its first fetch and takes 5 s per call.)
 */
async function tapFrom(kafka: Kafka, topic: string, from: Offsets, groupId: string, onRecord: (r: TappedRecord) => void) {
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 250, sessionTimeout: 30_000 });
  const seen = new Set<string>();
  const covered = new Map<number, number>();
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: false });
  await consumer.run({
    partitionsConsumedConcurrently: 6,
    eachBatch: async ({ batch }) => {
      const receivedAt = Date.now();
      const start = BigInt(from.get(batch.partition) ?? "0");
      for (const m of batch.messages) {
        const key = `${batch.partition}:${m.offset}`;
        if (seen.has(key) || BigInt(m.offset) < start) continue;
        seen.add(key);
        covered.set(batch.partition, (covered.get(batch.partition) ?? 0) + 1);
        onRecord({ partition: batch.partition, offset: m.offset, headers: headersToStrings(m.headers), value: m.value, receivedAt });
      }
    },
  });
  for (const [partition, offset] of from) consumer.seek({ topic, partition, offset });
  await joined;
  return {
    groupId,
    reached: (ends: Offsets) => [...ends].every(([p, end]) => (covered.get(p) ?? 0) >= Number(BigInt(end) - BigInt(from.get(p) ?? "0"))),
    stop: () => consumer.disconnect(),
  };
}

/** Reads [from, to) of a topic and returns what `onRecord` collected; throws when it cannot finish in time. */
async function readWindow(kafka: Kafka, topic: string, from: Offsets, to: Offsets, groupId: string, onRecord: (r: TappedRecord) => void, timeoutMs = 90_000) {
  const wanted = new Map([...to].filter(([p, end]) => BigInt(end) > BigInt(from.get(p) ?? "0")));
  if (wanted.size === 0) return;
  const tap = await tapFrom(kafka, topic, from, groupId, (r) => {
    if (BigInt(r.offset) < BigInt(to.get(r.partition) ?? "0")) onRecord(r);
  });
  const deadline = Date.now() + timeoutMs;
  try {
    while (!tap.reached(wanted)) {
      if (Date.now() > deadline) throw new Error(`reading ${topic} back did not finish in ${timeoutMs} ms`);
      await sleep(100);
    }
  } finally {
    await tap.stop();
  }
}

const countOf = (a: Offsets, b: Offsets) => [...b].reduce((sum, [p, end]) => sum + Number(BigInt(end) - BigInt(a.get(p) ?? "0")), 0);

// ---------------------------------------------------------------------------------------------------------------

const SENDERS_FIRST = ["Anna", "Boris", "Carla", "Dmitry", "Elena", "Farid", "Galina", "Hugo", "Irina", "Jamal", "Ksenia", "Leo"];
const SENDERS_LAST = ["Ivanova", "Smith", "Petrov", "Garcia", "Kuznetsov", "Müller", "Rossi", "Sokolova"];
const FOREIGN_FAILURE = /^channel \S+ does not exist in this project$/;
const TEXTS = [
  "Hello! Do you deliver to Almaty?",
  "Здравствуйте, хочу уточнить статус заказа 18734",
  "What sizes do you have for the blue jacket?",
  "/start",
  "Thanks, got it 👍",
  "Can I pay by card on delivery?",
  "Нужна консультация по тарифу Pro, перезвоните пожалуйста",
  "ok",
];

async function main(env: Env) {
  if (env.BENCH_CHANNELS_ROLE === "service") return runServiceChild(env);
  if (!env.MONGO_URL || !env.KAFKA_BROKERS) throw new Error("set MONGO_URL and KAFKA_BROKERS (the test harness: MONGO_URL=mongodb://127.0.0.1:37017 KAFKA_BROKERS=127.0.0.1:19092)");
  const s = readSettings(env);
  const runStarted = new Date();
  const stamp = Date.now();
  const project = `bench-channels-${stamp}`;
  const dbPrefix = `bench_channels_${stamp}`;
  const tapPrefix = `bench-tap-${stamp}`;
  let tapSeq = 0;
  const nextTapGroup = (what: string) => `${tapPrefix}-${what}-${tapSeq++}`;
  const machine = benchMachine();
  const mongoPort = Number(/:(\d+)/.exec(s.mongoUrl.replace(/^mongodb(\+srv)?:\/\/[^@]*@/, "mongodb://"))?.[1] ?? 27017);
  const pids: Pids = { bench: process.pid, kafka: pidOnPort(Number(s.kafkaBrokers[0]!.split(":")[1])), ferretdb: pidOnPort(mongoPort) };
  log(`channels benchmark: project ${project}; ${machine.nproc} cpus, node ${machine.node}, load ${machine.loadavgAtStart.join(" ")}; pids ${JSON.stringify(pids)}`);

  const quietLogger = createLogger({ service: "channels-bench", level: "error", destination: process.stderr });
  const kafka = createKafka({ brokers: s.kafkaBrokers, clientId: `bench-${stamp}`, logger: quietLogger });
  const admin = kafka.admin();
  await admin.connect();
  const publisher = new EventPublisher(kafka);
  await publisher.connect();
  const rawClient = await MongoClient.connect(s.mongoUrl, { serverSelectionTimeoutMS: 10_000 });
  const fake = await TelegramFake.start(); // Telegram's default flood limits: 30/s per bot (burst 30), 1/s per chat (burst 3)
  const secretsKey = randomBytes(32).toString("base64");

  const BENCH_TOPICS = [Topics.inboundMessages, Topics.sendCommands, Topics.deliveryStatuses, Topics.subscriberStatuses];
  const startEnds = new Map<string, Offsets>();
  for (const t of BENCH_TOPICS) startEnds.set(t.name, await topicEnds(admin, t.name));

  const summary: Record<string, unknown> = { benchmark: "channels", startedAt: runStarted.toISOString(), project, machine, settings: { ...s, phases: [...s.phases], mongoUrl: s.mongoUrl.replace(/\/\/[^@/]*@/, "//***@") } };
  summary.otherConsumersAtPhaseStart = {};
  const databases: string[] = [];
  let child: ServiceChild | undefined;

  /** Starts a service on a fresh database whose consumer groups begin at the topics' current ends. */
  const startService = async (phase: string) => {
    const database = `${dbPrefix}_${phase}`;
    databases.push(database);
    const ends = new Map<string, Offsets>();
    for (const t of [Topics.inboundMessages, Topics.sendCommands, Topics.deliveryStatuses]) ends.set(t.name, await topicEnds(admin, t.name));
    const t0 = performance.now();
    await Promise.all([
      startGroupAt(kafka, admin, database, new Map([[Topics.sendCommands.name, ends.get(Topics.sendCommands.name)!]])),
      startGroupAt(kafka, admin, `${database}-log`, ends),
    ]);
    log(`consumer groups ${database} and ${database}-log set to the topics' ends in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const webhookPort = await freePort();
    const others = await otherConsumers(admin, (g) => g.startsWith(dbPrefix) || g.startsWith(tapPrefix));
    (summary.otherConsumersAtPhaseStart as Record<string, unknown>)[phase] = { count: others.length, groups: others.slice(0, 30) };
    if (others.length) log(`${others.length} consumer group(s) of other processes read the channels topics now: ${others.map((o) => o.group).slice(0, 8).join(", ")}${others.length > 8 ? ", …" : ""}`);
    const svc = await ServiceChild.start(env, { mongoUrl: s.mongoUrl, kafkaBrokers: s.kafkaBrokers, database, webhookPort, telegramApiUrl: fake.baseUrl, secretsKey, logLevel: s.logLevel });
    pids.service = svc.proc.pid;
    log(`service for ${phase} started in ${svc.startSeconds} s (pid ${svc.proc.pid}, gRPC ${svc.grpcPort}, webhooks ${svc.webhookPort}, database ${database})`);
    return svc;
  };
  const stopService = async () => {
    if (!child) return;
    const c = child;
    child = undefined;
    await c.stop();
    delete pids.service;
    if (!s.keepDb) {
      await rawClient
        .db(c.database)
        .dropDatabase()
        .then(() => log(`dropped ${c.database}`))
        .catch((err: unknown) => log(`could not drop ${c.database}: ${(err as Error).message}`));
    }
  };
  const connectBots = async (svc: ServiceChild, count: number) => {
    const client = createGrpcClient(ChannelsService, `127.0.0.1:${svc.grpcPort}`, { defaultTimeoutMs: 60_000 });
    const asAdmin = { metadata: { [PROJECT_METADATA_KEY]: project, [ROLE_METADATA_KEY]: "admin" } };
    const bots: { token: string; channelId: string }[] = [];
    const t0 = performance.now();
    try {
      await pool(
        Array.from({ length: count }, (_, i) => i),
        8,
        async (i) => {
          const bot = fake.addBot({ username: `bench_${stamp % 100_000}_${i}_bot` });
          const res = await client.connectChannel(create(ConnectChannelRequestSchema, { name: `Bench bot ${i}`, settings: { case: "telegram", value: { botToken: bot.token } } }), asAdmin);
          bots[i] = { token: bot.token, channelId: res.channel!.id };
        },
      );
    } finally {
      client.close();
    }
    log(`connected ${count} Telegram channel(s) over gRPC in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return bots;
  };

  /**
   * Deletes the records put on the shared topics since the last clean (deleteRecords up to the current end offsets),
   * after counting whose they are. Called after every round and run, so other test runs that read these topics from
   * their beginning meet as few bench records as possible (see the header and REPORT.md).
   */
  const cleanups: Record<string, unknown>[] = [];
  summary.kafkaCleanup = cleanups;
  const cleanTopics = async (after: string) => {
    const entry: Record<string, unknown> = { after };
    await Promise.all(
      BENCH_TOPICS.map(async (t) => {
        try {
          const from = startEnds.get(t.name)!;
          const to = await topicEnds(admin, t.name);
          const counts = { records: countOf(from, to), bench: 0, others: 0, otherProjects: new Set<string>() };
          if (counts.records === 0) return;
          await readWindow(kafka, t.name, from, to, nextTapGroup("cleanup"), (r) => {
            if (r.headers[Header.projectId] === project) counts.bench++;
            else {
              counts.others++;
              counts.otherProjects.add(r.headers[Header.projectId] ?? "");
            }
          });
          let deleted = false;
          if (!s.keepRecords) {
            await admin.deleteTopicRecords({ topic: t.name, partitions: [...to].filter(([p, end]) => BigInt(end) > BigInt(from.get(p) ?? "0")).map(([partition, offset]) => ({ partition, offset })) });
            deleted = true;
          }
          startEnds.set(t.name, to);
          entry[t.name] = { records: counts.records, bench: counts.bench, others: counts.others, otherProjects: counts.otherProjects.size, deleted };
          log(`  ${t.name}: ${counts.records} records (${counts.bench} of the bench, ${counts.others} of ${counts.otherProjects.size} other project(s))${deleted ? " deleted" : " kept"}`);
        } catch (err) {
          entry[t.name] = { error: (err as Error).message };
          log(`  cleanup of ${t.name} failed: ${(err as Error).message}`);
        }
      }),
    );
    cleanups.push(entry);
  };

  let cleaning: Promise<void> | undefined;
  const cleanUp = (interrupted = false) =>
    (cleaning ??= (async () => {
      await stopService().catch((err: unknown) => log(`service stop failed: ${(err as Error).message}`));
      if (!s.keepDb) {
        // An interrupted phase may leave its database behind the child's stop; drop whatever this run named.
        for (const db of databases) await rawClient.db(db).dropDatabase().catch(() => undefined);
      }
      log("cleaning the topics (the rest of the run)");
      await cleanTopics("end of run");
      try {
        const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(dbPrefix) || g.startsWith(tapPrefix));
        if (groups.length) await admin.deleteGroups(groups);
        log(`deleted ${groups.length} consumer groups of the run`);
      } catch (err) {
        log(`could not delete the run's consumer groups: ${(err as Error).message}`);
      }
      summary.finishedAt = new Date().toISOString();
      summary.loadavgAtEnd = os.loadavg().map(r2);
      if (interrupted) summary.interrupted = true;
      await publisher.disconnect().catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
      await rawClient.close().catch(() => undefined);
      await fake.close().catch(() => undefined);
      const file = s.json || path.join("dist", "bench", `channels-${dbPrefix}.json`);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
      log(`summary written to ${file}`);
    })());
  const onSignal = (signal: string) => {
    log(`${signal}: stopping the service, dropping the databases, cleaning the topics`);
    summary.interruptedBy = signal;
    void cleanUp(true).finally(() => process.exit(130));
  };
  process.once("SIGINT", () => onSignal("SIGINT"));
  process.once("SIGTERM", () => onSignal("SIGTERM"));

  const outRounds: Record<string, unknown>[] = [];
  const inRuns: Record<string, unknown>[] = [];
  summary.outbound = outRounds;
  summary.inbound = inRuns;
  try {
    // -------------------------------------------------------------------------------------------------------------
    // Outbound: send commands → dispatcher → Telegram fake → delivery statuses.
    if (s.phases.has("outbound")) {
      child = await startService("outbound");
      summary.outboundServiceStartSeconds = child.startSeconds;
      const bots = await connectBots(child, s.bots);
      const chatIds = Array.from({ length: s.chats }, (_, c) => String(300_000_000 + c));
      const n = s.bots * s.chats * s.perChat;
      for (let round = 0; round < s.outRounds; round++) {
        // Every command's statuses as the delivery-statuses topic shows them, and when the tap read each SENT.
        const statuses = new Map<string, { sent: number; failed: number; foreignFailed: number; queued: number; other: number; sentReadAt: number; sentAt: number; errors: string[] }>();
        let foreign = 0;
        const tap = await tapFrom(kafka, Topics.deliveryStatuses.name, await topicEnds(admin, Topics.deliveryStatuses.name), nextTapGroup("statuses"), (r) => {
          if (r.headers[Header.projectId] !== project) return void foreign++;
          const st = fromBinary(Topics.deliveryStatuses.schema, r.value ?? new Uint8Array());
          let e = statuses.get(st.commandId);
          if (!e) statuses.set(st.commandId, (e = { sent: 0, failed: 0, foreignFailed: 0, queued: 0, other: 0, sentReadAt: 0, sentAt: 0, errors: [] }));
          if (st.state === DeliveryState.SENT) {
            e.sent++;
            e.sentReadAt = r.receivedAt;
            e.sentAt = st.at ? timestampDate(st.at).getTime() : 0;
          } else if (st.state === DeliveryState.FAILED) {
            // Every channels instance consumes the shared topic with its own group; one that does not know the bench's
            // channels (another session's test service) fails the command with this error. Ours never does.
            if (FOREIGN_FAILURE.test(st.error)) return void e.foreignFailed++;
            e.failed++;
          }
          else if (st.state === DeliveryState.QUEUED) e.queued++;
          else e.other++;
          if (st.error && e.errors.length < 2) e.errors.push(st.error);
        });
        const tag = `r${round}`;
        const events: OutgoingEvent<typeof Topics.sendCommands.schema>[] = [];
        // Chat-major within each position k, bots interleaved: every chat's k-th command is published before its (k+1)-th.
        for (let k = 0; k < s.perChat; k++)
          for (let c = 0; c < s.chats; c++)
            for (let b = 0; b < s.bots; b++) {
              const { channelId } = bots[b]!;
              const commandId = `${project}-${tag}-b${b}-c${c}-${k}`;
              events.push({
                key: `${channelId}:${chatIds[c]}`,
                projectId: project,
                eventId: commandId,
                value: { commandId, projectId: project, channelId, recipientId: chatIds[c]!, contactId: `contact-${b}-${c}`, text: `${tag} b${b} c${c} #${k}: your order has shipped, track it in the app`, origin: MessageOrigin.FLOW },
              });
            }
        const sentBefore = fake.sent.length;
        const hitsBefore = fake.limitHits;
        await child.call("reset");
        const cpu0 = cpuSnapshot(pids);
        const t0 = Date.now();
        const perK = s.bots * s.chats;
        for (let k = 0; k < s.perChat; k++) {
          const chunks = Array.from({ length: Math.ceil(perK / 1_000) }, (_, i) => events.slice(k * perK + i * 1_000, k * perK + Math.min(perK, (i + 1) * 1_000)));
          await pool(chunks, 4, (chunk) => publisher.publishBatch(Topics.sendCommands, chunk));
        }
        const published = Date.now();
        log(`outbound round ${round + 1}/${s.outRounds}: published ${n} commands (${s.bots} bots × ${s.chats} chats × ${s.perChat}) in ${published - t0} ms`);
        const done = () => {
          let finished = 0;
          for (const e of statuses.values()) if (e.sent + e.failed > 0) finished++;
          return finished;
        };
        let lastLog = Date.now();
        const deadline = t0 + s.outTimeoutSeconds * 1000;
        let lastDone = 0;
        let lastProgress = Date.now();
        let stalled = false;
        while (done() < n && Date.now() < deadline) {
          await sleep(100);
          const d = done();
          if (d !== lastDone) [lastDone, lastProgress] = [d, Date.now()];
          if (Date.now() - lastProgress > s.outStallSeconds * 1000) {
            stalled = true;
            log(`  no command reached its final status for ${s.outStallSeconds} s: stopping the round with ${n - d} missing`);
            break;
          }
          if (Date.now() - lastLog >= 5_000) {
            lastLog = Date.now();
            log(`  ${((Date.now() - t0) / 1000).toFixed(0)} s: ${fake.sent.length - sentBefore} sent at the fake, ${done()} final statuses read, ${fake.limitHits - hitsBefore} 429s`);
          }
        }
        const cpu1 = cpuSnapshot(pids);
        const svcStats = await child.call<ChildStats>("stats");
        await tap.stop();

        // What the fake received in this round, in arrival order.
        const sent = fake.sent.slice(sentBefore).filter((x) => x.text?.startsWith(`${tag} `));
        const perChat = new Map<string, number[]>();
        const perBot = new Map<string, number[]>();
        const seenTexts = new Set<string>();
        let duplicateSends = 0;
        for (const x of sent) {
          if (seenTexts.has(x.text!)) duplicateSends++;
          seenTexts.add(x.text!);
          const k = Number(/#(\d+):/.exec(x.text!)?.[1]);
          const key = `${x.token}|${x.chatId}`;
          (perChat.get(key) ?? perChat.set(key, []).get(key)!).push(k);
          (perBot.get(x.token) ?? perBot.set(x.token, []).get(x.token)!).push(x.at);
        }
        let chatsOutOfOrder = 0;
        for (const ks of perChat.values()) if (ks.some((k, i) => i > 0 && k <= ks[i - 1]!)) chatsOutOfOrder++;
        const counts = { oneSent: 0, noSent: 0, manySent: 0, failed: 0, foreignFailed: 0, queued: 0 };
        let lastSentReadAt = 0;
        let lastSentAt = 0;
        const failures: string[] = [];
        for (const e of events) {
          const st = statuses.get(e.eventId!);
          const nSent = st?.sent ?? 0;
          if (nSent === 1) counts.oneSent++;
          else if (nSent === 0) counts.noSent++;
          else counts.manySent++;
          if (st?.failed) counts.failed++;
          if (st?.foreignFailed) counts.foreignFailed++;
          if (st?.queued) counts.queued++;
          if (st && st.errors.length && failures.length < 3) failures.push(...st.errors);
          if (st?.sentReadAt) lastSentReadAt = Math.max(lastSentReadAt, st.sentReadAt);
          if (st?.sentAt) lastSentAt = Math.max(lastSentAt, st.sentAt);
        }
        const at = sent.map((x) => x.at).sort((a, b) => a - b);
        const firstSend = at[0] ?? NaN;
        const lastSend = at[at.length - 1] ?? NaN;
        const elapsed = (lastSentReadAt - t0) / 1000;
        const timeline = Array.from({ length: Math.ceil((lastSend - t0) / 1000) || 0 }, () => 0);
        for (const a of at) timeline[Math.min(timeline.length - 1, Math.floor((a - t0) / 1000))]!++;
        const botRates = [...perBot.values()].map((xs) => (xs.length - 1) / Math.max(0.001, (xs[xs.length - 1]! - xs[0]!) / 1000));
        const result = {
          round: round + 1,
          commands: n,
          bots: s.bots,
          chats: s.chats,
          perChat: s.perChat,
          publishMs: published - t0,
          complete: counts.oneSent === n,
          stalled,
          /** First publish → the last SENT status read back from the topic (the figure the target is judged on). */
          secondsToLastSentRead: r2(elapsed),
          messagesPerSecond: Math.round(n / elapsed),
          /** First publish → the `at` the service stamped on the last SENT status. */
          secondsToLastSentStamped: r2((lastSentAt - t0) / 1000),
          /** First publish → the last send the fake received. */
          secondsToLastSendAtFake: r2((lastSend - t0) / 1000),
          firstSendAtFakeMs: firstSend - t0,
          /** Sends per second at the fake between the 10th and the 90th percentile of arrivals (steady state). */
          steadySendsPerSecond: Math.round((0.8 * at.length) / Math.max(0.001, (quantile(at, 0.9) - quantile(at, 0.1)) / 1000)),
          /** Ceiling set by the limits: bots × 30/s / 1.05 (SAFETY in rate-limiter.ts), plus the first burst. */
          ceilingMessagesPerSecond: Math.round((s.bots * 30) / 1.05),
          perBotSendsPerSecond: dist(botRates),
          sendsPerSecondTimeline: timeline,
          checks: {
            sentAtFake: sent.length,
            duplicateSendsAtFake: duplicateSends,
            chatsChecked: perChat.size,
            chatsOutOfOrder,
            limitHits429: fake.limitHits - hitsBefore,
            exactlyOneSent: counts.oneSent,
            noSent: counts.noSent,
            moreThanOneSent: counts.manySent,
            failedStatuses: counts.failed,
            failedByOtherInstances: counts.foreignFailed,
            queuedStatuses: counts.queued,
            statusErrors: failures.slice(0, 3),
            foreignStatusesSeen: foreign,
          },
          service: svcStats,
          cpu: cpuBetween(cpu0, cpu1, { digits: 1 }),
          messageLogLag: await logLag(admin, `${child.database}-log`),
        };
        outRounds.push(result);
        log(
          `outbound round ${round + 1}: ${n} commands, last SENT read ${result.secondsToLastSentRead} s after the first publish = ${result.messagesPerSecond}/s ` +
            `(steady ${result.steadySendsPerSecond}/s at the fake; ceiling ${result.ceilingMessagesPerSecond}/s); exactly one SENT ${counts.oneSent}/${n}, ` +
            `429s ${result.checks.limitHits429}, chats out of order ${chatsOutOfOrder}/${perChat.size}; service CPU ${svcStats.cpuSeconds} s, ` +
            `limiter polls ${svcStats.limiter.tryAcquire} (${(svcStats.limiter.tryAcquire / n).toFixed(1)} per message), in-flight wait p50 ${svcStats.inFlightWaitMs.p50} / p99 ${svcStats.inFlightWaitMs.p99} ms; provider send p50 ${svcStats.providerSendMs.p50} / p99 ${svcStats.providerSendMs.p99} ms; ` +
            `channel resolve p99 ${svcStats.channelResolveMs.p99} / max ${svcStats.channelResolveMs.max} ms (${svcStats.channelResolveMs.databaseReads} database reads of ${s.bots} channels); db probe p50 ${svcStats.dbProbeMs.p50} / max ${svcStats.dbProbeMs.max} ms; ` +
            `machine busy ${result.cpu.machineBusyPct}% (FerretDB ${result.cpu.procs.ferretdb?.pctOfOneCore}% of a core); message log lag ${JSON.stringify(result.messageLogLag)}`,
        );
        log(`cleaning the topics after outbound round ${round + 1}`);
        await cleanTopics(`outbound round ${round + 1}`);
        await sleep(2_000); // the fake's buckets refill; the next round starts from full bursts like this one
      }
      await stopService();
    }

    // -------------------------------------------------------------------------------------------------------------
    // Inbound: webhook → Kafka, with autocannon.
    if (s.phases.has("inbound")) {
      child = await startService("inbound");
      summary.inboundServiceStartSeconds = child.startSeconds;
      const [bot] = await connectBots(child, 1);
      const hook = fake.webhookOf(bot!.token)!;
      let nextUpdateId = 600_000_000;
      const bodyOf = (id: number) => {
        const n = id % s.inSenders;
        const update = textUpdate(400_000_000 + n, TEXTS[id % TEXTS.length]!, {
          first_name: SENDERS_FIRST[n % SENDERS_FIRST.length]!,
          last_name: SENDERS_LAST[n % SENDERS_LAST.length]!,
          username: `user_${n}`,
        });
        update.update_id = id;
        update.message!.message_id = id;
        return JSON.stringify(update);
      };
      const headers = { "content-type": "application/json", "x-telegram-bot-api-secret-token": hook.secretToken };
      const cannon = async (connections: number, seconds: number) => {
        const first = nextUpdateId;
        const accepted = new Set<number>();
        const statuses: Record<string, number> = {};
        const instance = autocannon({
          url: hook.url,
          connections,
          duration: seconds,
          requests: [
            {
              method: "POST",
              setupRequest: (request, context) => {
                const id = nextUpdateId++;
                context.id = id;
                return { ...request, method: "POST", headers, body: bodyOf(id) };
              },
              onResponse: (status, _body, context) => {
                statuses[status] = (statuses[status] ?? 0) + 1;
                if (status >= 200 && status < 300) accepted.add(context.id as number);
              },
            },
          ],
        });
        const result: CannonResult = await instance;
        return { result, first, last: nextUpdateId, accepted, statuses };
      };

      if (s.inWarmupSeconds) {
        const warm = await cannon(10, s.inWarmupSeconds);
        log(`inbound warm-up: ${warm.result["2xx"]} accepted in ${s.inWarmupSeconds} s at 10 connections`);
        await sleep(2_000);
      }
      for (const connections of s.inConnections) {
        const from = await topicEnds(admin, Topics.inboundMessages.name);
        await child.call("reset");
        const cpu0 = cpuSnapshot(pids);
        const run = await cannon(connections, s.inSeconds);
        const cpu1 = cpuSnapshot(pids);
        const svcStats = await child.call<ChildStats>("stats");
        const { result } = run;
        // Responses still in flight when autocannon stopped are published too; give them a moment, then read back.
        await sleep(2_000);
        const to = await topicEnds(admin, Topics.inboundMessages.name);
        const idOf = new Map<string, number>();
        for (let id = run.first; id < run.last; id++) idOf.set(derivedId(bot!.channelId, String(id)), id);
        const seen = new Map<number, number>();
        const check = { windowRecords: countOf(from, to), benchEvents: 0, otherProjectEvents: 0, unknownBenchEvents: 0 };
        const t0 = performance.now();
        await readWindow(kafka, Topics.inboundMessages.name, from, to, nextTapGroup("inbound"), (r) => {
          if (r.headers[Header.projectId] !== project) return void check.otherProjectEvents++;
          check.benchEvents++;
          const id = idOf.get(r.headers[Header.eventId] ?? "");
          if (id === undefined) check.unknownBenchEvents++;
          else seen.set(id, (seen.get(id) ?? 0) + 1);
        });
        const readBackSeconds = r1((performance.now() - t0) / 1000);
        let acceptedMissing = 0;
        for (const id of run.accepted) if (!seen.has(id)) acceptedMissing++;
        let duplicates = 0;
        let publishedNotAcknowledged = 0;
        for (const [id, times] of seen) {
          if (times > 1) duplicates += times - 1;
          if (!run.accepted.has(id)) publishedNotAcknowledged++;
        }
        const pendingStored = await child.call<number>("pending");
        const entry = {
          connections,
          seconds: result.duration,
          requests2xx: result["2xx"],
          requestsPerSecond: Math.round(result["2xx"] / result.duration),
          requestsPerSecondSamples: { average: Math.round(result.requests.average), p50: result.requests.p50, min: result.requests.min, max: result.requests.max },
          latencyMs: { p50: result.latency.p50, p97_5: result.latency.p97_5, p99: result.latency.p99, max: result.latency.max, average: r2(result.latency.average) },
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          statusCodes: run.statuses,
          checks: {
            updatesSent: run.last - run.first,
            accepted: run.accepted.size,
            publishedForBench: seen.size,
            acceptedMissingFromTopic: acceptedMissing,
            duplicatesOnTopic: duplicates,
            publishedButNotAcknowledged: publishedNotAcknowledged,
            unknownBenchEvents: check.unknownBenchEvents,
            otherProjectEventsInWindow: check.otherProjectEvents,
            windowRecords: check.windowRecords,
            storedForRelay: pendingStored,
            readBackSeconds,
          },
          service: svcStats,
          cpu: cpuBetween(cpu0, cpu1, { digits: 1 }),
          messageLogLag: await logLag(admin, `${child.database}-log`),
        };
        inRuns.push(entry);
        log(
          `inbound ${connections} connections: ${entry.requestsPerSecond} req/s (${result["2xx"]} accepted in ${result.duration} s), latency p50 ${entry.latencyMs.p50} / p97.5 ${entry.latencyMs.p97_5} / p99 ${entry.latencyMs.p99} ms, ` +
            `non-2xx ${result.non2xx}, errors ${result.errors}; on the topic: ${seen.size} of ${run.accepted.size} accepted (missing ${acceptedMissing}, duplicates ${duplicates}, ` +
            `${publishedNotAcknowledged} published but unanswered at the stop); service CPU ${svcStats.cpuSeconds} s of ${svcStats.wallSeconds} s, event-loop delay p99 ${svcStats.eventLoopDelayMs.p99} ms; ` +
            `accept p50 ${svcStats.webhookAcceptMs.p50} / p99 ${svcStats.webhookAcceptMs.p99} ms; channel resolve p99 ${svcStats.channelResolveMs.p99} / max ${svcStats.channelResolveMs.max} ms (${svcStats.channelResolveMs.databaseReads} database reads); db probe p50 ${svcStats.dbProbeMs.p50} / max ${svcStats.dbProbeMs.max} ms; Kafka produce ${JSON.stringify(svcStats.kafkaPublishes[Topics.inboundMessages.name] ?? {})}; machine busy ${entry.cpu.machineBusyPct}%`,
        );
        log(`cleaning the topics after the ${connections}-connection run`);
        await cleanTopics(`inbound ${connections} connections`);
        await sleep(2_000);
      }
      await stopService();
    }

    // -------------------------------------------------------------------------------------------------------------
    // The table.
    const rows: string[][] = [["phase", "setting", "figure", "latency p50 / p97.5 / p99", "checks", "target"]];
    for (const r of outRounds as Array<{ round: number; commands: number; messagesPerSecond: number; steadySendsPerSecond: number; secondsToLastSentRead: number; checks: Record<string, number> }>) {
      rows.push([
        `outbound round ${r.round}`,
        `${r.commands} cmds, ${s.bots}×${s.chats}×${s.perChat}`,
        `${r.messagesPerSecond}/s (${r.secondsToLastSentRead} s; steady ${r.steadySendsPerSecond}/s)`,
        "",
        `1×SENT ${r.checks.exactlyOneSent}/${r.commands}, 429s ${r.checks.limitHits429}, out of order ${r.checks.chatsOutOfOrder}`,
        "≥ 2,000/s, order kept, no 429",
      ]);
    }
    for (const r of inRuns as Array<{ connections: number; requestsPerSecond: number; latencyMs: Record<string, number>; non2xx: number; checks: Record<string, number> }>) {
      rows.push([
        `inbound`,
        `${r.connections} connections, ${s.inSeconds} s`,
        `${r.requestsPerSecond} req/s`,
        `${r.latencyMs.p50} / ${r.latencyMs.p97_5} / ${r.latencyMs.p99} ms`,
        `non-2xx ${r.non2xx}; on topic ${r.checks.publishedForBench}, missing ${r.checks.acceptedMissingFromTopic}, dup ${r.checks.duplicatesOnTopic}`,
        "≥ 3,000/s, p99 ≤ 50 ms",
      ]);
    }
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
    console.log(`\nChannels benchmark — ${runStarted.toISOString()}, ${machine.nproc} cpus (service, fake, autocannon, Kafka and FerretDB share them)`);
    for (const [i, row] of rows.entries()) {
      console.log(`| ${row.map((cell, c) => cell.padEnd(widths[c]!)).join(" | ")} |`);
      if (i === 0) console.log(`| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`);
    }
  } finally {
    await cleanUp();
  }
}

/**
 * Consumer groups of other processes (other sessions' test services and taps) that are reading the channels topics
 * right now: each of them also handles the bench's records (see REPORT.md).
 */
async function otherConsumers(admin: Admin, mine: (groupId: string) => boolean) {
  const names = new Set<string>([Topics.inboundMessages.name, Topics.sendCommands.name, Topics.deliveryStatuses.name]);
  try {
    const ids = (await admin.listGroups()).groups.filter((g) => g.protocolType === "consumer" && !mine(g.groupId)).map((g) => g.groupId);
    if (ids.length === 0) return [];
    const { groups } = await admin.describeGroups(ids);
    const out: { group: string; topics: string[] }[] = [];
    for (const g of groups) {
      const topics = new Set<string>();
      for (const m of g.members) {
        try {
          for (const t of Object.keys(AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment ?? {})) if (names.has(t)) topics.add(t);
        } catch {
          /* not a kafkajs assignment */
        }
      }
      if (topics.size) out.push({ group: g.groupId, topics: [...topics].map((t) => t.split(".")[1]!) });
    }
    return out;
  } catch {
    return [];
  }
}

/** How many records of each topic the message-log consumer group has not committed yet (it writes the chat history). */
async function logLag(admin: Admin, groupId: string) {
  const out: Record<string, number> = {};
  try {
    for (const t of [Topics.inboundMessages, Topics.sendCommands, Topics.deliveryStatuses]) {
      const ends = await topicEnds(admin, t.name);
      const [committed] = await admin.fetchOffsets({ groupId, topics: [t.name] });
      out[t.name] = (committed?.partitions ?? []).reduce((sum, p) => sum + (Number(p.offset) >= 0 ? Number(BigInt(ends.get(p.partition) ?? "0") - BigInt(p.offset)) : 0), 0);
    }
  } catch {
    /* reported as empty */
  }
  return out;
}

// The benchmark is an entry point like a service's main.ts: the one place that reads the environment.
// eslint-disable-next-line no-restricted-properties
const processEnv = process.env;
main(processEnv).then(
  () => {
    if (processEnv.BENCH_CHANNELS_ROLE !== "service") process.exit(0);
  },
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
