import { Topics } from "@chatcrm/kafka";
import { stopAndDrop, tapTopic, testLogger, uniqueDatabase, uniqueName, waitFor } from "@chatcrm/testing";
import { sendEffect } from "../../src/engine/effects";
import { emptyState, hasApplied, nextState } from "../../src/sessions/state-store";
import { as, contactsClient, createFlow, keyword, message, next, startFlowStack, startRuntime, Subscriber, textQuestion, type FlowRuntime, type FlowStack } from "../harness";

/**
 * How contact states are kept: revisions inserted, never updated (a second writer of a revision is refused), held
 * in memory between events, effects recorded as done later. What must hold: nothing stepped on stale state, no
 * effect lost across a crash, none redone once recorded.
 */
describe("flow runtime: contact state revisions, the in-memory copy and the effect outbox", () => {
  const project = uniqueName("proj");
  const name = uniqueDatabase("flowstate");
  let stack: FlowStack;
  let runtime: FlowRuntime;
  let sends: Awaited<ReturnType<typeof tapTopic<typeof Topics.sendCommands.schema>>>;
  /** A send effect as revisions stored it before effects kept their Kafka key. */
  const legacySend = (commandId: string, contactId: string, text: string) => {
    const { key: _key, ...send } = sendEffect(commandId, { projectId: project, channelId: "ch", recipientId: "r", contactId, text });
    return send;
  };
  /**
   * Stores a revision a minute old straight into the collection, in the format before `body` (as an older version
   * left it), holding `pending`; returns it as the relay's walk finds it.
   */
  const storeOldRevision = async (contactId: string, rev: number, pending: ReturnType<typeof legacySend>[]) => {
    const revision = { projectId: project, contactId, rev };
    await runtime.context.mongo.connection.db!.collection("contact_states").insertOne({
      _id: `${project}:${contactId}#${rev}` as never,
      key: `${project}:${contactId}`,
      ...revision,
      sessions: [],
      recent: [],
      pending,
      hasPending: pending.length > 0,
      updatedAt: new Date(Date.now() - 60_000 + rev),
    });
    return revision;
  };
  const textsTo = (s: Subscriber) => sends.events.filter((e) => e.value.recipientId === s.senderId).map((e) => e.value.text);

  beforeAll(async () => {
    stack = await startFlowStack(name, { EFFECT_CLEAR_AFTER_MS: 300, STATE_REVISION_RETENTION_MS: 500, STATE_COMPACTION_INTERVAL_MS: 300 });
    runtime = stack.runtime;
    sends = await tapTopic(Topics.sendCommands, project, testLogger("tap"));
    await createFlow(runtime, project, {
      name: "Quiz",
      entryBlockId: "q",
      triggers: keyword("quiz"),
      blocks: [textQuestion("q", "Your answer?"), message("done", "Got it")],
      edges: [next("q", "done")],
    });
  }, 120_000);

  afterAll(async () => {
    await sends?.close();
    await Subscriber.close();
    await stopAndDrop(runtime);
    await stopAndDrop(stack?.contacts);
  }, 120_000);

  const contactIdOf = async (s: Subscriber) => {
    const contacts = contactsClient(stack.contacts.grpcPort);
    try {
      return await waitFor("the contact", async () => (await contacts.listContacts({ filter: { search: s.senderId }, pageSize: 5 }, as(project))).contacts[0]?.contactId);
    } finally {
      contacts.close();
    }
  };

  /** A contact whose state this replica holds while another replica (say) ended its session in the store. */
  const heldAndEndedElsewhere = async () => {
    const s = new Subscriber(project);
    await s.says("quiz");
    await waitFor("the question", () => textsTo(s).includes("Your answer?"));
    const contactId = await contactIdOf(s);
    const { store, stepper } = runtime.parts;
    await waitFor("the state cached", () => stepper.cachedStates > 0);
    const stored = await store.load(project, contactId);
    expect(stored.sessions).toHaveLength(1);
    expect(await store.saveMany([nextState(stored, { sessions: [], pending: [] }, "elsewhere")])).toEqual(new Set());
    const { conflicts, loaded } = stepper.metrics;
    return { s, contactId, store, stepper, conflicts, loaded, noFlow: stepper.metrics.ignored["no-flow"] };
  };

  test("a state another writer stored meanwhile is reloaded before the step, never overwritten from the stale copy", async () => {
    const { s, contactId, store, stepper, conflicts, noFlow } = await heldAndEndedElsewhere();
    await s.says("my answer");
    await waitFor("the stale copy refused", () => stepper.metrics.conflicts > conflicts && stepper.metrics.ignored["no-flow"] > noFlow);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(textsTo(s)).toEqual(["Your answer?"]);
    expect((await store.load(project, contactId)).sessions).toEqual([]);
  });

  test("after the consumer rejoins its group the copies in memory are dropped before the next batch", async () => {
    const { s, stepper, conflicts, loaded, noFlow } = await heldAndEndedElsewhere();
    // What the consumer's GROUP_JOIN does: the partitions may have moved while another replica stepped the contact.
    stepper.partitionsMoved();
    await s.says("my answer");
    await waitFor("the answer handled on the stored state", () => stepper.metrics.ignored["no-flow"] > noFlow);
    expect(stepper.metrics.conflicts).toBe(conflicts);
    expect(stepper.metrics.loaded).toBeGreaterThan(loaded);
    expect(textsTo(s)).toEqual(["Your answer?"]);
  });

  test("done effects are recorded as done, and superseded revisions are deleted after the retention", async () => {
    const s = new Subscriber(project);
    await s.says("quiz");
    await waitFor("the question", () => textsTo(s).includes("Your answer?"));
    const contactId = await contactIdOf(s);
    const { store } = runtime.parts;
    const settled = await waitFor("the revision without pending effects", async () => {
      const state = await store.load(project, contactId);
      return state.pending.length === 0 && state.rev >= 2 ? state : undefined;
    });
    expect(settled.sessions).toHaveLength(1);
    const revisions = runtime.context.mongo.connection.db!.collection("contact_states");
    await waitFor("only the newest revision left", async () => (await revisions.countDocuments({ key: settled.key })) === 1);
    expect(await revisions.findOne({ key: settled.key })).toMatchObject({ rev: settled.rev, hasPending: false });
  });

  test("effects stored but never run (a crash between the insert and the effects) are run by the relay, and only once", async () => {
    const s = new Subscriber(project);
    await s.says("hello");
    const contactId = await contactIdOf(s);
    const { store } = runtime.parts;
    const commandId = uniqueName("stranded");
    const send = sendEffect(commandId, { projectId: project, channelId: s.channelId, recipientId: s.senderId, contactId, text: "Left behind by a crash" });
    expect(await store.saveMany([nextState(emptyState(project, contactId), { sessions: [], pending: [send] }, "crashed-step")])).toEqual(new Set());
    const [sent] = await sends.waitFor("the stranded send", (e) => e.value.commandId === commandId);
    expect(sent).toMatchObject({ id: commandId, key: `${s.channelId}:${s.senderId}` });
    expect(sent!.value.text).toBe("Left behind by a crash");
    await waitFor("the effects recorded as done", async () => (await store.load(project, contactId)).pending.length === 0);
    // A restart after that redoes nothing.
    await runtime.stop();
    runtime = await startRuntime(name, stack.contacts.grpcPort, { EFFECT_CLEAR_AFTER_MS: 300 });
    await new Promise((r) => setTimeout(r, 3_000));
    expect(sends.events.filter((e) => e.value.commandId === commandId)).toHaveLength(1);
  });

  test("without a start or a rebalance the relay waits for its sweep interval; a rejoin makes it sweep after the relay age", async () => {
    await runtime.stop();
    runtime = await startRuntime(name, stack.contacts.grpcPort, { EFFECT_RELAY_INTERVAL_MS: 600_000 });
    const s = new Subscriber(project);
    await s.says("hello again");
    const contactId = await contactIdOf(s);
    // Past the sweep after the start (relay age 1 s): the next one is ten minutes away.
    await new Promise((r) => setTimeout(r, 2_000));
    const commandId = uniqueName("stranded");
    const send = sendEffect(commandId, { projectId: project, channelId: s.channelId, recipientId: s.senderId, contactId, text: "Left behind" });
    expect(await runtime.parts.store.saveMany([nextState(emptyState(project, contactId), { sessions: [], pending: [send] }, "crashed-step")])).toEqual(new Set());
    await new Promise((r) => setTimeout(r, 3_000));
    expect(sends.events.filter((e) => e.value.commandId === commandId)).toHaveLength(0);
    // What the consumer's GROUP_JOIN does: partitions may have come from a replica that crashed.
    runtime.parts.relay.rejoined();
    await waitFor("the stranded send after the rejoin", () => sends.events.some((e) => e.value.commandId === commandId), 10_000);
  });

  test("a revision stored before the compact format (sessions, event ids and effects as fields) is still read", async () => {
    const contactId = uniqueName("legacy");
    const key = `${project}:${contactId}`;
    const send = legacySend(uniqueName("cmd"), contactId, "Hello");
    const startedAt = new Date("2026-11-20T10:00:00Z");
    const session = { id: "s1", flowId: "f1", version: 2, blockId: "q", wait: "answer", deadlineMs: 0, timerId: "", requestId: "", invalidAnswers: 1, startedAt };
    await runtime.context.mongo.connection.db!.collection("contact_states").insertOne({
      _id: `${key}#3` as never,
      key,
      projectId: project,
      contactId,
      rev: 3,
      sessions: [session],
      recent: ["message-41", "message-42"],
      pending: [send],
      hasPending: true,
      updatedAt: startedAt,
    });
    const state = await runtime.parts.store.load(project, contactId);
    expect(state).toMatchObject({ key, rev: 3, sessions: [session] });
    expect(state.pending).toEqual([{ ...send, payload: new Uint8Array(send.payload!) }]);
    expect(hasApplied(state, "message-42")).toBe(true);
    expect(hasApplied(state, "message-43")).toBe(false);
    // Its next revision is written in the compact format and reads back the same.
    expect(await runtime.parts.store.saveMany([nextState(state, { sessions: state.sessions, pending: [] }, "message-43")])).toEqual(new Set());
    const next = await runtime.parts.store.load(project, contactId);
    expect(next).toMatchObject({ rev: 4, sessions: [session], pending: [] });
    expect(["message-41", "message-42", "message-43"].map((id) => hasApplied(next, id))).toEqual([true, true, true]);
    const stored = await runtime.context.mongo.connection.db!.collection("contact_states").findOne({ _id: `${key}#4` as never });
    expect(Object.keys(stored!).sort()).toEqual(["_id", "body", "contactId", "hasPending", "key", "projectId", "rev", "updatedAt"]);
  });

  test("a stored state that does not read fails the loads of its own contact only, naming the contact and revision", async () => {
    const broken = uniqueName("broken");
    const fine = uniqueName("fine");
    const { store } = runtime.parts;
    await runtime.context.mongo.connection.db!.collection("contact_states").insertOne({
      _id: `${project}:${broken}#1` as never,
      key: `${project}:${broken}`,
      projectId: project,
      contactId: broken,
      rev: 1,
      hasPending: false,
      updatedAt: new Date(),
      body: Buffer.from("{not json"),
    });
    expect(await store.saveMany([nextState(emptyState(project, fine), { sessions: [], pending: [] }, "fine-1")])).toEqual(new Set());
    // Asked for in the same tick, the two share one query.
    const [bad, good] = await Promise.allSettled([store.load(project, broken), store.load(project, fine)]);
    expect(bad.status).toBe("rejected");
    expect((bad as PromiseRejectedResult).reason.message).toContain(`the stored state of contact ${project}:${broken} (revision 1) cannot be read`);
    expect(good).toMatchObject({ status: "fulfilled", value: { key: `${project}:${fine}`, rev: 1 } });
  });

  test("a send stored before effects kept their Kafka key is published with the key its command names", async () => {
    const contactId = uniqueName("legacy");
    const commandId = uniqueName("cmd");
    const revision = await storeOldRevision(contactId, 1, [legacySend(commandId, contactId, "Sent from an old revision")]);
    await runtime.parts.stepper.finishPending([revision]);
    const [sent] = await sends.waitFor("the old revision's send", (e) => e.value.commandId === commandId);
    expect(sent).toMatchObject({ id: commandId, key: "ch:r" });
    expect(sent!.value.text).toBe("Sent from an old revision");
  });

  test("the relay looks at a contact it holds no copy of by its newest revision: only effects still waiting there run, and only that contact is loaded", async () => {
    // Both contacts' first revisions hold a send their second revision superseded (the step that stored it ran it);
    // one contact's second revision holds a send of its own, the other's none.
    const [waiting, settled] = [uniqueName("waiting"), uniqueName("settled")];
    const [superseded, alsoSuperseded, stillWaiting] = [uniqueName("cmd"), uniqueName("cmd"), uniqueName("cmd")];
    await storeOldRevision(waiting, 1, [legacySend(superseded, waiting, "superseded")]);
    await storeOldRevision(waiting, 2, [legacySend(stillWaiting, waiting, "still waiting")]);
    await storeOldRevision(settled, 1, [legacySend(alsoSuperseded, settled, "superseded too")]);
    await storeOldRevision(settled, 2, []);
    const loads = jest.spyOn(runtime.parts.store, "loadMany");
    try {
      await runtime.parts.stepper.finishPending([1, 2].flatMap((rev) => [waiting, settled].map((contactId) => ({ projectId: project, contactId, rev }))), 30_000);
      expect(new Set(loads.mock.calls.flatMap(([contacts]) => contacts.map((c) => c.contactId)))).toEqual(new Set([waiting]));
    } finally {
      loads.mockRestore();
    }
    await sends.waitFor("the newest revision's send", (e) => e.value.commandId === stillWaiting);
    expect(sends.events.filter((e) => [superseded, alsoSuperseded].includes(e.value.commandId))).toEqual([]);
  });

  test("a sweep cut short by the service stopping runs nothing; the next sweep finishes the effects", async () => {
    const contactId = uniqueName("cutshort");
    const commandId = uniqueName("cmd");
    const revision = await storeOldRevision(contactId, 1, [legacySend(commandId, contactId, "Sent by the next sweep")]);
    const stopped = new AbortController();
    stopped.abort();
    await runtime.parts.stepper.finishPending([revision], 0, stopped.signal);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(sends.events.filter((e) => e.value.commandId === commandId)).toEqual([]);
    await runtime.parts.stepper.finishPending([revision]);
    await sends.waitFor("the send the next sweep ran", (e) => e.value.commandId === commandId);
  });
});
