/**
 * Flow-runtime benchmark (see REPORT.md next to this file).
 *
 * Starts the real contacts service in this process and the real flow runtime in a process of its own
 * (runtime-process.ts; as test/harness.ts configures them, with the service defaults for the timer scan and the
 * effect relay, and quiet loggers) against the harness's Kafka and MongoDB-compatible server, each on a fresh
 * database, and measures:
 *   1. throughput: a looping flow question → message → question → message → back, driven by ContactResolvedMessage
 *      events published straight to contacts.resolved-messages.v1 (as contacts would after resolving the contact),
 *      in rounds: every contact sends one message per round (the first is the keyword that starts the flow), and a
 *      round ends when every contact's replies were read back from channels.send-commands.v1. Two populations of
 *      contacts;
 *   2. timers: 1,000,000 timers due 1–7 days ahead stored through TimerWheel.scheduleMany in batches, with the heap
 *      and RSS after a forced GC every 250,000; then, while they are pending, the firing lag of timers stored through
 *      schedule() (held in memory), of timers stored only through scheduleMany (found by the periodic scan), and end
 *      to end of a flow's 10 s delay block (the message after it read back from the send-commands topic).
 * At the end the services stop, their databases are dropped (in that order: see stopAndDrop) and the consumer
 * groups deleted. Prints the figures and writes a JSON summary (dist/bench/flows-<ms>.json or BENCH_JSON).
 *
 * Run: npm run bench:flows  (env: MONGO_URL, KAFKA_BROKERS, BENCH_*; see readSettings below)
 */
import { formatWithOptions } from "node:util";
import { create, fromBinary } from "@bufbuild/protobuf";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Consumer } from "kafkajs";
import { InboundMessageSchema, Messenger, MessageKind, SendMessageCommandSchema } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { ContactResolvedMessageSchema } from "@chatcrm/contracts/chatcrm/contacts/v1/events_pb";
import { AnswerKind, DelayUnit, EdgePort, FlowDefinitionSchema, TriggerKind } from "@chatcrm/contracts/chatcrm/flows/v1/flow_pb";
import { FlowsService } from "@chatcrm/contracts/chatcrm/flows/v1/flows_service_pb";
import { createGrpcClient } from "@chatcrm/grpc";
import { createKafka, EventPublisher, Header, Topics, type OutgoingEvent } from "@chatcrm/kafka";
import { createLogger } from "@chatcrm/logging";
import { benchMachine, callAs, cpuBetween, cpuSnapshot, median, pidOnPort, quantile, startGroupsAtEnd, stopAndDrop } from "@chatcrm/testing";
// The runtime reads and changes cards through the real contacts service, so the bench starts one beside it.
// eslint-disable-next-line @nx/enforce-module-boundaries
import { startContacts } from "../../contacts/src/app";
// eslint-disable-next-line @nx/enforce-module-boundaries
import { configSchema as contactsConfigSchema } from "../../contacts/src/config";
import mongoose from "mongoose";
import { configSchema, type Config } from "../src/config";
import type { TimerDoc } from "../src/timers/timer-wheel";
import { RuntimeReplicas } from "./runtime-process";

type Env = NodeJS.ProcessEnv;

function readSettings(env: Env) {
  const int = (name: string, fallback: number, min = 0) => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name}=${raw}: expected a whole number${min > 0 ? ` of ${min} or more` : ""}`);
    return n;
  };
  if (!env.MONGO_URL || !env.KAFKA_BROKERS) throw new Error("set MONGO_URL and KAFKA_BROKERS (the test harness: CHATCRM_INSTANCE=test bash deploy/local/infra.sh start)");
  return {
    mongoUrl: env.MONGO_URL,
    kafkaBrokers: env.KAFKA_BROKERS.split(",").map((b) => b.trim()),
    /** Passed to both services as it is (unset: their default, on); false on FerretDB, as deploy/local/run.sh does. */
    mongoQueryIndexes: env.MONGO_QUERY_INDEXES,
    /** Throughput populations: contacts, and answer rounds after the starting (keyword) round, for each. */
    populations: (env.BENCH_POPULATIONS || "200:3,2000:5").split(",").map((p) => {
      const [contacts, rounds] = p.split(":").map(Number);
      return { contacts: contacts!, rounds: rounds! };
    }),
    /** Steady load: contacts that each answer as soon as their question arrives, and for how long (0 s: skip). */
    steadyContacts: int("BENCH_STEADY_CONTACTS", 4_000),
    steadySeconds: int("BENCH_STEADY_SECONDS", 40),
    /** A round with no reply for this long is cut off and reported incomplete. */
    stallSeconds: int("BENCH_STALL", 30),
    timers: int("BENCH_TIMERS", 1_000_000),
    timerBatch: int("BENCH_TIMER_BATCH", 10_000),
    heldTimers: int("BENCH_HELD_TIMERS", 5_000),
    scannedTimers: int("BENCH_SCANNED_TIMERS", 1_000),
    delayContacts: int("BENCH_DELAY_CONTACTS", 50),
    scanIntervalMs: int("BENCH_TIMER_SCAN_MS", 10_000),
    json: env.BENCH_JSON ?? "",
    /** Runtime replicas (processes in one consumer group); timers are stored through the first. */
    runtimeReplicas: int("BENCH_RUNTIME_REPLICAS", 1, 1),
    /** A directory for a CPU profile of the runtime process (written when it exits). */
    runtimeProfileDir: env.BENCH_RUNTIME_PROFILE ?? "",
  };
}
type Settings = ReturnType<typeof readSettings>;

const log = (...parts: unknown[]) => console.log(formatWithOptions({ depth: 6 }, `[${new Date().toISOString().slice(11, 19)}]`, ...parts));
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));
const r1 = (x: number) => +x.toFixed(1);
function dist(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: r1(quantile(s, 0.5)), p99: r1(quantile(s, 0.99)), max: r1(s[s.length - 1] ?? NaN) };
}
// ---------------------------------------------------------------------------------------------------------------
// The services, as test/harness.ts starts them, with a quiet logger and the service's own timer/relay defaults.

async function startStack(name: string, settings: Settings) {
  const logger = createLogger({ service: "flow-bench", level: "warn" });
  await startGroupsAtEnd(
    {
      [`${name}_contacts`]: [Topics.inboundMessages.name, Topics.deliveryStatuses.name, Topics.subscriberStatuses.name],
      [`${name}_contacts_funnel`]: [Topics.funnelMoves.name],
      [`${name}_flows`]: [Topics.resolvedMessages.name, Topics.flowCommands.name, Topics.flowTimers.name, Topics.integrationResults.name],
    },
    logger,
  );
  const base = (database: string) => ({
    GRPC_HOST: "127.0.0.1",
    LOG_LEVEL: "warn" as const,
    GRPC_PORT: 0,
    MONGO_URL: settings.mongoUrl,
    MONGO_DATABASE: database,
    KAFKA_BROKERS: settings.kafkaBrokers,
    KAFKA_CLIENT_ID: database,
    KAFKA_REPLICATION_FACTOR: 1,
    MONGO_TTL_INDEXES: false,
  });
  const env = { MONGO_URL: settings.mongoUrl, KAFKA_BROKERS: settings.kafkaBrokers.join(","), MONGO_QUERY_INDEXES: settings.mongoQueryIndexes };
  const contacts = await startContacts({ ...contactsConfigSchema.parse(env), ...base(`${name}_contacts`), KAFKA_CONSUMER_GROUP: `${name}_contacts`, FUNNEL_MOVES_CONSUMER_GROUP: `${name}_contacts_funnel` }, logger.child({ service: "contacts" }));
  const config: Config = {
    ...configSchema.parse(env),
    ...base(`${name}_flows`),
    CONTACTS_GRPC_ADDR: `127.0.0.1:${contacts.grpcPort}`,
    KAFKA_CONSUMER_GROUP: `${name}_flows`,
    TIMER_SCAN_INTERVAL_MS: settings.scanIntervalMs,
  };
  // The runtime bundle sits next to this one (npm run bench:flows builds both).
  const runtime = await RuntimeReplicas.start(path.join(__dirname, "flow-runtime.js"), config, settings.runtimeReplicas, settings.runtimeProfileDir);
  // The bench's own connection to the runtime's database, for counting what it stored.
  const runtimeConnection = await mongoose.createConnection(settings.mongoUrl, { dbName: config.MONGO_DATABASE }).asPromise();
  return { contacts, runtime, runtimeConnection, runtimeDb: runtimeConnection.db!, config, logger };
}

/**
 * Reads a topic from its end (the group is committed there first) and hands the project's records on, with their
 * keys. It decodes nothing itself: at thousands of records a second the driver's own decoding took CPU the services
 * under test would otherwise have.
 */
async function tap(settings: Settings, group: string, topic: string, projectId: string, onRecord: (key: string, value: Uint8Array, at: number) => void): Promise<Consumer> {
  const logger = createLogger({ service: "flow-bench-tap", level: "warn" });
  await startGroupsAtEnd({ [group]: [topic] }, logger);
  const consumer = createKafka({ brokers: settings.kafkaBrokers, clientId: group, logger }).consumer({ groupId: group });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: false });
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.run({
    partitionsConsumedConcurrently: 4,
    eachBatch: async ({ batch }) => {
      const at = Date.now();
      for (const message of batch.messages) {
        if (message.headers?.[Header.projectId]?.toString() !== projectId) continue;
        onRecord(message.key?.toString() ?? "", message.value ?? new Uint8Array(), at);
      }
    },
  });
  await joined;
  return consumer;
}

// ---------------------------------------------------------------------------------------------------------------

async function main(env: Env) {
  const settings = readSettings(env);
  const startedAt = new Date();
  const stamp = startedAt.getTime();
  const name = `bench_flows_${stamp}`;
  const project = `bench-flows-${stamp}`;
  const machine = benchMachine();
  log("machine", machine);
  const summary: Record<string, unknown> = { benchmark: "flow-runtime", startedAt: startedAt.toISOString(), project, machine, settings: { ...settings } };

  const { contacts, runtime, runtimeConnection, runtimeDb, config, logger } = await startStack(name, settings);
  summary.serviceConfig = { runtimeReplicas: runtime.count, MONGO_QUERY_INDEXES: config.MONGO_QUERY_INDEXES, CONSUMER_CONCURRENCY: config.CONSUMER_CONCURRENCY, TIMER_LOOKAHEAD_MS: config.TIMER_LOOKAHEAD_MS, TIMER_SCAN_INTERVAL_MS: config.TIMER_SCAN_INTERVAL_MS, EFFECT_RELAY_INTERVAL_MS: config.EFFECT_RELAY_INTERVAL_MS };
  const flows = createGrpcClient(FlowsService, `127.0.0.1:${runtime.first.grpcPort}`);
  const publisher = new EventPublisher(createKafka({ brokers: settings.kafkaBrokers, clientId: `${name}_driver`, logger }));
  await publisher.connect();

  // Replies per recipient, with the time each was read back.
  const replies = new Map<string, { at: number; text: string }[]>();
  let lastReplyAt = Date.now();
  let onReply: (recipientId: string, count: number, at: number) => void = () => undefined;
  // Only the delay phase reads what the replies say; the rest count them by recipient, from the record's key.
  const readsText = new Set<string>();
  const sendsTap = await tap(settings, `${name}_tap_sends`, Topics.sendCommands.name, project, (key, value, at) => {
    const recipientId = key.slice(key.indexOf(":") + 1);
    let list = replies.get(recipientId);
    if (!list) replies.set(recipientId, (list = []));
    list.push({ at, text: readsText.has(recipientId) ? fromBinary(SendMessageCommandSchema, value).text : "" });
    lastReplyAt = at;
    onReply(recipientId, list.length, at);
  });
  const pids = { bench: process.pid, runtime: runtime.pids, kafka: pidOnPort(Number(settings.kafkaBrokers[0]!.split(":")[1])), ferretdb: pidOnPort(Number(new URL(settings.mongoUrl).port || 27017)) };
  const fired = new Map<string, number>();
  const timersTap = await tap(settings, `${name}_tap_timers`, Topics.flowTimers.name, project, (_key, value, at) => {
    const t = fromBinary(Topics.flowTimers.schema, value);
    if (!fired.has(t.timerId)) fired.set(t.timerId, at - Number(t.dueAtMs));
  });

  let failed: unknown;
  try {
    // -------------------------------------------------------------------------------------------------------
    // Phase 1: throughput through question and message blocks.
    const next = (from: string, to: string) => ({ fromBlockId: from, toBlockId: to, port: EdgePort.NEXT, buttonPayload: "" });
    const question = (blockId: string, text: string) => ({ blockId, kind: { case: "question" as const, value: { prompt: { text }, expect: AnswerKind.TEXT, retries: 1 } } });
    const message = (blockId: string, text: string) => ({ blockId, kind: { case: "message" as const, value: { text } } });
    await flows.createFlow(
      {
        definition: create(FlowDefinitionSchema, {
          name: "Bench loop",
          entryBlockId: "q1",
          triggers: [{ kind: TriggerKind.KEYWORD, values: ["start"] }],
          blocks: [question("q1", "Question one?"), message("m1", "got {{first_name}}"), question("q2", "Question two?"), message("m2", "thanks {{first_name}}")],
          edges: [next("q1", "m1"), next("m1", "q2"), next("q2", "m2"), next("m2", "q1")],
        }),
      },
      callAs(project),
    );
    await flows.createFlow(
      {
        definition: create(FlowDefinitionSchema, {
          name: "Bench delay",
          entryBlockId: "w",
          triggers: [{ kind: TriggerKind.KEYWORD, values: ["wait"] }],
          blocks: [message("w", "waiting"), { blockId: "d", kind: { case: "delay", value: { amount: 10n, unit: DelayUnit.SECONDS } } }, message("done", "done")],
          edges: [next("w", "d"), next("d", "done")],
        }),
      },
      callAs(project),
    );

    const resolved = (contactId: string, senderId: string, text: string, seq: number): OutgoingEvent<typeof Topics.resolvedMessages.schema> => {
      const messageId = `${contactId}-m${seq}`;
      return {
        key: contactId,
        projectId: project,
        eventId: messageId,
        value: create(ContactResolvedMessageSchema, {
          message: { messageId, projectId: project, channelId: "tg-bench", messenger: Messenger.TELEGRAM, senderId, kind: MessageKind.TEXT, text },
          contact: { contactId, channelId: "tg-bench", messenger: Messenger.TELEGRAM, messengerUserId: senderId, firstName: "Ivan" },
          firstTouch: seq === 0,
        }),
      };
    };

    /** One round: every contact sends one message; done when each has `expected` replies in all. */
    const round = async (ids: string[], seq: number, text: string, expected: number) => {
      const published = new Map<string, number>();
      const t0 = Date.now();
      lastReplyAt = t0;
      for (let i = 0; i < ids.length; i += 500) {
        const chunk = ids.slice(i, i + 500);
        const at = Date.now();
        for (const id of chunk) published.set(id, at);
        await publisher.publishBatch(Topics.resolvedMessages, chunk.map((id) => resolved(id, id, text, seq)));
      }
      const publishedMs = Date.now() - t0;
      const done = () => ids.every((id) => (replies.get(id)?.length ?? 0) >= expected);
      while (!done() && Date.now() - lastReplyAt < settings.stallSeconds * 1000) await sleep(20);
      const latencies: number[] = [];
      let end = t0;
      let complete = 0;
      for (const id of ids) {
        const list = replies.get(id) ?? [];
        if (list.length >= expected) {
          complete++;
          const at = list[expected - 1]!.at;
          latencies.push(at - published.get(id)!);
          end = Math.max(end, at);
        }
      }
      const seconds = (end - t0) / 1000;
      return { seq, messages: ids.length, handled: complete, seconds: r1(seconds), msgPerS: r1(complete / seconds), publishMs: publishedMs, latencyMs: dist(latencies) };
    };

    const throughput: Record<string, unknown>[] = [];
    // Contacts the runtime has stepped, whose sessions wait: the lag test's timers belong to them.
    const inFlows: string[] = [];
    let offset = 0;
    for (const pop of settings.populations) {
      const ids = Array.from({ length: pop.contacts }, (_, i) => `bc${stamp.toString(36)}-${offset + i}`);
      inFlows.push(...ids);
      offset += pop.contacts;
      const stateDocsBefore = await runtimeDb.collection("contact_states").countDocuments();
      const rounds = [];
      const cpuBefore = cpuSnapshot(pids);
      const t = process.cpuUsage();
      const wall = Date.now();
      // Round 0: the keyword starts the flow, one reply (question one). Each later answer: a message and a question.
      for (let seq = 0; seq <= pop.rounds; seq++) {
        const r = await round(ids, seq, seq === 0 ? "start" : `answer ${seq}`, 1 + 2 * seq);
        log(`throughput, ${pop.contacts} contacts, round ${seq}:`, r);
        rounds.push(r);
        if (r.handled < r.messages) break;
      }
      const cpu = process.cpuUsage(t);
      const cpuUsed = cpuBetween(cpuBefore, cpuSnapshot(pids), { digits: 1, calls: rounds.reduce((n, r) => n + r.handled, 0) });
      const calls = await runtime.takeTimings();
      log("time per call:", calls);
      const answerRounds = rounds.slice(1).filter((r) => r.handled === r.messages);
      throughput.push({
        contacts: pop.contacts,
        stateDocsBefore,
        rounds,
        medianAnswerMsgPerS: r1(median(answerRounds.map((r) => r.msgPerS))),
        medianAnswerP50Ms: r1(median(answerRounds.map((r) => r.latencyMs.p50))),
        medianAnswerP99Ms: r1(median(answerRounds.map((r) => r.latencyMs.p99))),
        runtimeCallsMs: calls,
        benchProcessCpuPct: r1(((cpu.user + cpu.system) / 1000 / (Date.now() - wall)) * 100),
        cpu: cpuUsed,
      });
    }
    summary.throughput = throughput;

    // Steady load: every contact answers the moment its question arrives, so fetching, stepping, inserting and
    // publishing overlap as they would with real subscribers. Counted over the window after a warm-up.
    if (settings.steadyContacts > 0 && settings.steadySeconds > 0) {
      // The relay sweeps once EFFECT_RELAY_AFTER_MS after the start (on FerretDB a scan of every revision, seconds of
      // its CPU), then every 5 minutes: a one-off of the start, kept out of the steady window and reported apart.
      const sweepWaitT0 = Date.now();
      while ((await runtime.sweeps()) === 0) await sleep(250);
      summary.startSweep = { waitedMs: Date.now() - sweepWaitT0, calls: await runtime.takeTimings() };
      log("the relay's sweep after the start:", summary.startSweep);
      const ids = Array.from({ length: settings.steadyContacts }, (_, i) => `bs${stamp.toString(36)}-${i}`);
      inFlows.push(...ids);
      const start = await round(ids, 0, "start", 1);
      log(`steady, ${ids.length} contacts: the keyword round`, start);
      const answered = new Map(ids.map((id) => [id, 0]));
      const askedAt = new Map<string, number>();
      const latencies: number[] = [];
      let running = true;
      let handled = 0;
      const warmUpMs = Math.min(10_000, (settings.steadySeconds * 1000) / 4);
      const t0 = Date.now();
      const answer = (id: string) => {
        const seq = answered.get(id)! + 1;
        answered.set(id, seq);
        askedAt.set(id, Date.now());
        void publisher.publishCoalesced(Topics.resolvedMessages, resolved(id, id, `answer ${seq}`, seq));
      };
      onReply = (id, count, at) => {
        const seq = answered.get(id);
        // An answer is handled once its message and the next question are back: 1 + 2 × answers replies.
        if (seq === undefined || count !== 1 + 2 * seq || seq === 0) return;
        if (at - t0 >= warmUpMs) {
          handled++;
          latencies.push(at - askedAt.get(id)!);
        }
        if (running) answer(id);
      };
      ids.forEach(answer);
      await sleep(warmUpMs);
      const cpuFrom = cpuSnapshot(pids);
      const metricsFrom = await runtime.metrics();
      await runtime.takeTimings();
      await sleep(settings.steadySeconds * 1000 - warmUpMs);
      running = false;
      const windowS = (Date.now() - t0 - warmUpMs) / 1000;
      const steady = {
        contacts: ids.length,
        windowSeconds: r1(windowS),
        warmUpSeconds: r1(warmUpMs / 1000),
        handled,
        msgPerS: r1(handled / windowS),
        latencyMs: dist(latencies),
        cpu: cpuBetween(cpuFrom, cpuSnapshot(pids), { digits: 1, calls: handled }),
        runtimeCallsMs: await runtime.takeTimings(),
        // States the runtime had to read from the store within the window (every contact was in memory before it).
        statesLoaded: (await runtime.metrics()).loaded - metricsFrom.loaded,
      };
      onReply = () => undefined;
      log("steady load:", steady);
      summary.steady = steady;
      // Let the answers in flight finish before the timer phase.
      await sleep(5_000);
    }
    summary.stepperAfterThroughput = await runtime.metrics();

    // -------------------------------------------------------------------------------------------------------
    // Phase 2: a million pending timers, memory, then firing lag while they wait.
    const timerDoc = (id: string, dueAtMs: number, contact: string = id): TimerDoc => ({ _id: id, projectId: project, contactId: contact, sessionId: `s-${id}`, purpose: 1, dueAtMs });
    const memory = () => runtime.first.call("memory");
    const samples = [{ stored: 0, inMemory: await runtime.first.call("inMemory"), ...(await memory()), atS: 0 }];
    const insertT0 = Date.now();
    let segmentT0 = insertT0;
    const segments: { from: number; to: number; perS: number }[] = [];
    const DAY = 86_400_000;
    for (let stored = 0; stored < settings.timers; ) {
      const n = Math.min(settings.timerBatch, settings.timers - stored);
      const now = Date.now();
      const batch = Array.from({ length: n }, (_, i) => timerDoc(`b${stored + i}`, now + DAY + Math.floor(Math.random() * 6 * DAY), `bt${(stored + i) % 50_000}`));
      await runtime.first.call("scheduleMany", batch);
      const before = stored;
      stored += n;
      if (Math.floor(stored / (settings.timers / 4)) > Math.floor(before / (settings.timers / 4)) || stored === settings.timers) {
        const t = Date.now();
        segments.push({ from: samples[samples.length - 1]!.stored, to: stored, perS: Math.round(((stored - samples[samples.length - 1]!.stored) / (t - segmentT0)) * 1000) });
        segmentT0 = t;
        samples.push({ stored, inMemory: await runtime.first.call("inMemory"), ...(await memory()), atS: r1((t - insertT0) / 1000) });
        log("timers stored:", samples[samples.length - 1], segments[segments.length - 1]);
      }
    }
    const insertSeconds = (Date.now() - insertT0) / 1000;
    const bucketCount = (await runtimeDb.listCollections({}, { nameOnly: true }).toArray()).filter((c) => c.name.startsWith("timers_")).length;

    // Firing lag while the million wait.
    const lagsBefore = await runtime.first.call("lagCount");
    const delayIds = Array.from({ length: settings.delayContacts }, (_, i) => `bd${stamp.toString(36)}-${i}`);
    for (const id of delayIds) readsText.add(id);
    // A timer event carries no card: the runtime asks contacts for it, so these contacts must exist there. They
    // enter as channels would publish them, and contacts resolves them (the whole path).
    await publisher.publishBatch(
      Topics.inboundMessages,
      delayIds.map((id) => ({
        key: `tg-bench:${id}`,
        projectId: project,
        eventId: `${id}-m0`,
        value: create(InboundMessageSchema, { messageId: `${id}-m0`, projectId: project, channelId: "tg-bench", messenger: Messenger.TELEGRAM, senderId: id, sender: { firstName: "Ivan" }, kind: MessageKind.TEXT, text: "wait" }),
      })),
    );
    // Every real timer belongs to a contact in a flow, and most that fire are stale (a question answered before its
    // reply timeout): these name the throughput phases' contacts with sessions that do not exist. Without those
    // phases they name contacts nobody stepped, each a state to look up (a scan on FerretDB).
    const lagContact = (i: number) => (inFlows.length > 0 ? inFlows[i % inFlows.length] : undefined);
    const scanned = Array.from({ length: settings.scannedTimers }, (_, i) => timerDoc(`sc${i}`, Date.now() + 20_000 + Math.floor(Math.random() * 40_000), lagContact(i)));
    const scannedT0 = Date.now();
    await runtime.first.call("scheduleMany", scanned);
    const scannedInsertMs = Date.now() - scannedT0;
    const heldT0 = Date.now();
    let h = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (h < settings.heldTimers) {
          const i = h++;
          await runtime.first.call("schedule", timerDoc(`hd${i}`, Date.now() + 5_000 + Math.floor(Math.random() * 25_000), lagContact(settings.scannedTimers + i)));
        }
      }),
    );
    const heldInsertMs = Date.now() - heldT0;
    log(`lag timers stored: ${settings.heldTimers} held in ${heldInsertMs} ms, ${settings.scannedTimers} for the scan in ${scannedInsertMs} ms; inMemory ${await runtime.first.call("inMemory")}`);
    const midLag = { inMemory: await runtime.first.call("inMemory"), ...(await memory()) };
    const expectFired = settings.heldTimers + settings.scannedTimers;
    const firedOf = (prefix: string) => [...fired].filter(([id]) => id.startsWith(prefix)).map(([, lag]) => lag);
    const firedCount = () => firedOf("hd").length + firedOf("sc").length;
    const deadline = Date.now() + 150_000;
    const delayDone = () => delayIds.filter((id) => (replies.get(id) ?? []).some((r) => r.text === "done")).length;
    while ((firedCount() < expectFired || delayDone() < delayIds.length) && Date.now() < deadline) await sleep(250);
    const delayLags = delayIds.flatMap((id) => {
      const list = replies.get(id) ?? [];
      const w = list.find((r) => r.text === "waiting");
      const d = list.find((r) => r.text === "done");
      return w && d ? [d.at - w.at - 10_000] : [];
    });
    const afterLag = { inMemory: await runtime.first.call("inMemory"), ...(await memory()) };
    summary.timers = {
      stored: settings.timers,
      batch: settings.timerBatch,
      insertSeconds: r1(insertSeconds),
      insertPerS: Math.round(settings.timers / insertSeconds),
      segments,
      bucketCollections: bucketCount,
      memory: samples,
      memoryDuringLagTest: midLag,
      memoryAfterLagTest: afterLag,
      heldInsertMs,
      scannedInsertMs,
      lagMs: {
        heldTapped: dist(firedOf("hd")),
        scannedTapped: dist(firedOf("sc")),
        wheelHandedToKafka: dist(await runtime.first.call("lagsFrom", lagsBefore)),
        delayEndToEnd: dist(delayLags),
        delayContacts: delayIds.length,
        missing: { held: settings.heldTimers - firedOf("hd").length, scanned: settings.scannedTimers - firedOf("sc").length, delay: delayIds.length - delayLags.length },
      },
    };
    summary.stepperAtEnd = await runtime.metrics();
    summary.runtimeCallsDuringTimers = await runtime.takeTimings();
    log("timers:", JSON.stringify(summary.timers, null, 1));
  } catch (err) {
    failed = err;
    summary.error = String((err as Error).stack ?? err);
    log("FAILED", err);
  } finally {
    await sendsTap.disconnect().catch(() => undefined);
    await timersTap.disconnect().catch(() => undefined);
    await publisher.disconnect().catch(() => undefined);
    flows.close();
    const stopT0 = Date.now();
    await runtimeConnection.close().catch(() => undefined);
    await runtime.stop().catch((err: unknown) => log("stopping the runtime / dropping its database failed", err));
    await stopAndDrop(contacts).catch((err: unknown) => log("stopping contacts / dropping its database failed", err));
    summary.stopAndDropSeconds = r1((Date.now() - stopT0) / 1000);
    const admin = createKafka({ brokers: settings.kafkaBrokers, clientId: `${name}_admin`, logger }).admin();
    await admin.connect();
    await admin.deleteGroups([`${name}_contacts`, `${name}_flows`, `${name}_tap_sends`, `${name}_tap_timers`]).catch((err: unknown) => log("deleting the consumer groups failed", err));
    await admin.disconnect();
  }
  summary.finishedAt = new Date().toISOString();
  const out = settings.json || path.resolve("dist/bench", `flows-${stamp}.json`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(summary, null, 2));
  log(`summary written to ${out}`);
  if (failed) process.exitCode = 1;
}

// The benchmark is an entry point like a service's main.ts: the one place that reads the environment.
// eslint-disable-next-line no-restricted-properties
const processEnv = process.env;
main(processEnv).then(
  () => setTimeout(() => process.exit(), 500).unref(),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
