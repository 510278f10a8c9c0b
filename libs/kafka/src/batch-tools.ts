/**
 * Groups a batch's items by key, each group in the batch's order: the unit a batch handler works on when one key's
 * records must stay in order while different keys may go concurrently.
 */
export function groupInOrder<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}

/**
 * Runs `work` for every item with at most `limit` running at once (a batch's keys against a database or a peer
 * service that should not get hundreds of calls at a time). Rejects with the first failure after all have settled,
 * so a retried batch never overlaps work still running from the failed attempt.
 */
export async function forEachLimited<T>(items: Iterable<T>, limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, queue.length)) }, worker));
  if (failure) throw failure.error;
}

interface Waiting<In, Out> {
  item: In;
  resolve: (out: Out) => void;
  reject: (err: unknown) => void;
}

/**
 * Turns many concurrent single requests into few batched ones: one batch is in flight at a time, and what arrives
 * meanwhile goes out together in the next (at most `maxBatch` items). Each caller still learns its own item's
 * outcome: a batch that throws rejects all its callers, an Error in one item's place rejects that caller only.
 * Items go out in the order they were added, and batches never overlap.
 */
export class Coalescer<In, Out> {
  private waiting: Waiting<In, Out>[] = [];
  private flushing = false;

  constructor(
    private readonly send: (items: In[]) => Promise<(Out | Error)[]>,
    private readonly maxBatch: number,
  ) {}

  add(item: In): Promise<Out> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    // Let the callers of this tick join the first batch too.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.maxBatch);
      try {
        const outs = await this.send(batch.map((w) => w.item));
        batch.forEach((w, i) => {
          const out = outs[i]!;
          if (out instanceof Error) w.reject(out);
          else w.resolve(out);
        });
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    this.flushing = false;
  }
}
