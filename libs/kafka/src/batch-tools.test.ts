import { Coalescer, forEachLimited, groupInOrder } from "./batch-tools";

describe("batch tools", () => {
  it("groups by key keeping each group's order and the keys' first-seen order", () => {
    const groups = groupInOrder(["a1", "b1", "a2", "c1", "b2"], (s) => s[0]!);
    expect([...groups.entries()]).toEqual([
      ["a", ["a1", "a2"]],
      ["b", ["b1", "b2"]],
      ["c", ["c1"]],
    ]);
  });

  it("runs at most `limit` at once, every item once, and rejects with the first failure only after all settled", async () => {
    let running = 0;
    let peak = 0;
    const done: number[] = [];
    const work = async (n: number) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      if (n === 3) throw new Error("three failed");
      done.push(n);
    };
    await expect(forEachLimited([1, 2, 3, 4, 5, 6, 7], 3, work)).rejects.toThrow("three failed");
    expect(peak).toBe(3);
    expect(running).toBe(0);
    expect(done.sort()).toEqual([1, 2, 4, 5, 6, 7]);
  });

  /** A sender that records its batches and how many were out at once; each batch takes 10 ms. */
  const recordingSender = () => {
    const batches: number[][] = [];
    let out = 0;
    let peak = 0;
    const send = async (items: number[]) => {
      batches.push(items);
      peak = Math.max(peak, ++out);
      await new Promise((r) => setTimeout(r, 10));
      out--;
      return items.map((n) => n * 10);
    };
    return { batches, send, peak: () => peak };
  };
  const addInWaves = async (coalescer: Coalescer<number, number>) => {
    const results: Promise<number>[] = [];
    for (let wave = 0; wave < 4; wave++) {
      for (let i = 0; i < 5; i++) results.push(coalescer.add(wave * 5 + i));
      await new Promise((r) => setTimeout(r, 3));
    }
    return Promise.all(results);
  };

  it("coalesces concurrent items into batches one at a time, in order, each caller getting its own result", async () => {
    const sender = recordingSender();
    const results = await addInWaves(new Coalescer(sender.send, 8));
    expect(results).toEqual(Array.from({ length: 20 }, (_, n) => n * 10));
    expect(sender.peak()).toBe(1);
    expect(sender.batches.flat()).toEqual(Array.from({ length: 20 }, (_, n) => n));
    expect(sender.batches.length).toBeLessThan(20);
    expect(Math.max(...sender.batches.map((b) => b.length))).toBeLessThanOrEqual(8);
  });

  it("rejects the callers of a failed batch only, and keeps going", async () => {
    const coalescer = new Coalescer(async (items: number[]) => {
      if (items.includes(3)) throw new Error("batch with 3 failed");
      return items;
    }, 2);
    const outcomes = await Promise.allSettled([1, 2, 3, 4, 5].map((n) => coalescer.add(n)));
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled", "rejected", "rejected", "fulfilled"]);
  });

  it("rejects only the caller whose item came back as an error", async () => {
    const coalescer = new Coalescer(async (items: number[]) => items.map((n) => (n === 3 ? new Error("3 is unreadable") : n * 10)), 8);
    const outcomes = await Promise.allSettled([1, 2, 3, 4].map((n) => coalescer.add(n)));
    expect(outcomes).toEqual([
      { status: "fulfilled", value: 10 },
      { status: "fulfilled", value: 20 },
      { status: "rejected", reason: new Error("3 is unreadable") },
      { status: "fulfilled", value: 40 },
    ]);
  });
});
