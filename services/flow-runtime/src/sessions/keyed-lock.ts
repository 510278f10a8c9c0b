/**
 * Runs work for one key, or one set of keys, at a time within this process. Events of one contact arrive on
 * several topics whose partitions (batches) are handled concurrently; the stored revision catches the rest (other
 * replicas). A set's work queues behind every earlier holder of any of its keys; since it joins every queue at
 * once, two sets can never wait on each other.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async runAll<T>(keys: readonly string[], work: () => Promise<T>): Promise<T> {
    const unique = [...new Set(keys)];
    const previous = Promise.all(unique.map((k) => (this.tails.get(k) ?? Promise.resolve()).catch(() => undefined)));
    const result = previous.then(work);
    const tail = result.catch(() => undefined);
    for (const k of unique) this.tails.set(k, tail);
    try {
      return await result;
    } finally {
      for (const k of unique) if (this.tails.get(k) === tail) this.tails.delete(k);
    }
  }
}
