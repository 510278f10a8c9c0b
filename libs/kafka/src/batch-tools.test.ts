import { forEachLimited, groupInOrder } from "./batch-tools";

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
});
