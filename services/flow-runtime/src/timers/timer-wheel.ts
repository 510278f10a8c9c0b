import type { Logger } from "@chatcrm/logging";
import type { mongo } from "mongoose";
import { MinHeap } from "./min-heap";

/** A durable timer: when it is due, the wheel hands it to `fire`. */
export interface TimerDoc {
  _id: string;
  projectId: string;
  contactId: string;
  sessionId: string;
  purpose: number;
  dueAtMs: number;
}

export interface TimerWheelOptions {
  /** Timers due within this window are held in memory; the rest wait in the database. */
  lookaheadMs: number;
  scanIntervalMs: number;
  /** Width of one bucket collection. */
  bucketMs?: number;
}

const PREFIX = "timers_";
const HOUR = 3_600_000;

/**
 * Durable timers in time buckets: one collection per hour of due time ("timers_<hour>"). Storing is one insert;
 * a timer is never updated or deleted one by one (a session that stops waiting simply ignores its timer when it
 * fires), and a bucket is dropped whole once it has passed. So the cost of a million pending timers is a million
 * small inserts, and firing reads only the buckets that are coming due, whatever the database (FerretDB scans a
 * collection for any filter; MongoDB would too without this, or with an index per timer field).
 *
 * Memory holds only the timers due within the look-ahead window. Every replica fires what it finds due; firing
 * twice is harmless because a session acts on a timer only while it still waits on that timer id.
 */
export class TimerWheel {
  private readonly heap = new MinHeap<{ at: number; timer: TimerDoc }>();
  /** Ids in the heap or fired, per bucket, so a rescan does not add them again; dropped with the bucket. */
  private readonly seen = new Map<number, Set<string>>();
  private readonly bucketMs: number;
  private wake: NodeJS.Timeout | undefined;
  private scanTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private firing = false;
  private stopped = true;
  /** Firing lag of recent timers (ms), for the benchmark and metrics. */
  readonly lags: number[] = [];

  constructor(
    private readonly db: mongo.Db,
    private readonly fire: (timer: TimerDoc) => Promise<void>,
    private readonly logger: Logger,
    private readonly options: TimerWheelOptions,
  ) {
    this.bucketMs = options.bucketMs ?? HOUR;
  }

  /** Timers waiting in memory (due within the look-ahead window). */
  get inMemory() {
    return this.heap.size;
  }

  private bucketOf = (dueAtMs: number) => Math.floor(dueAtMs / this.bucketMs);

  /** Stores a timer (a repeated id is kept once) and holds it in memory if it is due soon. */
  async schedule(timer: TimerDoc): Promise<void> {
    try {
      await this.db.collection<TimerDoc>(`${PREFIX}${this.bucketOf(timer.dueAtMs)}`).insertOne(timer);
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
    }
    if (!this.stopped && timer.dueAtMs < Date.now() + this.options.lookaheadMs) this.hold(timer);
  }

  /** Stores many timers at once (benchmarks, imports); none is held in memory until a scan finds it due. */
  async scheduleMany(timers: TimerDoc[]): Promise<void> {
    const byBucket = new Map<number, TimerDoc[]>();
    for (const t of timers) {
      const bucket = this.bucketOf(t.dueAtMs);
      const docs = byBucket.get(bucket);
      if (docs) docs.push(t);
      else byBucket.set(bucket, [t]);
    }
    for (const [bucket, docs] of byBucket) {
      try {
        await this.db.collection<TimerDoc>(`${PREFIX}${bucket}`).insertMany(docs, { ordered: false });
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
      }
    }
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.scan();
    this.scanTimer = setInterval(() => void this.scan(), this.options.scanIntervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.scanTimer);
    clearTimeout(this.wake);
    await this.scanning;
  }

  private hold(timer: TimerDoc): void {
    const bucket = this.bucketOf(timer.dueAtMs);
    let ids = this.seen.get(bucket);
    if (!ids) this.seen.set(bucket, (ids = new Set()));
    if (ids.has(timer._id)) return;
    ids.add(timer._id);
    this.heap.push({ at: timer.dueAtMs, timer });
    this.arm();
  }

  private arm(): void {
    if (this.stopped || this.firing) return;
    clearTimeout(this.wake);
    const next = this.heap.peek();
    if (next) this.wake = setTimeout(() => void this.fireDue(), Math.max(0, next.at - Date.now()));
  }

  private async fireDue(): Promise<void> {
    this.firing = true;
    try {
      const due: TimerDoc[] = [];
      while (this.heap.peek() && this.heap.peek()!.at <= Date.now() && due.length < 5_000) due.push(this.heap.pop()!.timer);
      const results = await Promise.allSettled(due.map((t) => this.fire(t)));
      const now = Date.now();
      results.forEach((r, i) => {
        const timer = due[i]!;
        if (r.status === "fulfilled") {
          this.lags.push(now - timer.dueAtMs);
          if (this.lags.length > 100_000) this.lags.splice(0, 50_000);
        } else {
          // Kafka is away: the timer goes back and is tried again shortly.
          this.logger.warn({ err: r.reason, timerId: timer._id }, "a due timer could not be handed over; retrying");
          this.heap.push({ at: now + 1_000, timer });
        }
      });
    } finally {
      this.firing = false;
      this.arm();
    }
  }

  /** Loads the timers of buckets coming due, and drops the buckets that have passed and were fired. */
  private scan(): Promise<void> {
    this.scanning ??= this.scanOnce()
      .catch((err: unknown) => this.logger.warn({ err }, "timer scan failed; retrying at the next interval"))
      .finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    const now = Date.now();
    const horizon = now + this.options.lookaheadMs;
    const buckets = (await this.db.listCollections({}, { nameOnly: true }).toArray())
      .map((c) => c.name)
      .filter((n) => n.startsWith(PREFIX))
      .map((n) => Number(n.slice(PREFIX.length)))
      .filter((b) => Number.isInteger(b) && b * this.bucketMs < horizon)
      .sort((a, b) => a - b);
    for (const bucket of buckets) {
      if (this.stopped) return;
      const collection = this.db.collection<TimerDoc>(`${PREFIX}${bucket}`);
      const ids = this.seen.get(bucket);
      for await (const timer of collection.find({ dueAtMs: { $lt: horizon } })) if (!ids?.has(timer._id)) this.hold(timer);
      // A bucket whose whole hour lies further back than the look-ahead gets no new timers (they are stored by due
      // time, never in the past); once everything in it was handed over, it goes.
      const passed = (bucket + 1) * this.bucketMs + this.options.lookaheadMs < now;
      if (passed && !this.heapHolds(bucket)) {
        await collection.drop().catch(() => undefined);
        this.seen.delete(bucket);
      }
    }
  }

  private heapHolds(bucket: number): boolean {
    const ids = this.seen.get(bucket);
    if (!ids) return false;
    // The heap is small (due soon only), so a linear look is fine here.
    return this.heap.some((e) => this.bucketOf(e.timer.dueAtMs) === bucket);
  }
}
