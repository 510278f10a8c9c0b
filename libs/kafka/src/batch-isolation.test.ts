import { Abandoned, handleOneByOne, HandlerHealth, type OneByOne } from "./batch-isolation";

/** A handler over named events that fails for some of them; records every call and what the consumer was told. */
function consumer(fails: (event: string, calls: number) => boolean, overrides: Partial<OneByOne<string>> = {}) {
  const calls: string[] = [];
  const handled: string[] = [];
  const dead: { event: string; error: string; attempts: number }[] = [];
  const done: string[] = [];
  const how: OneByOne<string> = {
    call: async (event) => {
      calls.push(event);
      if (fails(event, calls.length)) throw new Error(`${event} cannot be handled`);
      handled.push(event);
    },
    attempts: 3,
    health: new HandlerHealth(),
    pause: async () => undefined,
    deadLetter: async (event, error, attempts) => void dead.push({ event, error, attempts }),
    retrying: () => undefined,
    markDone: (event) => void done.push(event),
    isStopping: () => false,
    ...overrides,
  };
  return { how, calls, handled, dead, done };
}

describe("handling a failing batch one event at a time", () => {
  it("dead-letters the event that keeps failing once a later one succeeds, and handles every other event once", async () => {
    const c = consumer((event) => event === "poison");
    await handleOneByOne(["a", "b", "poison", "c", "d"], c.how);
    expect(c.dead).toEqual([{ event: "poison", error: "poison cannot be handled", attempts: 3 }]);
    expect(c.handled).toEqual(["a", "b", "c", "d"]);
    // "c" proved the infrastructure answers while "poison" was stuck; it is not handled a second time.
    expect(c.calls.filter((e) => e === "c")).toHaveLength(1);
    expect(c.done).toEqual(["a", "b", "poison", "c", "d"]);
  });

  it("dead-letters nothing while every event fails (the infrastructure is away), and handles them all in order once it is back", async () => {
    // Down for the first 40 calls, whatever the event.
    const c = consumer((_, n) => n <= 40);
    await handleOneByOne(["a", "b", "c"], c.how);
    expect(c.dead).toEqual([]);
    expect(c.handled).toEqual(["a", "b", "c"]);
    expect(c.done).toEqual(["a", "b", "c"]);
  });

  it("takes a success elsewhere in the consumer as the proof, without trying later events first", async () => {
    const health = new HandlerHealth();
    const c = consumer((event) => event === "poison", { health, pause: async () => health.succeeded(Date.now()) });
    await handleOneByOne(["poison", "a"], c.how);
    expect(c.dead.map((d) => d.event)).toEqual(["poison"]);
    expect(c.calls).toEqual(["poison", "poison", "poison", "a"]);
  });

  it("finds the proof past several bad events in a row, one more each round", async () => {
    const bad = new Set(["p1", "p2", "p3"]);
    const c = consumer((event) => bad.has(event));
    await handleOneByOne(["p1", "p2", "p3", "ok"], c.how);
    expect(c.dead.map((d) => d.event)).toEqual(["p1", "p2", "p3"]);
    expect(c.handled).toEqual(["ok"]);
    expect(c.done).toEqual(["p1", "p2", "p3", "ok"]);
  });

  it("gives up when the consumer stops, marking nothing past what was handled", async () => {
    let stopping = false;
    const c = consumer((event) => event === "b", { isStopping: () => stopping, pause: async () => void (stopping = true) });
    c.how.call = async (event) => {
      c.calls.push(event);
      if (event === "b") {
        stopping = true;
        throw new Error("b cannot be handled");
      }
    };
    await expect(handleOneByOne(["a", "b", "c"], c.how)).rejects.toBeInstanceOf(Abandoned);
    expect(c.done).toEqual(["a"]);
    expect(c.dead).toEqual([]);
  });
});
