import { uniqueDatabase, uniqueName, waitFor } from "./index";

describe("test harness helpers", () => {
  it("makes names no other run uses, valid as database names", () => {
    const names = new Set(Array.from({ length: 50 }, () => uniqueDatabase("contacts")));
    expect(names.size).toBe(50);
    for (const name of names) expect(name).toMatch(/^t_contacts_[a-z0-9_]+$/);
    expect(uniqueName("group")).toMatch(/^group-[a-z0-9]+-[0-9a-f]{6}$/);
  });

  it("waits until the check holds and returns its value", async () => {
    let calls = 0;
    await expect(waitFor("the third call", () => (++calls >= 3 ? "done" : undefined), 2_000, 5)).resolves.toBe("done");
    expect(calls).toBe(3);
  });

  it("fails with what it waited for and the last error", async () => {
    await expect(
      waitFor("the broker", () => {
        throw new Error("connection refused");
      }, 100, 10),
    ).rejects.toThrow("timed out after 100 ms waiting for the broker: connection refused");
  });
});

describe("bench tools", () => {
  it("quantile is nearest-rank, median sorts a copy, the PRNG repeats for a seed", async () => {
    const { quantile, median, seededRandom } = await import("./bench-tools");
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.99)).toBe(4);
    expect(quantile([], 0.5)).toBeNaN();
    const xs = [5, 1, 3];
    expect(median(xs)).toBe(3);
    expect(xs).toEqual([5, 1, 3]);
    const a = seededRandom(7);
    const b = seededRandom(7);
    expect(Array.from({ length: 5 }, () => a.int(1000))).toEqual(Array.from({ length: 5 }, () => b.int(1000)));
    expect(new Set(seededRandom(1).sample([1, 2, 3, 4, 5], 3)).size).toBe(3);
  });

  it("accounts this process's CPU between two snapshots", async () => {
    const { cpuSnapshot, cpuBetween } = await import("./bench-tools");
    const before = cpuSnapshot({ me: process.pid, nobody: undefined });
    const until = Date.now() + 50;
    while (Date.now() < until) Math.sqrt(Math.random());
    const used = cpuBetween(before, cpuSnapshot({ me: process.pid, nobody: undefined }), { digits: 2, calls: 10 });
    expect(Object.keys(used.procs)).toEqual(["me"]);
    expect(used.procs.me!.cpuSeconds).toBeGreaterThanOrEqual(0);
    expect(used.procs.me!.cpuUsPerCall).toBeDefined();
    expect(used.seconds).toBeGreaterThan(0);
  });
});
