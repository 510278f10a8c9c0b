import { randomUUID } from "node:crypto";
import type { mongo } from "mongoose";
import type { Logger } from "@chatcrm/logging";

/** The fields a background job record needs for leasing; the rest is the job's own. */
export interface LeasedJob {
  _id: string;
  state: string;
  leaseUntil: Date;
  owner?: string;
}

export interface LeasedJobOptions<J extends LeasedJob> {
  /** The jobs collection; jobs with state "running" whose lease ran out are picked up. */
  collection: mongo.Collection;
  name: string;
  leaseMs: number;
  pollIntervalMs: number;
  logger: Logger;
  /**
   * Runs (or resumes, from the job's own progress record) one job. `alive` extends the lease and says whether to go
   * on; call it at least once per lease period (a long pause is slept in pieces with `alive` between them).
   */
  run: (job: J, alive: () => Promise<boolean>) => Promise<void>;
  /** True for an error that retrying cannot fix: the job is marked failed with it. Others pause and retry. */
  isFinal: (err: unknown) => boolean;
  onFailed?: (job: J, error: string) => Promise<void>;
}

/** How soon a job interrupted by an infrastructure error is tried again. */
const RETRY_AFTER_MS = 5_000;

/**
 * Runs background jobs recorded in MongoDB so that an accepted job completes whatever happens to the process: a
 * replica claims a job by a lease (compare-and-set on leaseUntil), extends it while working, and hands it back when
 * it stops; a replica that dies leaves a lease that runs out, and another takes the job over and resumes it from
 * its progress record. The job's work must be idempotent from its last record on.
 */
export class LeasedJobRunner<J extends LeasedJob> {
  private timer: NodeJS.Timeout | undefined;
  private readonly running = new Map<string, Promise<void>>();
  private stopped = true;
  private readonly owner = randomUUID();

  constructor(private readonly options: LeasedJobOptions<J>) {}

  start(): void {
    this.stopped = false;
    const tick = () => {
      void this.pickUp()
        .catch((err: unknown) => this.options.logger.error({ err }, `${this.options.name}: pick-up failed`))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.options.pollIntervalMs);
        });
    };
    tick();
  }

  /** Stops taking jobs, lets the steps in flight finish, and hands the held jobs back at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const held = [...this.running.keys()];
    await Promise.allSettled(this.running.values());
    if (held.length) await this.options.collection.updateMany({ _id: { $in: held as never[] }, owner: this.owner }, { $set: { leaseUntil: new Date(0) } });
  }

  /** Looks for work now (after a job was created) instead of at the next poll. */
  nudge(): void {
    if (!this.stopped) void this.pickUp().catch((err: unknown) => this.options.logger.error({ err }, `${this.options.name}: pick-up failed`));
  }

  private async pickUp(): Promise<void> {
    const { collection } = this.options;
    const due = (await collection.find({ state: "running", leaseUntil: { $lt: new Date() } }).limit(10).toArray()) as unknown as J[];
    for (const job of due) {
      if (this.running.has(job._id) || this.stopped) continue;
      const claimed = await collection.updateOne({ _id: job._id as never, leaseUntil: job.leaseUntil }, { $set: { leaseUntil: this.leaseEnd(), owner: this.owner } });
      if (claimed.modifiedCount !== 1) continue;
      // Extends the lease only while it is still ours: a runner that lost it (stalled past the lease, taken over)
      // stops instead of working beside the new owner.
      const alive = async () => {
        if (this.stopped) return false;
        const held = await collection.updateOne({ _id: job._id as never, owner: this.owner }, { $set: { leaseUntil: this.leaseEnd() } });
        return held.matchedCount === 1;
      };
      const run = this.options
        .run(job, alive)
        .catch(async (err: unknown) => {
          if (this.stopped) return;
          const error = (err instanceof Error ? err.message : String(err)).slice(0, 500);
          // Recording the outcome can fail too (the database is what failed): the lease then runs out and the job
          // is picked up again; nothing here may reject, or the process would die of an unhandled rejection.
          try {
            if (!this.options.isFinal(err)) {
              this.options.logger.warn({ err, jobId: job._id }, `${this.options.name} interrupted; retrying shortly`);
              await collection.updateOne({ _id: job._id as never, owner: this.owner }, { $set: { error, leaseUntil: new Date(Date.now() + RETRY_AFTER_MS) } });
              return;
            }
            this.options.logger.error({ err, jobId: job._id }, `${this.options.name} failed`);
            await collection.updateOne({ _id: job._id as never, owner: this.owner }, { $set: { state: "failed", error, finishedAt: new Date() } });
            await this.options.onFailed?.(job, error);
          } catch (recordErr) {
            this.options.logger.error({ err: recordErr, jobId: job._id }, `${this.options.name}: could not record the interruption; the lease will run out and the job resume`);
          }
        })
        .finally(() => this.running.delete(job._id));
      this.running.set(job._id, run);
    }
  }

  private leaseEnd(): Date {
    return new Date(Date.now() + this.options.leaseMs);
  }
}
