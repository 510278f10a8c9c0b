import { Topics } from "@chatcrm/kafka";
import { stopAndDrop, tapTopic, testLogger, uniqueDatabase, uniqueName, waitFor } from "@chatcrm/testing";
import { createFlow, keyword, message, next, startFlowStack, startRuntime, Subscriber, textQuestion, type FlowRuntime, type FlowStack } from "../harness";

/**
 * Two replicas in one consumer group, as the chart deploys them, and one of them leaving while subscribers keep
 * answering (a rolling deploy): the one that stays takes the partitions over and goes on with every conversation.
 */
describe("flow runtime: a replica leaves the group", () => {
  const project = uniqueName("proj");
  const name = uniqueDatabase("flowreplicas");
  let stack: FlowStack;
  let staying: FlowRuntime;
  let leaving: FlowRuntime | undefined;
  let sends: Awaited<ReturnType<typeof tapTopic<typeof Topics.sendCommands.schema>>>;
  // A command redone after the move (its step's effects not yet recorded as done) has the same id: counted once.
  const repliesTo = (s: Subscriber) => new Set(sends.events.filter((e) => e.value.recipientId === s.senderId).map((e) => e.value.commandId)).size;

  beforeAll(async () => {
    stack = await startFlowStack(name);
    staying = stack.runtime;
    leaving = await startRuntime(name, stack.contacts.grpcPort);
    sends = await tapTopic(Topics.sendCommands, project, testLogger("tap"));
    await createFlow(staying, project, {
      name: "Loop",
      entryBlockId: "q",
      triggers: keyword("loop"),
      blocks: [textQuestion("q", "Your answer?"), message("got", "Got it")],
      edges: [next("q", "got"), next("got", "q")],
    });
  }, 120_000);

  afterAll(async () => {
    await sends?.close();
    await Subscriber.close();
    await leaving?.stop();
    await stopAndDrop(staying);
    await stopAndDrop(stack?.contacts);
  }, 120_000);

  test("the replica that stays answers every subscriber after the other leaves mid-conversation", async () => {
    const subscribers = Array.from({ length: 24 }, () => new Subscriber(project));
    await Promise.all(subscribers.map((s) => s.says("loop")));
    await waitFor("every question", () => subscribers.every((s) => repliesTo(s) >= 1), 30_000);

    // Both replicas had partitions: the one leaving hands some conversations over.
    expect(leaving!.parts.stepper.metrics.applied).toBeGreaterThan(0);
    expect(staying.parts.stepper.metrics.applied).toBeGreaterThan(0);

    // Answers in flight while the other replica stops: each answer brings "Got it" and the question again.
    const answered = Promise.all(subscribers.map((s) => s.says("first")));
    await leaving!.stop();
    leaving = undefined;
    await answered;
    await waitFor("the first answers handled", () => subscribers.every((s) => repliesTo(s) >= 3), 60_000);

    await Promise.all(subscribers.map((s) => s.says("second")));
    await waitFor("the second answers handled by the replica that stayed", () => subscribers.every((s) => repliesTo(s) >= 5), 60_000);
    expect(subscribers.map(repliesTo)).toEqual(subscribers.map(() => 5));
  }, 180_000);
});
