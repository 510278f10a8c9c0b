/**
 * The flow runtime in a process of its own for the benchmark, as it runs in production (a process per service), so
 * it does not share a thread with the bench's driver, its taps and the contacts service. flow-bench.ts forks it
 * (RuntimeProcess below) with the service's config as JSON in its arguments and asks it over IPC for its
 * counters, the time spent in its calls, the timer wheel's figures and its memory, and to store timers.
 */
import { fork, type ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import { createLogger } from "@chatcrm/logging";
import { stopAndDrop } from "@chatcrm/testing";
import { startFlowRuntime } from "../src/app";
import type { Config } from "../src/config";
import type { FlowMetrics } from "../src/sessions/contact-stepper";
import type { TimerDoc } from "../src/timers/timer-wheel";

const r1 = (x: number) => +x.toFixed(1);
const RUNTIME_FLAG = "--bench-flow-runtime";

/** Calls and mean ms per call, by what was called. */
type Timing = Record<string, { calls: number; meanMs: number }>;

/** Time spent in the runtime's own calls, by wrapping methods of its instances from here (src is not changed). */
class Timings {
  private calls = new Map<string, { n: number; ms: number }>();
  wrap(target: object, method: string, label: (args: unknown[]) => string = () => method): void {
    const obj = target as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const original = obj[method]!.bind(target);
    obj[method] = async (...args: unknown[]) => {
      const t = performance.now();
      try {
        return await original(...args);
      } finally {
        const key = label(args);
        const c = this.calls.get(key) ?? { n: 0, ms: 0 };
        c.n++;
        c.ms += performance.now() - t;
        this.calls.set(key, c);
      }
    };
  }
  /** Calls and mean ms per call since the last take. */
  take(): Timing {
    const out = Object.fromEntries([...this.calls].map(([k, c]) => [k, { calls: c.n, meanMs: r1(c.ms / c.n) }]));
    this.calls = new Map();
    return out;
  }
}

export interface Memory {
  heapUsedMiB: number;
  rssMiB: number;
  gcForced: boolean;
}

/** What the bench may ask of the runtime process. */
type Operations = {
  metrics(): FlowMetrics;
  takeTimings(): Timing;
  inMemory(): number;
  memory(): Memory;
  scheduleMany(docs: TimerDoc[]): Promise<void>;
  schedule(doc: TimerDoc): Promise<void>;
  lagCount(): number;
  lagsFrom(index: number): number[];
  /** Sweeps of the effect relay that finished reading the store. */
  sweeps(): number;
  /** Stops the service and keeps its database (a replica leaving the group). */
  leave(): Promise<void>;
  stop(): Promise<void>;
};

async function serve(config: Config): Promise<void> {
  const runtime = await startFlowRuntime(config, createLogger({ service: "flow-runtime", level: "error" }));
  const { timers, stepper, store } = runtime.parts;
  const timings = new Timings();
  for (const m of ["loadMany", "saveMany", "compact", "stranded"]) timings.wrap(store, m, () => `store.${m}`);
  // The insert the saves of a moment share (saveMany also counts the wait for the one before it).
  timings.wrap(store, "insert", () => "store.insert (one insert of coalesced saves)");
  let sweeps = 0;
  const stranded = store.stranded.bind(store);
  store.stranded = (...args) => stranded(...args).finally(() => sweeps++);
  timings.wrap(stepper, "applyBatch", () => "stepper.applyBatch (one partition's batch)");
  const executor = (stepper as unknown as { executor: object }).executor;
  timings.wrap(executor, "execute", () => "executor.execute (all effects of a step)");
  timings.wrap(executor, "one", (args) => {
    const e = args[2] as { kind: string; method?: string };
    return `effect ${e.kind}${e.method ? `.${e.method}` : ""}`;
  });
  const ops: Operations = {
    metrics: () => structuredClone(stepper.metrics),
    takeTimings: () => timings.take(),
    inMemory: () => timers.inMemory,
    memory: () => {
      (globalThis as { gc?: () => void }).gc?.();
      const m = process.memoryUsage();
      return { heapUsedMiB: r1(m.heapUsed / 2 ** 20), rssMiB: r1(m.rss / 2 ** 20), gcForced: typeof (globalThis as { gc?: unknown }).gc === "function" };
    },
    scheduleMany: (docs) => timers.scheduleMany(docs),
    schedule: (doc) => timers.schedule(doc),
    lagCount: () => timers.lags.length,
    lagsFrom: (index) => timers.lags.slice(index),
    sweeps: () => sweeps,
    leave: () => runtime.stop(),
    stop: () => stopAndDrop(runtime),
  };
  process.on("message", (request: { id: number; op: keyof Operations; args: unknown[] }) => {
    const op = ops[request.op] as (...args: unknown[]) => unknown;
    Promise.resolve()
      .then(() => op(...request.args))
      .then(
        (result) => process.send!({ id: request.id, result }),
        (err: unknown) => process.send!({ id: request.id, error: String((err as Error).stack ?? err) }),
      )
      .finally(() => {
        if (request.op === "stop" || request.op === "leave") process.disconnect();
      });
  });
  process.send!({ ready: true, grpcPort: runtime.grpcPort });
}

/** The bench's handle on the forked runtime: each method is a call over IPC. */
export class RuntimeProcess {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(
    private readonly child: ChildProcess,
    readonly grpcPort: number,
  ) {
    child.on("message", (m: { id: number; result?: unknown; error?: string }) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.error !== undefined) w.reject(new Error(`the runtime process: ${m.error}`));
      else w.resolve(m.result);
    });
    child.on("exit", (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`the runtime process exited (${code})`));
      this.waiting.clear();
    });
  }

  /** Forks `script` (this file, bundled) and waits until the runtime serves; with `profileDir`, under --cpu-prof. */
  static async start(script: string, config: Config, profileDir = ""): Promise<RuntimeProcess> {
    const profile = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
    const child = fork(script, [RUNTIME_FLAG, JSON.stringify(config)], { execArgv: ["--enable-source-maps", "--expose-gc", ...profile], stdio: "inherit" });
    const grpcPort = await new Promise<number>((resolve, reject) => {
      child.once("message", (m: { ready?: boolean; grpcPort?: number }) => (m.ready ? resolve(m.grpcPort!) : reject(new Error("the runtime process did not start"))));
      child.once("exit", (code) => reject(new Error(`the runtime process exited during start-up (${code})`)));
    });
    return new RuntimeProcess(child, grpcPort);
  }

  get pid(): number {
    return this.child.pid!;
  }

  call<K extends keyof Operations>(op: K, ...args: Parameters<Operations[K]>): Promise<Awaited<ReturnType<Operations[K]>>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, op, args });
    });
  }

  /** Stops the runtime and drops its database, then lets the process end. */
  async stop(): Promise<void> {
    await this.call("stop");
    await this.exited();
  }

  /** Stops the runtime, keeping its database (another replica goes on with it), and lets the process end. */
  async leave(): Promise<void> {
    await this.call("leave");
    await this.exited();
  }

  private exited(): Promise<void> {
    return new Promise<void>((resolve) => (this.child.exitCode !== null ? resolve() : this.child.once("exit", () => resolve())));
  }
}

/**
 * The runtime as replicas in one consumer group, each its own process (the chart deploys two). Counters are asked
 * of every replica and added up; timers are stored through the first, and its memory and lags are what the timer
 * phases report (every replica fires due timers; the bench counts each timer's first firing).
 */
export class RuntimeReplicas {
  private constructor(
    readonly first: RuntimeProcess,
    private readonly others: RuntimeProcess[],
  ) {}

  /** Starts `count` replicas; with `profileDir`, each writes its CPU profile there. */
  static async start(script: string, config: Config, count: number, profileDir = ""): Promise<RuntimeReplicas> {
    const all = await Promise.all(Array.from({ length: count }, () => RuntimeProcess.start(script, config, profileDir)));
    return new RuntimeReplicas(all[0]!, all.slice(1));
  }

  get pids(): number[] {
    return this.all.map((r) => r.pid);
  }

  get count(): number {
    return 1 + this.others.length;
  }

  async metrics(): Promise<FlowMetrics> {
    const all = await this.each((r) => r.call("metrics"));
    return all.reduce((sum, m) => addCounts(sum, m));
  }

  async takeTimings(): Promise<Timing> {
    const merged: Record<string, { calls: number; ms: number }> = {};
    for (const timing of await this.each((r) => r.call("takeTimings"))) {
      for (const [name, t] of Object.entries(timing)) {
        const m = (merged[name] ??= { calls: 0, ms: 0 });
        m.calls += t.calls;
        m.ms += t.calls * t.meanMs;
      }
    }
    return Object.fromEntries(Object.entries(merged).map(([name, m]) => [name, { calls: m.calls, meanMs: r1(m.ms / m.calls) }]));
  }

  async sweeps(): Promise<number> {
    return (await this.each((r) => r.call("sweeps"))).reduce((a, b) => a + b, 0);
  }

  /**
   * All replicas stop at once, and the first drops the database. One at a time, the last would take the others'
   * partitions in a rebalance while stopping (a replica left alone after a rebalance once stopped consuming in a
   * run of this bench: see REPORT.md, run 18).
   */
  async stop(): Promise<void> {
    await Promise.all([this.first.stop(), ...this.others.map((r) => r.leave())]);
  }

  private each<T>(ask: (r: RuntimeProcess) => Promise<T>): Promise<T[]> {
    return Promise.all(this.all.map(ask));
  }

  private get all(): RuntimeProcess[] {
    return [this.first, ...this.others];
  }
}

/** Adds the numbers of two counter objects of the same shape (nested records included). */
function addCounts<T>(a: T, b: T): T {
  if (typeof a === "number") return (a + (b as number)) as T;
  const out = { ...a } as Record<string, unknown>;
  for (const [k, v] of Object.entries(b as Record<string, unknown>)) out[k] = k in out ? addCounts(out[k], v) : v;
  return out as T;
}

// Run as the forked process: the config comes from the bench, which read the environment.
if (process.argv[2] === RUNTIME_FLAG && process.send) {
  serve(JSON.parse(process.argv[3]!) as Config).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
