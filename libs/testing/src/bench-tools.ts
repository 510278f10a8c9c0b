import { execSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

// Helpers every benchmark uses: nearest-rank quantiles, a seeded PRNG (a run with the same seed makes the same
// data), and CPU accounting from /proc (read-only) to say who used the cores during a phase.

/** Nearest rank: the smallest value with at least q of the (sorted) sample at or below it; NaN when empty. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export const median = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);

/** Deterministic PRNG (mulberry32) with the draws the benchmarks need. */
export function seededRandom(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]) => xs[int(xs.length)]!;
  const sample = <T>(xs: readonly T[], k: number) => {
    const copy = [...xs];
    for (let i = 0; i < k; i++) {
      const j = i + int(copy.length - i);
      [copy[i], copy[j]] = [copy[j]!, copy[i]!];
    }
    return copy.slice(0, k);
  };
  return { next, int, pick, sample };
}

const CLK_TCK = (() => {
  try {
    return Number(execSync("getconf CLK_TCK", { stdio: ["ignore", "pipe", "ignore"] }).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

function procTicks(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14 and 15 of stat)
  } catch {
    return NaN;
  }
}

function machineTicks() {
  try {
    const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = cpu[3]! + cpu[4]!;
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, steal: cpu[7]!, total };
  } catch {
    return { busy: NaN, steal: NaN, total: NaN };
  }
}

/** The pid listening on a local TCP port (Kafka, FerretDB), from `ss`; undefined when it cannot be told. */
export function pidOnPort(port: number): number | undefined {
  try {
    const out = execSync("ss -ltnpH", { stdio: ["ignore", "pipe", "ignore"] }).toString();
    for (const line of out.split("\n")) if (new RegExp(`:${port}\\s`).test(line)) return Number(/pid=(\d+)/.exec(line)?.[1]) || undefined;
  } catch {
    /* no ss */
  }
  return undefined;
}

/** A process by name; several pids (replicas of one service) are counted together. */
export type Pids = Record<string, number | number[] | undefined>;
export type CpuSnapshot = ReturnType<typeof cpuSnapshot>;

export function cpuSnapshot(pids: Pids) {
  const ticks = (pid: number | number[] | undefined) => (Array.isArray(pid) ? pid.reduce((sum, p) => sum + procTicks(p), 0) : procTicks(pid));
  return { at: performance.now(), machine: machineTicks(), procs: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, ticks(pid)])) };
}

/**
 * Between two snapshots: per process CPU seconds and % of one core (and CPU µs per call when `calls` is given),
 * and the machine's busy % over all its cores. Of that busy %, `machineStealPct` is time the hypervisor gave this
 * machine's cores to someone else: on a shared host it is one reason the same code measures slower in one run than
 * in another (not the only one: neighbours slow each instruction without stealing), so reports quote it beside the
 * figures. Seconds are rounded to `digits`.
 */
export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot, options: { digits: number; calls?: number }) {
  const round = (x: number) => +x.toFixed(options.digits);
  const seconds = (b.at - a.at) / 1000;
  const procs: Record<string, { cpuSeconds: number; pctOfOneCore: number; cpuUsPerCall?: number }> = {};
  for (const [k, ticks] of Object.entries(b.procs)) {
    const used = (ticks - (a.procs[k] ?? NaN)) / CLK_TCK;
    if (!Number.isFinite(used)) continue;
    procs[k] = { cpuSeconds: round(used), pctOfOneCore: Math.round((used / seconds) * 100) };
    if (options.calls !== undefined) procs[k].cpuUsPerCall = options.calls ? Math.round((used * 1e6) / options.calls) : NaN;
  }
  const m = { busy: b.machine.busy - a.machine.busy, steal: b.machine.steal - a.machine.steal, total: b.machine.total - a.machine.total };
  const pct = (ticks: number) => Math.round((ticks / Math.max(1, m.total)) * 100);
  return { seconds: round(seconds), machineBusyPct: pct(m.busy), machineStealPct: pct(m.steal), procs };
}
