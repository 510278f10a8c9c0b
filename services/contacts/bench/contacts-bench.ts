/**
 * Contacts benchmark (see REPORT.md next to this file).
 *
 * Seeds one project with N contacts in whatever MONGO_URL points to, starts the contacts service on that database
 * (which syncs its indexes), and measures, each beside the same operation done with the raw MongoDB driver on the
 * same data in the same run:
 *   - first page (50, newest first) of a compound filter: tag + registered after + variable = value + channel;
 *   - the total count of that filter;
 *   - a card read (GetContact by id), the read hot path;
 *   - inbound upserts per second (InboundIngest.ingest, the inbound hot path);
 *   - a mass action's contacts per second (ADD_TAGS over ~N/5 contacts on MongoDB, fewer on FerretDB).
 * Service and raw rounds are interleaved (ABBA order) so drift on a shared machine hits both alike. Prints a table
 * and writes a JSON summary; drops the benchmark database at the end (BENCH_KEEP_DB=1 keeps it).
 *
 * Run: npm run bench:contacts  (env: MONGO_URL, KAFKA_BROKERS, BENCH_N, BENCH_ROUNDS, ...; see readSettings below)
 */
import { benchMachine, quantile, seededRandom } from "@chatcrm/testing";
import { create, toJson } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import mongoose from "mongoose";
import { InboundMessageSchema, MessageKind, Messenger, type InboundMessage } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { ContactSort, ContactsService, ContactTab, MassActionKind, MassActionState, type ContactFilter } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { ContactFilterSchema } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { createGrpcClient, PROJECT_METADATA_KEY, ROLE_METADATA_KEY, type GrpcClient, type Viewer } from "@chatcrm/grpc";
import { Topics } from "@chatcrm/kafka";
import { createLogger } from "@chatcrm/logging";
import { startContacts } from "../src/app";
import { configSchema } from "../src/config";
import { contactChanged, publishContactEvents } from "../src/events/contact-events";
import { contactQuery } from "../src/filters/contact-query";
import { sortOf } from "../src/filters/keyset";
import { toSnapshot } from "../src/rpc/contact-to-proto";
import { variableIndexFields, type ContactDoc, type ContactQuery } from "../src/store/contact-document";
import { clientIdKey, identityId } from "../src/store/support-models";
import { scopeToProject } from "@chatcrm/mongo";
import { derivedContactId, newContactDoc } from "../src/usecases/new-contact";
import { DAY, FIRST, LAST, LISTS, TAGS, variablesFor } from "./seed-vocabulary";

const { MongoClient, BSON } = mongoose.mongo;
type Db = InstanceType<typeof MongoClient> extends { db(name: string): infer D } ? D : never;
type AnyDoc = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------------------------
// Settings

/**
 * What to run. Sizes left unset get a default per server: MongoDB gets the issue's sizes; FerretDB, where every
 * query reads the whole collection (REPORT.md), gets sizes that keep a run within about 15 minutes, plus a time
 * budget per phase (a phase stops after `minRounds` once its budget is spent; the rounds taken are reported).
 */
function readSettings(env: NodeJS.ProcessEnv, ferret: boolean) {
  const int = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${raw}: expected a whole number`);
    return n;
  };
  const n = int("BENCH_N", 50_000);
  const small = n <= 10_000;
  return {
    mongoUrl: env.MONGO_URL!,
    kafkaBrokers: env.KAFKA_BROKERS!,
    n,
    /** Measured rounds of each read, per side (service and raw), after the warm-up rounds. */
    rounds: int("BENCH_ROUNDS", 20),
    minRounds: int("BENCH_MIN_ROUNDS", 2),
    /** Rounds per side run first and not counted (connections, caches, the query planner's cache). */
    warmup: int("BENCH_WARMUP", ferret ? 0 : 2),
    /** Seconds a phase may take: it stops (after `minRounds`) before a round that would end past this; 0 = no limit. */
    phaseSeconds: int("BENCH_PHASE_SECONDS", ferret ? 150 : 0),
    seedBatch: int("BENCH_SEED_BATCH", 1_000),
    /** Inbound messages per write round, half to existing senders and half from new ones. */
    upserts: int("BENCH_UPSERTS", ferret ? (small ? 30 : 10) : 4_000),
    writeRounds: int("BENCH_WRITE_ROUNDS", 3),
    /** Messages in flight; the service's Kafka consumer handles CONSUMER_CONCURRENCY (6) partitions at once. */
    concurrency: int("BENCH_CONCURRENCY", ferret ? 4 : 32),
    massRounds: int("BENCH_MASS_ROUNDS", 2),
    /** 0 = every contact of one segment (~N/5); otherwise the selection is narrowed to about this many. */
    massSize: int("BENCH_MASS_SIZE", ferret ? (small ? 100 : 10) : 0),
    /**
     * Contacts per mass-action step, for the service (MASS_ACTION_BATCH_SIZE) and the raw walk. FerretDB 1.24
     * stops after the 99th statement of one update command and never answers on that database again (REPORT.md),
     * so on the harness both sides take steps below that.
     */
    massBatch: int("BENCH_MASS_BATCH", ferret ? 50 : 500),
    /** Also time one updateMany over the mass action's selection, as a reference (on FerretDB it reads everything). */
    updateMany: (env.BENCH_UPDATE_MANY ?? (ferret && !small ? "0" : "1")) !== "0",
    /** Also time raw writes plus the two Kafka publishes the service does, to show what Kafka costs. */
    rawKafka: env.BENCH_RAW_KAFKA !== "0",
    keepDb: env.BENCH_KEEP_DB === "1",
    json: env.BENCH_JSON ?? "",
    /** Which measurements to run (all by default): page,count,card,upserts,mass. */
    phases: new Set((env.BENCH_PHASES || "page,count,card,upserts,mass").split(",").map((p) => p.trim())),
    /** A mass action that reports no progress for this long fails the run instead of hanging it. */
    massStallSeconds: int("BENCH_MASS_STALL_SECONDS", 300),
    seed: int("BENCH_SEED", 42),
  };
}

type Settings = ReturnType<typeof readSettings>;

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

const log = (...parts: unknown[]) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...parts);
const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, median: quantile(s, 0.5), p95: quantile(s, 0.95), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}

/** Runs fn over items with at most `concurrency` in flight. */
async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

function utcDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

// ---------------------------------------------------------------------------------------------------------------
// The data set

const PROJECT = "bench-project";
const ADMIN: Viewer = { role: "admin", operatorId: "" };
const CHANNELS = [
  { id: "bench-telegram", messenger: "telegram", enum: Messenger.TELEGRAM },
  { id: "bench-whatsapp", messenger: "whatsapp", enum: Messenger.WHATSAPP },
  { id: "bench-vk", messenger: "vk", enum: Messenger.VK },
] as const;
const OPERATORS = ["op-1", "op-2", "op-3", "op-4", "op-5"];
const TWO_YEARS = 730 * DAY;


function contactFor(r: ReturnType<typeof seededRandom>, i: number, now: number) {
  const channel = CHANNELS[i % CHANNELS.length]!;
  const messengerUserId = `${channel.messenger}-${100_000_000 + i}`;
  const createdAt = new Date(now - Math.floor(r.next() * TWO_YEARS));
  const first = r.pick(FIRST);
  const last = r.pick(LAST);
  const doc = newContactDoc(
    {
      projectId: PROJECT,
      contactId: derivedContactId(PROJECT, `seed:${i}`),
      messenger: channel.messenger,
      channelId: channel.id,
      messengerUserId,
      profile: { firstName: first, lastName: last, username: `${first.toLowerCase()}${i}`, language: r.pick(["ru", "en", "de", "kk"]), avatarUrl: `https://cdn.example.com/a/${i}.jpg` },
      at: createdAt,
      utm: r.next() < 0.4 ? { source: r.pick(["google", "yandex", "vk_ads"]), medium: "cpc", campaign: `camp-${r.int(20)}`, content: "", term: "" } : null,
      lists: r.sample(LISTS, r.int(3)),
    },
    i + 1,
  );
  const variables = variablesFor(r, i);
  const lastAt = new Date(Math.min(now, createdAt.getTime() + Math.floor(r.next() * (now - createdAt.getTime()))));
  const unread = r.next() < 0.2;
  const status = r.next();
  Object.assign(doc, {
    variables,
    ...variableIndexFields(variables),
    tags: r.sample(TAGS, 5),
    firstInteractionAt: createdAt,
    lastInteractionAt: lastAt,
    lastInboundAt: lastAt,
    updatedAt: lastAt,
    status: status < 0.9 ? "subscribed" : status < 0.95 ? "unsubscribed" : status < 0.98 ? "blocked" : "paused",
    operatorId: r.next() < 0.3 ? r.pick(OPERATORS) : "",
    unread,
    unreadCount: unread ? 1 + r.int(5) : 0,
    funnelBlockId: r.next() < 0.5 ? `block-${r.int(12)}` : "",
    lastMessage: { author: "client", operatorId: "", excerpt: `Hello! I would like to know more about order ${r.int(100_000)} and the delivery options.`, hasAttachment: false, at: lastAt, failed: false, error: "", commandId: "" },
    recentInbound: Array.from({ length: 1 + r.int(5) }, (_, k) => `seed-msg-${i}-${k}`),
    rev: r.int(20),
  } satisfies Partial<ContactDoc>);
  if (doc.funnelBlockId) doc.funnel = { flowId: "onboarding", blockId: doc.funnelBlockId, at: createdAt };
  return { doc, identity: { _id: identityId(PROJECT, channel.id, messengerUserId), projectId: PROJECT, contactId: doc._id, deletedAt: null, blacklisted: false } };
}

/** The compound filter of the issue: tag included + registered after + variable = value + channel (~1% of N). */
function compoundFilter(now: number): ContactFilter {
  return create(ContactFilterSchema, {
    tags: ["tag-03"],
    registeredAfter: utcDay(new Date(now - 365 * DAY)),
    variableName: "plan",
    variableValue: "pro",
    channelIds: [CHANNELS[1].id],
  });
}

/** The mass action's selection: one of five segments (~N/5), optionally narrowed by channel/tags to about `size`. */
function massFilter(n: number, size: number): ContactFilter {
  const base = { variableName: "segment", variableValue: "s2" };
  if (!size || size >= n / 5) return create(ContactFilterSchema, base);
  // Narrow with tags (each tag is on 1/4 of contacts) and channels (1/3) until the selection is about `size`.
  const wanted = size / (n / 5);
  if (wanted >= 1 / 3) return create(ContactFilterSchema, { ...base, channelIds: [CHANNELS[0].id] });
  if (wanted >= 1 / 4) return create(ContactFilterSchema, { ...base, tags: ["tag-07"] });
  if (wanted >= 1 / 12) return create(ContactFilterSchema, { ...base, tags: ["tag-07"], channelIds: [CHANNELS[0].id] });
  return create(ContactFilterSchema, { ...base, tags: ["tag-07"], tagsMatchAll: true, channelIds: [CHANNELS[0].id], registeredAfter: utcDay(new Date(Date.now() - Math.max(30, Math.round(wanted * 12 * 730)) * DAY)) });
}

async function seed(db: Db, s: Settings) {
  const contacts = db.collection<AnyDoc>("contacts");
  const identities = db.collection<AnyDoc>("identities");
  const clientIds = db.collection<AnyDoc>("client_ids");
  const r = seededRandom(s.seed);
  const now = Date.now();
  const t0 = performance.now();
  let lastLog = 0;
  let sampleBytes = 0;
  for (let from = 0; from < s.n; from += s.seedBatch) {
    const docs: ContactDoc[] = [];
    const ids: AnyDoc[] = [];
    const keys: AnyDoc[] = [];
    for (let i = from; i < Math.min(s.n, from + s.seedBatch); i++) {
      const { doc, identity } = contactFor(r, i, now);
      docs.push(doc);
      ids.push(identity);
      keys.push({ _id: clientIdKey(PROJECT, doc.clientId), contactId: doc._id });
    }
    if (from === 0) sampleBytes = docs.reduce((sum, d) => sum + BSON.calculateObjectSize(d as never), 0) / docs.length;
    await Promise.all([
      contacts.insertMany(docs as never[], { ordered: false }),
      identities.insertMany(ids as never[], { ordered: false }),
      clientIds.insertMany(keys as never[], { ordered: false }),
    ]);
    const done = Math.min(s.n, from + s.seedBatch);
    const elapsed = (performance.now() - t0) / 1000;
    if (performance.now() - lastLog > 5_000 || done === s.n) {
      lastLog = performance.now();
      log(`seed ${done}/${s.n} contacts (+ identities, client ids), ${(done / elapsed).toFixed(0)} contacts/s, ${elapsed.toFixed(1)} s`);
    }
  }
  await db.collection<AnyDoc>("counters").insertOne({ _id: PROJECT as never, seq: s.n });
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, contactsPerSecond: s.n / seconds, avgContactBsonBytes: Math.round(sampleBytes), now };
}

// ---------------------------------------------------------------------------------------------------------------
// The service

async function startService(s: Settings, database: string, env: NodeJS.ProcessEnv) {
  const config = configSchema.parse({
    ...env,
    MONGO_URL: s.mongoUrl,
    KAFKA_BROKERS: s.kafkaBrokers,
    MONGO_DATABASE: database,
    KAFKA_CLIENT_ID: database,
    FUNNEL_MOVES_CONSUMER_GROUP: `${database}_funnel`,
    GRPC_HOST: "127.0.0.1",
    GRPC_PORT: "0",
    LOG_LEVEL: env.LOG_LEVEL ?? "warn",
    // The benchmark starts jobs itself and the runner picks a new job up at once; polling only finds leftovers.
    MASS_ACTION_POLL_INTERVAL_MS: env.MASS_ACTION_POLL_INTERVAL_MS ?? "1000",
    MASS_ACTION_BATCH_SIZE: String(s.massBatch),
    MONGO_SERVER_SELECTION_TIMEOUT_MS: "10000",
  });
  const logger = createLogger({ service: "contacts", level: config.LOG_LEVEL, destination: process.stderr });
  return startContacts(config, logger);
}

type Client = GrpcClient<typeof ContactsService>;
const asAdmin = { metadata: { [PROJECT_METADATA_KEY]: PROJECT, [ROLE_METADATA_KEY]: "admin" }, timeoutMs: 600_000 };

// ---------------------------------------------------------------------------------------------------------------
// Explain: which plan each query gets

function planStages(plan: AnyDoc | undefined): string[] {
  if (!plan) return [];
  const own = plan.stage ? [`${String(plan.stage)}${plan.indexName ? `(${String(plan.indexName)})` : ""}`] : [];
  const children = [plan.inputStage, ...((plan.inputStages as AnyDoc[] | undefined) ?? []), plan.queryPlan].filter(Boolean) as AnyDoc[];
  return [...own, ...children.flatMap(planStages)];
}

function summarizeExplain(e: AnyDoc, ferret: boolean) {
  if (ferret) {
    const qp = e.queryPlanner as AnyDoc | undefined;
    return { filterPushdown: e.filterPushdown, sortPushdown: e.sortPushdown, limitPushdown: e.limitPushdown, sqlitePlan: (qp?.Plan as string[] | undefined)?.join("; ") };
  }
  const qp = (e.queryPlanner ?? (e.stages as AnyDoc[] | undefined)?.[0]?.$cursor ?? {}) as AnyDoc;
  const ex = (e.executionStats ?? {}) as AnyDoc;
  return { winningPlan: planStages(qp.winningPlan as AnyDoc).join(" <- "), nReturned: ex.nReturned, keysExamined: ex.totalKeysExamined, docsExamined: ex.totalDocsExamined, ms: ex.executionTimeMillis };
}

async function explainAll(db: Db, ferret: boolean, sample: { contactId: string; identity: string; clientKey: string }, pageQuery: ContactQuery, countQuery: ContactQuery, massQuery: ContactQuery) {
  const { spec } = sortOf(ContactSort.CREATED);
  const verbosity = ferret ? "queryPlanner" : "executionStats";
  const find = (coll: string, filter: AnyDoc, sort?: AnyDoc, limit?: number) => {
    let c = db.collection<AnyDoc>(coll).find(filter as never);
    if (sort) c = c.sort(sort as never);
    if (limit) c = c.limit(limit);
    return c.explain(verbosity) as Promise<AnyDoc>;
  };
  const command = (cmd: AnyDoc) => db.command({ explain: cmd, verbosity }) as Promise<AnyDoc>;
  const checks: [string, () => Promise<AnyDoc>][] = [
    ["card read: contacts.findOne({_id})", () => find("contacts", { _id: sample.contactId }, undefined, 1)],
    ["inbound: identities.findOne({_id})", () => find("identities", { _id: sample.identity }, undefined, 1)],
    // FerretDB 1.24's explain reads only find/count/aggregate filters (an update's `q` is ignored and shows as an
    // unfiltered scan), so there the writes are explained as the find their fetch step runs with the same filter.
    ferret
      ? ["inbound: contacts.updateOne({_id}) (as find)", () => find("contacts", { _id: sample.contactId })]
      : ["inbound: contacts.updateOne({_id})", () => command({ update: "contacts", updates: [{ q: { _id: sample.contactId }, u: { $inc: { rev: 0 } } }] })],
    ferret
      ? ["inbound (new): counters.findOneAndUpdate({_id}) (as find)", () => find("counters", { _id: PROJECT })]
      : ["inbound (new): counters.findOneAndUpdate({_id})", () => command({ findAndModify: "counters", query: { _id: PROJECT }, update: { $inc: { seq: 0 } } })],
    ["GetContact by client id: client_ids.findOne({_id})", () => find("client_ids", { _id: sample.clientKey }, undefined, 1)],
    ["first page: contacts.find(filter).sort(created).limit(51)", () => find("contacts", pageQuery, spec, 51)],
    ["count: contacts.countDocuments(filter)", () => command({ count: "contacts", query: countQuery })],
    ["mass action walk: contacts.find(selection).sort({_id: 1})", () => find("contacts", massQuery, { _id: 1 })],
  ];
  const out: Record<string, unknown> = {};
  for (const [name, run] of checks) {
    try {
      out[name] = summarizeExplain(await run(), ferret);
    } catch (err) {
      out[name] = { error: (err as Error).message.slice(0, 200) };
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Measurements

interface PairResult {
  service: number[];
  raw: number[];
}

/**
 * Both sides' statistics, plus the median of the per-round ratios: a round's service and raw call do the same work
 * (the card read fetches the same contact, whose cost on FerretDB depends on where it sits in the table).
 */
function pairSummary(p: PairResult) {
  const ratios = p.service.map((t, i) => t / p.raw[i]!);
  return {
    service: stats(p.service),
    raw: stats(p.raw),
    pairedRatio: +stats(ratios).median.toFixed(3),
    samplesMs: { service: p.service.map((t) => +t.toFixed(1)), raw: p.raw.map((t) => +t.toFixed(1)) },
  };
}

/**
 * Interleaved rounds in ABBA order (service first on even rounds), the first `warmup` of each side discarded; stops
 * early, after at least `minRounds`, once the phase has used `budgetSeconds` (0 = no limit).
 */
async function interleaved(
  name: string,
  opts: { rounds: number; warmup: number; minRounds: number; budgetSeconds: number },
  service: (round: number) => Promise<unknown>,
  raw: (round: number) => Promise<unknown>,
): Promise<PairResult> {
  const out: PairResult = { service: [], raw: [] };
  const t0 = performance.now();
  for (let round = 0; round < opts.warmup + opts.rounds; round++) {
    const measured = round - opts.warmup;
    // Stop once another round, at the pace so far, would end past the budget.
    const elapsed = performance.now() - t0;
    if (measured >= Math.max(1, opts.minRounds) && opts.budgetSeconds && elapsed + elapsed / round > opts.budgetSeconds * 1000) break;
    const order: ["service" | "raw", (r: number) => Promise<unknown>][] = [
      ["service", service],
      ["raw", raw],
    ];
    if (round % 2 === 1) order.reverse();
    for (const [side, fn] of order) {
      const { ms: t } = await timed(() => fn(round));
      if (round >= opts.warmup) out[side].push(t);
    }
  }
  log(`${name}: ${out.service.length} rounds per side in ${((performance.now() - t0) / 1000).toFixed(1)} s; median service ${ms(stats(out.service).median)} ms, raw ${ms(stats(out.raw).median)} ms`);
  return out;
}

/** Whether a phase that started at t0 and has run `done` rounds may start another, at the pace so far. */
const withinBudget = (t0: number, done: number, s: { minRounds: number; phaseSeconds: number }, min = s.minRounds) => {
  const elapsed = performance.now() - t0;
  return done < min || !s.phaseSeconds || elapsed + elapsed / done <= s.phaseSeconds * 1000;
};

function inboundMessage(id: string, channel: (typeof CHANNELS)[number], senderId: string, text: string): InboundMessage {
  return create(InboundMessageSchema, {
    messageId: id,
    projectId: PROJECT,
    channelId: channel.id,
    messenger: channel.enum,
    senderId,
    sender: { firstName: "Bench", lastName: "Sender" },
    kind: MessageKind.TEXT,
    text,
    sentAt: timestampFromDate(new Date()),
  });
}

// ---------------------------------------------------------------------------------------------------------------

async function main(env: NodeJS.ProcessEnv) {
  if (!env.MONGO_URL || !env.KAFKA_BROKERS) throw new Error("set MONGO_URL and KAFKA_BROKERS (e.g. the test harness: MONGO_URL=mongodb://127.0.0.1:37017 KAFKA_BROKERS=127.0.0.1:19092)");
  const runStarted = new Date();
  const database = `bench_contacts_${Date.now()}`;
  const machine = benchMachine();
  const rawClient = await MongoClient.connect(env.MONGO_URL, { serverSelectionTimeoutMS: 10_000 });
  const info = (await rawClient.db("admin").command({ buildInfo: 1 })) as AnyDoc;
  const ferret = typeof info.ferretdbVersion === "string";
  const server = ferret ? `FerretDB ${String(info.ferretdbVersion)} (reports MongoDB ${String(info.version)})` : `MongoDB ${String(info.version)}`;
  const s = readSettings(env, ferret);
  const { upserts, massSize } = s;
  log(
    `contacts benchmark: ${server}, database ${database}, N=${s.n}; up to ${s.rounds} read rounds (${s.warmup} warm-up, budget ${s.phaseSeconds || "∞"} s per phase), ` +
      `${s.writeRounds} × ${upserts} upserts at concurrency ${s.concurrency}, ${s.massRounds} mass rounds over ${massSize || "N/5"} contacts in steps of ${s.massBatch}; ${machine.nproc} cpus, node ${machine.node}`,
  );

  const db = rawClient.db(database);
  const contacts = db.collection<AnyDoc>("contacts");
  const identities = db.collection<AnyDoc>("identities");
  const counters = db.collection<AnyDoc>("counters");
  const clientIds = db.collection<AnyDoc>("client_ids");
  let service: Awaited<ReturnType<typeof startService>> | undefined;
  let client: Client | undefined;
  const summary: AnyDoc = { benchmark: "contacts", startedAt: runStarted.toISOString(), database, server, machine, settings: { ...s, phases: [...s.phases], mongoUrl: s.mongoUrl.replace(/\/\/[^@/]*@/, "//***@") } };
  /** Stops the service, drops the database (unless kept) and writes the summary, with what was measured so far. */
  let cleaning: Promise<void> | undefined;
  const cleanUp = (interrupted = false) =>
    (cleaning ??= (async () => {
      summary.finishedAt = new Date().toISOString();
      summary.loadavgAtEnd = os.loadavg().map((x) => +x.toFixed(2));
      client?.close();
      await service?.stop().catch((err: unknown) => log(`service stop failed: ${(err as Error).message}`));
      if (interrupted) {
        // A write still in flight (a seed batch, a raw upsert) would recreate the database after the drop: cut the
        // raw client's connections first, give the server a moment, and drop through a fresh client.
        await rawClient.close(true).catch(() => undefined);
        await sleep(1_000);
      }
      const dropper = interrupted ? await MongoClient.connect(s.mongoUrl, { serverSelectionTimeoutMS: 10_000 }).catch(() => undefined) : rawClient;
      if (!s.keepDb && dropper) {
        await dropper
          .db(database)
          .dropDatabase()
          .then(() => log(`dropped ${database}`))
          .catch((err: unknown) => log(`could not drop ${database}: ${(err as Error).message}`));
      }
      await dropper?.close().catch(() => undefined);
      if (!interrupted) await rawClient.close().catch(() => undefined);
      const file = s.json || path.join("dist", "bench", `contacts-${database}.json`);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
      log(`summary written to ${file}`);
    })());
  // Interrupted (Ctrl-C, kill): clean up the same way, keeping what was measured, then leave.
  const onSignal = (signal: string) => {
    log(`${signal}: stopping the service${s.keepDb ? "" : ` and dropping ${database}`}`);
    summary.interruptedBy = signal;
    void cleanUp(true).finally(() => process.exit(130));
  };
  process.once("SIGINT", () => onSignal("SIGINT"));
  process.once("SIGTERM", () => onSignal("SIGTERM"));

  try {
    // 1. Seed, then start the service on the seeded database (its start-up syncs the indexes).
    const seeded = await seed(db, s);
    summary.seed = seeded;
    log(`seeded ${s.n} contacts in ${seeded.seconds.toFixed(1)} s (${seeded.contactsPerSecond.toFixed(0)}/s), ~${seeded.avgContactBsonBytes} bytes of BSON each`);
    const startup = await timed(() => startService(s, database, env));
    service = startup.value;
    summary.serviceStartSeconds = +(startup.ms / 1000).toFixed(2);
    log(`service started (index sync included) in ${summary.serviceStartSeconds} s on gRPC port ${service.grpcPort}`);
    client = createGrpcClient(ContactsService, `127.0.0.1:${service.grpcPort}`, { defaultTimeoutMs: 600_000 });
    const { ingest } = service.parts;
    const publisher = service.context.publisher;

    const now = seeded.now;
    const filter = compoundFilter(now);
    const pageQuery = scopeToProject(PROJECT, contactQuery(filter, ContactTab.UNSPECIFIED, ADMIN));
    const { spec } = sortOf(ContactSort.CREATED);
    const LIST_PROJECTION = { outbox: 0, recentInbound: 0, varNames: 0, varPairs: 0 };
    const r = seededRandom(s.seed + 1);
    const randomIndex = () => r.int(s.n);
    const seededContact = (i: number) => ({ id: derivedContactId(PROJECT, `seed:${i}`), channel: CHANNELS[i % CHANNELS.length]!, senderId: `${CHANNELS[i % CHANNELS.length]!.messenger}-${100_000_000 + i}` });

    // 2. Explain the queries the service issues.
    const massF = massFilter(s.n, massSize);
    const massCutoff = new Date();
    const massQuery = scopeToProject(PROJECT, { $and: [contactQuery(massF, ContactTab.UNSPECIFIED, ADMIN), { createdAt: { $lte: massCutoff } }] });
    const sample = seededContact(7);
    summary.explain = await explainAll(db, ferret, { contactId: sample.id, identity: identityId(PROJECT, sample.channel.id, sample.senderId), clientKey: clientIdKey(PROJECT, 8) }, pageQuery, pageQuery, massQuery);
    log("explain:");
    for (const [name, e] of Object.entries(summary.explain as AnyDoc)) console.log(`  ${name}\n    ${JSON.stringify(e)}`);
    // The background queries, run every few seconds whatever the load: the outbox relay's (every
    // OUTBOX_RELAY_INTERVAL_MS; it reads the small outbox_pending collection) and the mass-action runner's pick-up.
    const relay = await timed(() => db.collection("outbox_pending").find({ at: { $lte: new Date(Date.now() - 30_000) } }).limit(500).toArray());
    const pickUp = await timed(() => db.collection("mass_actions").find({ state: "running", leaseUntil: { $lt: new Date() } }).limit(10).toArray());
    summary.background = { outboxRelayQueryMs: +relay.ms.toFixed(1), massActionPickUpQueryMs: +pickUp.ms.toFixed(1) };
    log(`background: outbox relay query ${ms(relay.ms)} ms, mass action pick-up query ${ms(pickUp.ms)} ms`);

    const results: AnyDoc = {};
    summary.results = results;
    const readOpts = { rounds: s.rounds, warmup: s.warmup, minRounds: s.minRounds, budgetSeconds: s.phaseSeconds };
    const run = (phase: string) => s.phases.has(phase);

    // 3a. First page of the compound filter, newest first, no total.
    if (run("page")) {
      const check = { serviceIds: [] as string[], rawIds: [] as string[] };
      const page = await interleaved(
        "first page",
        readOpts,
        async () => {
          const res = await client!.listContacts({ filter, sort: ContactSort.CREATED, pageSize: 50, skipTotal: true }, asAdmin);
          check.serviceIds = res.contacts.map((c) => c.contactId);
        },
        async () => {
          const docs = await contacts.find(pageQuery as never).sort(spec).limit(51).project(LIST_PROJECTION).toArray();
          check.rawIds = docs.slice(0, 50).map((d) => d._id as string);
        },
      );
      results.firstPage = { ...pairSummary(page), samePage: check.serviceIds.join() === check.rawIds.join(), pageSize: check.serviceIds.length };
    }

    // 3b. Its total. The service only answers a total together with a page (ListContacts), so the service side is
    // ListContacts(page_size 1) and the raw side the same two operations (find limit 2 ‖ countDocuments); a bare
    // countDocuments is timed beside them as the reference for the count target.
    if (run("count")) {
      const totals = { service: -1, raw: -1, bare: -1 };
      const count = await interleaved(
        "count",
        readOpts,
        async () => {
          totals.service = Number((await client!.listContacts({ filter, sort: ContactSort.CREATED, pageSize: 1 }, asAdmin)).totalCount);
        },
        async () => {
          const [, n] = await Promise.all([contacts.find(pageQuery as never).sort(spec).limit(2).project(LIST_PROJECTION).toArray(), contacts.countDocuments(pageQuery as never)]);
          totals.raw = n;
        },
      );
      const bare: number[] = [];
      const bareStarted = performance.now();
      for (let i = 0; i < Math.max(3, Math.round(s.rounds / 2)) && withinBudget(bareStarted, i, { ...s, phaseSeconds: Math.round(s.phaseSeconds / 2) }, 1); i++) {
        const t = await timed(() => contacts.countDocuments(pageQuery as never));
        totals.bare = t.value;
        bare.push(t.ms);
      }
      results.count = { ...pairSummary(count), rawCountDocumentsOnly: stats(bare), total: totals.service, sameTotal: totals.service === totals.raw && totals.raw === totals.bare };
      log(`count: total ${totals.service} (raw ${totals.raw}); bare countDocuments median ${ms(stats(bare).median)} ms`);
    }

    // 3c. Card read: GetContact by id vs findOne by _id (+ the project check the service does in code).
    if (run("card")) {
      const idOf = (round: number) => seededContact((round * 7919 + 13) % s.n).id;
      const card = await interleaved(
        "card read",
        readOpts,
        async (round) => {
          await client!.getContact({ contact: { ref: { case: "contactId", value: idOf(round) } } }, asAdmin);
        },
        async (round) => {
          const doc = await contacts.findOne({ _id: idOf(round) as never });
          if (doc?.projectId !== PROJECT) throw new Error("card read: contact missing");
        },
      );
      results.cardRead = pairSummary(card);
    }

    // 3d. Inbound upserts: half to existing senders, half from new senders; service and raw never touch the same contact.
    if (run("upserts")) {
      const used = new Set<number>();
      const freshExisting = () => {
        for (;;) {
          const i = randomIndex();
          if (!used.has(i)) {
            used.add(i);
            return i;
          }
        }
      };
      let msgSeq = 0;
      const batchOf = (side: string, round: number, size: number) =>
        Array.from({ length: size }, (_, k) => {
          const id = `bench-${side}-${round}-${msgSeq++}`;
          if (k % 2 === 0) {
            const c = seededContact(freshExisting());
            return inboundMessage(id, c.channel, c.senderId, `Hi, a question about my order ${k}`);
          }
          const channel = CHANNELS[k % CHANNELS.length]!;
          return inboundMessage(id, channel, `${channel.messenger}-new-${side}-${round}-${k}`, "Hello, I am new here");
        });

      // The raw baseline: the least database work the semantics need (see REPORT.md): resolve the identity by _id,
      // then one findOneAndUpdate by _id that applies the message and returns the card (an event needs it); a new
      // sender takes a client id from the counter, then gets an identity, a client-id entry and a card. Optionally
      // the same two Kafka publishes.
      const rawIngest = async (msg: InboundMessage, withKafka: boolean) => {
        const at = timestampDate(msg.sentAt!);
        const key = identityId(msg.projectId, msg.channelId, msg.senderId);
        const identity = await identities.findOne({ _id: key as never });
        const lastMessage = { author: "client", operatorId: "", excerpt: msg.text.slice(0, 200), hasAttachment: false, at, failed: false, error: "", commandId: "" };
        let contact: ContactDoc;
        let firstTouch = false;
        if (identity) {
          contact = (await contacts.findOneAndUpdate(
            { _id: identity.contactId as never },
            { $set: { lastInteractionAt: at, lastInboundAt: at, unread: true, lastMessage, updatedAt: new Date() }, $inc: { unreadCount: 1, rev: 1 }, $push: { recentInbound: { $each: [msg.messageId], $slice: -20 } } } as never,
            { returnDocument: "after" },
          )) as unknown as ContactDoc;
        } else {
          firstTouch = true;
          const contactId = derivedContactId(msg.projectId, msg.messageId);
          const counter = (await counters.findOneAndUpdate({ _id: msg.projectId as never }, { $inc: { seq: 1 } } as never, { upsert: true, returnDocument: "after" })) as unknown as { seq: number };
          await identities.insertOne({ _id: key as never, projectId: msg.projectId, contactId, deletedAt: null, blacklisted: false });
          await clientIds.insertOne({ _id: clientIdKey(msg.projectId, counter.seq) as never, contactId });
          contact = newContactDoc(
            { projectId: msg.projectId, contactId, messenger: CHANNELS.find((c) => c.id === msg.channelId)!.messenger, channelId: msg.channelId, messengerUserId: msg.senderId, profile: { firstName: "Bench", lastName: "Sender" }, at },
            counter.seq,
          );
          Object.assign(contact, { firstInteractionAt: at, lastInboundAt: at, unread: true, unreadCount: 1, lastMessage, recentInbound: [msg.messageId] });
          await contacts.insertOne(contact as never);
        }
        if (withKafka) {
          await publisher.publish(Topics.resolvedMessages, { key: contact._id, projectId: PROJECT, eventId: `resolved:${msg.messageId}`, value: { message: msg, contact: toSnapshot(contact), firstTouch } });
          await publishContactEvents(publisher, [contactChanged(contact, firstTouch ? "created" : "updated", `inbound:${msg.messageId}`, ["last_interaction_at", "unread", "unread_count", "last_message"], new Date())]);
        }
      };

      type Side = [string, (msg: InboundMessage) => Promise<unknown>];
      const writeSides: Side[] = [
        ["service", (msg) => ingest.ingest(msg)],
        ["raw", (msg) => rawIngest(msg, false)],
        ...(s.rawKafka ? [["rawKafka", (msg: InboundMessage) => rawIngest(msg, true)] as Side] : []),
      ];
      const writeRates: Record<string, number[]> = Object.fromEntries(writeSides.map(([side]) => [side, []]));
      // A message that fails (FerretDB answers SQLITE_BUSY when writers queue past its 10 s busy timeout) is counted
      // as an error and left out of the throughput, rather than ending the run.
      const errors: Record<string, { count: number; first: string }> = Object.fromEntries(writeSides.map(([side]) => [side, { count: 0, first: "" }]));
      const guarded = (side: string, fn: (msg: InboundMessage) => Promise<unknown>) => async (msg: InboundMessage) => {
        try {
          await fn(msg);
          return true;
        } catch (err) {
          const e = errors[side]!;
          if (!e.count++) e.first = (err as Error).message.slice(0, 300);
          return false;
        }
      };
      // A few messages per side first (connections, Kafka producer metadata), not counted.
      for (const [side, fn] of writeSides) await pool(batchOf(`${side}-warm`, 0, Math.min(upserts, 10)), s.concurrency, guarded(`${side}`, fn));
      for (const e of Object.values(errors)) [e.count, e.first] = [0, ""];
      const writesStarted = performance.now();
      for (let round = 0; round < s.writeRounds && withinBudget(writesStarted, round, s, 1); round++) {
        const order = round % 2 === 0 ? writeSides : [...writeSides].reverse();
        for (const [side, fn] of order) {
          const batch = batchOf(side, round, upserts);
          let ok = 0;
          const run1 = guarded(side, fn);
          const { ms: t } = await timed(() => pool(batch, s.concurrency, async (msg) => void ((await run1(msg)) && ok++)));
          writeRates[side]!.push(ok / (t / 1000));
          log(`upserts round ${round + 1}/${s.writeRounds} ${side}: ${ok}/${batch.length} in ${ms(t)} ms = ${(ok / (t / 1000)).toFixed(1)}/s`);
        }
      }
      results.upserts = {
        messagesPerRound: upserts,
        concurrency: s.concurrency,
        ...Object.fromEntries(Object.entries(writeRates).map(([side, xs]) => [side, { perSecond: stats(xs), rounds: xs.map((x) => +x.toFixed(1)), errors: errors[side] }])),
        seconds: +((performance.now() - writesStarted) / 1000).toFixed(1),
      };
    }

    // 3e. Mass action: ADD_TAGS over the same selection; every run adds a tag nobody has yet, so each run changes every contact.
    if (run("mass")) {
      const selected = await contacts.countDocuments(massQuery as never);
      log(`mass action selection: ${selected} contacts (${JSON.stringify(toJson(ContactFilterSchema, massF))})`);
      const massRates: Record<string, number[]> = { service: [], raw: [] };
      const serviceMass = async (tag: string) => {
        const t0 = performance.now();
        const started = await client!.startMassAction({ action: { kind: MassActionKind.ADD_TAGS, values: [tag] }, selection: { selection: { case: "filter", value: { filter: massF } } } }, asAdmin);
        const jobId = started.job!.jobId;
        let lastLog = performance.now();
        let lastDone = -1;
        let lastProgress = performance.now();
        for (;;) {
          const job = (await client!.getMassAction({ jobId }, asAdmin)).job!;
          if (job.state === MassActionState.DONE) return { ms: performance.now() - t0, done: Number(job.done) };
          if (job.state === MassActionState.FAILED) throw new Error(`mass action failed: ${job.error}`);
          if (Number(job.done) !== lastDone) [lastDone, lastProgress] = [Number(job.done), performance.now()];
          if (performance.now() - lastLog > 10_000) {
            lastLog = performance.now();
            log(`  mass action ${jobId}: ${job.done}/${job.total} after ${((performance.now() - t0) / 1000).toFixed(0)} s`);
          }
          if (performance.now() - lastProgress > s.massStallSeconds * 1000) throw new Error(`mass action ${jobId} made no progress for ${s.massStallSeconds} s (${job.done}/${job.total})`);
          await sleep(20);
        }
      };
      const rawMass = async (tag: string) => {
        const t0 = performance.now();
        const at = new Date();
        const cursor = contacts.find(massQuery as never).sort({ _id: 1 }).batchSize(s.massBatch);
        let batch: AnyDoc[] = [];
        let done = 0;
        const flush = async () => {
          if (!batch.length) return;
          await contacts.bulkWrite(
            batch.map((d) => ({ updateOne: { filter: { _id: d._id as never }, update: { $addToSet: { tags: { $each: [tag] } }, $inc: { rev: 1 }, $set: { updatedAt: at } } as never } })),
            { ordered: false },
          );
          done += batch.length;
          batch = [];
        };
        for await (const d of cursor) {
          batch.push(d);
          if (batch.length >= s.massBatch) await flush();
        }
        await flush();
        return { ms: performance.now() - t0, done };
      };
      const massStarted = performance.now();
      for (let round = 0; round < s.massRounds && withinBudget(massStarted, round, s, 1); round++) {
        const order: ["service" | "raw", (tag: string) => Promise<{ ms: number; done: number }>][] = [
          ["service", serviceMass],
          ["raw", rawMass],
        ];
        if (round % 2 === 1) order.reverse();
        for (const [side, fn] of order) {
          const res = await fn(`mass-${side}-${round}`);
          massRates[side]!.push(res.done / (res.ms / 1000));
          log(`mass action round ${round + 1}/${s.massRounds} ${side}: ${res.done} contacts in ${ms(res.ms)} ms = ${ms(res.done / (res.ms / 1000))}/s`);
        }
      }
      const many = s.updateMany
        ? await timed(() => contacts.updateMany(massQuery as never, { $addToSet: { tags: { $each: ["mass-updatemany"] } }, $inc: { rev: 1 }, $set: { updatedAt: new Date() } } as never))
        : undefined;
      if (many) log(`mass action reference: one updateMany over ${many.value.modifiedCount} contacts in ${ms(many.ms)} ms`);
      results.massAction = {
        selected,
        filter: toJson(ContactFilterSchema, massF),
        batchSize: s.massBatch,
        service: { perSecond: stats(massRates.service!), rounds: massRates.service!.map((x) => +x.toFixed(2)) },
        raw: { perSecond: stats(massRates.raw!), rounds: massRates.raw!.map((x) => +x.toFixed(2)) },
        updateManyReference: many && { contacts: many.value.modifiedCount, ms: +many.ms.toFixed(1), perSecond: +(many.value.modifiedCount / (many.ms / 1000)).toFixed(2) },
      };
    }

    // 4. The table.
    type S = ReturnType<typeof stats>;
    const fp = results.firstPage as { service: S; raw: S; pairedRatio: number; samePage: boolean } | undefined;
    const ct = results.count as { service: S; raw: S; pairedRatio: number; rawCountDocumentsOnly: S; total: number; sameTotal: boolean } | undefined;
    const cr = results.cardRead as { service: S; raw: S; pairedRatio: number } | undefined;
    const up = results.upserts as Record<string, { perSecond: S }> | undefined;
    const ma = results.massAction as { service: { perSecond: S }; raw: { perSecond: S }; selected: number; updateManyReference?: { perSecond: number } } | undefined;
    const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? null : +(a / b).toFixed(3));
    const ratios = {
      firstPage: ratio(fp?.service.median, fp?.raw.median),
      firstPagePaired: fp?.pairedRatio ?? null,
      count: ratio(ct?.service.median, ct?.raw.median),
      countPaired: ct?.pairedRatio ?? null,
      cardRead: ratio(cr?.service.median, cr?.raw.median),
      cardReadPaired: cr?.pairedRatio ?? null,
      upserts: ratio(up?.service?.perSecond.median, up?.raw?.perSecond.median),
      upsertsVsRawWithKafka: ratio(up?.service?.perSecond.median, up?.rawKafka?.perSecond.median),
      massAction: ratio(ma?.service.perSecond.median, ma?.raw.perSecond.median),
    };
    summary.ratios = ratios;
    const f = (x: number | null | undefined) => (x === null || x === undefined ? "" : x.toFixed(2));
    const rows: string[][] = [["operation", "service median", "service p95", "raw median", "raw p95", "service/raw", "paired", "ratio target", "absolute target (MongoDB, N=1M)"]];
    if (fp) rows.push(["first page (ms)", ms(fp.service.median), ms(fp.service.p95), ms(fp.raw.median), ms(fp.raw.p95), f(ratios.firstPage), f(fp.pairedRatio), "≤ 1.3", "p95 ≤ 50 ms"]);
    if (ct) {
      rows.push(["count via ListContacts (ms)", ms(ct.service.median), ms(ct.service.p95), ms(ct.raw.median), ms(ct.raw.p95), f(ratios.count), f(ct.pairedRatio), "≤ 1.3", "≤ 300 ms"]);
      rows.push(["  bare countDocuments (ms)", "", "", ms(ct.rawCountDocumentsOnly.median), ms(ct.rawCountDocumentsOnly.p95), "", "", "", ""]);
    }
    if (cr) rows.push(["card read (ms)", ms(cr.service.median), ms(cr.service.p95), ms(cr.raw.median), ms(cr.raw.p95), f(ratios.cardRead), f(cr.pairedRatio), "≤ 1.3", ""]);
    if (up) {
      rows.push(["inbound upserts (/s)", ms(up.service!.perSecond.median), "", ms(up.raw!.perSecond.median), "", f(ratios.upserts), "", "≥ 0.7", "≥ 5,000/s"]);
      if (up.rawKafka) rows.push(["  raw + the same 2 Kafka publishes (/s)", "", "", ms(up.rawKafka.perSecond.median), "", f(ratios.upsertsVsRawWithKafka), "", "", ""]);
    }
    if (ma) {
      rows.push(["mass action (contacts/s)", ms(ma.service.perSecond.median), "", ms(ma.raw.perSecond.median), "", f(ratios.massAction), "", "≥ 0.7", "≥ 10,000/s"]);
      if (ma.updateManyReference) rows.push(["  one updateMany, reference (/s)", "", "", ms(ma.updateManyReference.perSecond), "", "", "", "", ""]);
    }
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
    console.log(`\nContacts benchmark — ${server}, N=${s.n}, ${runStarted.toISOString()}; medians over the rounds each side ran (see the log above)`);
    for (const [i, row] of rows.entries()) {
      console.log(`| ${row.map((cell, c) => cell.padEnd(widths[c]!)).join(" | ")} |`);
      if (i === 0) console.log(`| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`);
    }
    if (fp) console.log(`first page: both sides returned the same page: ${String(fp.samePage)}`);
    if (ct) console.log(`count: total ${ct.total}, same from all three: ${String(ct.sameTotal)}`);
    if (up)
      for (const [side, r] of Object.entries(up as Record<string, { errors?: { count: number; first: string } }>))
        if (r.errors?.count) console.log(`upserts ${side}: ${r.errors.count} messages failed, first: ${r.errors.first}`);
    if (ma) console.log(`mass action: ${ma.selected} contacts selected`);
  } finally {
    await cleanUp();
  }
}

// The benchmark is an entry point like a service's main.ts: the one place that reads the environment.
// eslint-disable-next-line no-restricted-properties
main(process.env).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
