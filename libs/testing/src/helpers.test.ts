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
