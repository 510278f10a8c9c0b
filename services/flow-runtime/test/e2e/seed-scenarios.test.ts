import { create } from "@bufbuild/protobuf";
import { AnswerField, MassActionKind } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { ContactResolvedMessageSchema } from "@chatcrm/contracts/chatcrm/contacts/v1/events_pb";
import { AnswerKind, CheckOperator, CheckSubject, DelayUnit, EdgePort, HttpMethod, SessionWait, TimeoutBehavior, type Flow } from "@chatcrm/contracts/chatcrm/flows/v1/flow_pb";
import { RpcError, Status } from "@chatcrm/grpc";
import { Topics } from "@chatcrm/kafka";
import { stopAndDrop, tapTopic, testLogger, uniqueDatabase, uniqueName, waitFor } from "@chatcrm/testing";
import { as, contactsClient, definition, flowsClient, keyword, message, next, startFlowStack, startRuntime, Subscriber, type FlowRuntime, type FlowStack } from "../harness";

describe("flow runtime: the seed scenarios against real Kafka, FerretDB and the contacts service", () => {
  const project = uniqueName("proj");
  const name = uniqueDatabase("flows");
  let stack: FlowStack;
  let runtime: FlowRuntime;
  let flows: ReturnType<typeof flowsClient>;
  let contacts: ReturnType<typeof contactsClient>;
  let sends: Awaited<ReturnType<typeof tapTopic<typeof Topics.sendCommands.schema>>>;
  let requests: Awaited<ReturnType<typeof tapTopic<typeof Topics.integrationRequests.schema>>>;

  const create_ = async (init: Parameters<typeof definition>[0]): Promise<Flow> => (await flows.createFlow({ definition: definition(init) }, as(project))).flow!;
  const textsTo = (s: Subscriber) => sends.events.filter((e) => e.value.recipientId === s.senderId).map((e) => e.value.text);
  const waitText = (s: Subscriber, text: string, count = 1, timeoutMs = 20_000) =>
    waitFor(`"${text}" sent to ${s.senderId} ${count}×`, () => textsTo(s).filter((t) => t === text).length >= count, timeoutMs);
  const contactOf = (s: Subscriber) => waitFor("the contact", async () => (await contacts.listContacts({ filter: { search: s.senderId }, pageSize: 5 }, as(project))).contacts[0]);
  const sessionsOf = async (contactId: string) => (await flows.listSessions({ contactId }, as(project))).sessions;

  beforeAll(async () => {
    stack = await startFlowStack(name);
    runtime = stack.runtime;
    flows = flowsClient(runtime.grpcPort);
    contacts = contactsClient(stack.contacts.grpcPort);
    sends = await tapTopic(Topics.sendCommands, project, testLogger("tap"));
    requests = await tapTopic(Topics.integrationRequests, project, testLogger("tap"));
  }, 120_000);

  afterAll(async () => {
    await sends?.close();
    await requests?.close();
    await Subscriber.close();
    flows?.close();
    contacts?.close();
    await stopAndDrop(runtime);
    await stopAndDrop(stack?.contacts);
  }, 120_000);

  test("collects a phone: two invalid answers get the error message, the valid one is normalised to E.164 and saved to the card and a variable", async () => {
    await create_({
      name: "Phone",
      entryBlockId: "ask",
      triggers: keyword("call me"),
      blocks: [
        { blockId: "ask", kind: { case: "question", value: { prompt: { text: "Your phone, please" }, expect: AnswerKind.PHONE, retries: 3, errorText: "That is not a phone number", saveToVariable: "callback phone", saveToField: AnswerField.PHONE } } },
        message("thanks", "Thanks, {{first_name}}! We will call {{callback phone}}."),
      ],
      edges: [next("ask", "thanks")],
    });
    const s = new Subscriber(project);
    await s.says("call me");
    await waitText(s, "Your phone, please");
    await s.says("tomorrow");
    await waitText(s, "That is not a phone number");
    await s.says("12345");
    await waitText(s, "That is not a phone number", 2);
    await s.says("8 (916) 123-45-67");
    await waitText(s, "Thanks, Ivan! We will call +79161234567.");
    const card = await waitFor("the phone on the card", async () => {
      const c = (await contacts.getContact({ contact: { ref: { case: "contactId", value: (await contactOf(s)).contactId } } }, as(project))).contact!;
      return c.phone === "+79161234567" && c.variables["callback phone"] === "+79161234567" ? c : undefined;
    });
    // The funnel position reaches the card through flows.funnel-moves.v1, after the step.
    const moved = await waitFor("the funnel position on the card", async () => {
      const c = (await contacts.getContact({ contact: { ref: { case: "contactId", value: card.contactId } } }, as(project))).contact!;
      return c.funnel?.blockId === "thanks" ? c : undefined;
    });
    expect(moved.funnelHistory.map((p) => p.blockId)).toEqual(["ask", "thanks"]);
    expect(textsTo(s)).toEqual(["Your phone, please", "That is not a phone number", "That is not a phone number", "Thanks, Ivan! We will call +79161234567."]);
  });

  test("a reply after the timeout does not resume the question: the flow stops with the configured message", async () => {
    await create_({
      name: "Timeout",
      entryBlockId: "ask",
      triggers: keyword("quiz"),
      blocks: [
        { blockId: "ask", kind: { case: "question", value: { prompt: { text: "Quick: your email?" }, expect: AnswerKind.EMAIL, retries: 1, timeoutSeconds: 2n, onTimeout: TimeoutBehavior.STOP_WITH_MESSAGE, timeoutText: "Time is up" } } },
        message("got", "Got {{client.email|nothing}}"),
      ],
      edges: [next("ask", "got")],
    });
    const s = new Subscriber(project);
    await s.says("quiz");
    await waitText(s, "Quick: your email?");
    await waitText(s, "Time is up", 1, 15_000);
    await s.says("late@example.com");
    const contact = await contactOf(s);
    await waitFor("the late answer handled", () => runtime.parts.stepper.metrics.ignored["no-flow"] > 0);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(textsTo(s)).toEqual(["Quick: your email?", "Time is up"]);
    expect(await sessionsOf(contact.contactId)).toEqual([]);
  });

  test("unlimited retries keep asking until the answer is valid", async () => {
    await create_({
      name: "Email forever",
      entryBlockId: "ask",
      triggers: keyword("subscribe"),
      blocks: [
        { blockId: "ask", kind: { case: "question", value: { prompt: { text: "Email?" }, expect: AnswerKind.EMAIL, retryUnlimited: true, errorText: "Not an email", saveToField: AnswerField.EMAIL } } },
        message("done", "Subscribed {{email}}"),
      ],
      edges: [next("ask", "done")],
    });
    const s = new Subscriber(project);
    await s.says("subscribe");
    await waitText(s, "Email?");
    for (let i = 1; i <= 7; i++) {
      await s.says(`nope ${i}`);
      await waitText(s, "Not an email", i);
    }
    await s.says("Ivan@Example.com");
    await waitText(s, "Subscribed ivan@example.com");
  });

  test("an action block and a message block at the same step: the action runs first (seed 003)", async () => {
    await create_({
      name: "Parallel",
      entryBlockId: "hello",
      triggers: keyword("vip"),
      blocks: [
        message("hello", "Hello"),
        // Listed before the action on purpose: the order of edges must not matter.
        message("greet", "Status: {{status|guest}}, tagged: {{tagged|no}}"),
        { blockId: "act", kind: { case: "action", value: { action: { case: "setVariable", value: { name: "status", value: "VIP" } } } } },
        { blockId: "tag", kind: { case: "action", value: { action: { case: "tags", value: { add: ["vip"] } } } } },
        { blockId: "check", kind: { case: "condition", value: { checks: [{ subject: CheckSubject.TAG, name: "vip", operator: CheckOperator.PRESENT }] } } },
        message("yes", "You have the vip tag"),
      ],
      edges: [next("hello", "greet"), next("hello", "act"), next("act", "tag"), next("tag", "check"), next("check", "yes", EdgePort.YES)],
    });
    const s = new Subscriber(project);
    await s.says("vip");
    await waitText(s, "You have the vip tag");
    expect(textsTo(s)).toEqual(["Hello", "Status: VIP, tagged: no", "You have the vip tag"]);
    const contact = await contactOf(s);
    const card = await waitFor("the card changed by the actions", async () => {
      const c = (await contacts.getContact({ contact: { ref: { case: "contactId", value: contact.contactId } } }, as(project))).contact!;
      return c.variables.status === "VIP" && c.tags.includes("vip") ? c : undefined;
    });
    expect(card.tags).toContain("vip");
  });

  test("start and stop between flows: start another flow from a block without its trigger, stop another flow once", async () => {
    const target = await create_({
      name: "Target",
      entryBlockId: "t1",
      blocks: [message("t1", "Target entry"), message("t2", "Target waits"), { blockId: "t3", kind: { case: "delay", value: { amount: 3n, unit: DelayUnit.SECONDS } } }, message("t4", "Target resumed")],
      edges: [next("t1", "t2"), next("t2", "t3"), next("t3", "t4")],
    });
    await create_({
      name: "Mover",
      entryBlockId: "m1",
      triggers: keyword("move"),
      blocks: [message("m1", "Moving"), { blockId: "m2", kind: { case: "action", value: { action: { case: "startFlow", value: { flowId: target.flowId, blockId: "t2" } } } } }, message("m3", "Mover done")],
      edges: [next("m1", "m2"), next("m2", "m3")],
    });
    await create_({
      name: "Stopper",
      entryBlockId: "s1",
      triggers: keyword("stop target"),
      blocks: [{ blockId: "s1", kind: { case: "action", value: { action: { case: "stopFlow", value: { flowId: target.flowId } } } } }, message("s2", "Target stopped")],
      edges: [next("s1", "s2")],
    });
    const s = new Subscriber(project);
    await s.says("move");
    await waitText(s, "Mover done");
    await waitText(s, "Target waits");
    expect(textsTo(s)).not.toContain("Target entry");
    const contact = await contactOf(s);
    expect((await sessionsOf(contact.contactId)).map((x) => [x.flowId, x.blockId, x.wait])).toEqual([[target.flowId, "t3", SessionWait.DELAY]]);
    await s.says("stop target");
    await waitText(s, "Target stopped");
    expect(await sessionsOf(contact.contactId)).toEqual([]);
    // The delay it waited on still fires, and finds nobody waiting on it: the stopped flow sends nothing more.
    const stale = runtime.parts.stepper.metrics.ignored["stale-timer"];
    await waitFor("the stopped flow's timer", () => runtime.parts.stepper.metrics.ignored["stale-timer"] > stale, 15_000);
    expect(textsTo(s)).toEqual(["Moving", "Target waits", "Mover done", "Target stopped"]);
  });

  test("the external request action publishes its request with templates filled in, and follows success and failure", async () => {
    await create_({
      name: "Lead",
      entryBlockId: "push",
      triggers: keyword("lead"),
      blocks: [
        {
          blockId: "push",
          kind: {
            case: "action",
            value: {
              resultTimeoutSeconds: 3n,
              action: {
                case: "httpRequest",
                value: {
                  method: HttpMethod.POST,
                  url: "https://crm.example.com/leads/{{first_name}} {{last_name}}",
                  headers: [{ name: "X-Source", value: "{{utm|direct}}" }],
                  query: [{ name: "who", value: "{{first_name}}" }],
                  body: '{"name":"{{first_name}}","phone":"{{client.phone|none}}"}',
                  responseMapping: [{ path: "data.id", variable: "lead_id" }],
                },
              },
            },
          },
        },
        message("ok", "Lead {{lead_id}} created"),
        message("fail", "Could not create the lead"),
      ],
      edges: [next("push", "ok", EdgePort.SUCCESS), next("push", "fail", EdgePort.FAILURE)],
    });
    const publisher = await Subscriber.publisher();
    const answer = async (s: Subscriber, ok: boolean) => {
      const contact = await contactOf(s);
      const [req] = await requests.waitFor("the request", (e) => e.value.contactId === contact.contactId);
      const r = req!.value;
      await publisher.publish(Topics.integrationResults, {
        key: r.contactId,
        projectId: project,
        value: { requestId: r.requestId, projectId: project, contactId: r.contactId, sessionId: r.sessionId, ok, httpStatus: ok ? 200 : 502, error: ok ? "" : "Bad Gateway", variables: ok ? { lead_id: "L-42" } : {} },
      });
      return r;
    };

    const lucky = new Subscriber(project);
    await lucky.says("lead");
    const req = await answer(lucky, true);
    expect(req.call.case).toBe("http");
    if (req.call.case !== "http") return;
    expect(req.call.value.method).toBe(HttpMethod.POST);
    expect(req.call.value.url).toBe("https://crm.example.com/leads/Ivan%20Petrov?who=Ivan");
    expect(req.call.value.headers).toEqual([expect.objectContaining({ name: "X-Source", value: "direct" })]);
    expect(req.call.value.body).toBe('{"name":"Ivan","phone":"none"}');
    expect(req.call.value.responseMapping[0]).toEqual(expect.objectContaining({ path: "data.id", variable: "lead_id" }));
    await waitText(lucky, "Lead L-42 created");

    const unlucky = new Subscriber(project);
    await unlucky.says("lead");
    await answer(unlucky, false);
    await waitText(unlucky, "Could not create the lead");

    // No result at all: the wait times out into the failure branch, and a result after that changes nothing.
    const silent = new Subscriber(project);
    await silent.says("lead");
    const contact = await contactOf(silent);
    await requests.waitFor("the silent request", (e) => e.value.contactId === contact.contactId);
    await waitText(silent, "Could not create the lead", 1, 15_000);
    await answer(silent, true);
    await waitFor("the late result ignored", () => runtime.parts.stepper.metrics.ignored["stale-result"] > 0);
    expect(textsTo(silent)).toEqual(["Could not create the lead"]);
  });

  test("a flow that loops without waiting is stopped at the step limit and reported", async () => {
    await create_({
      name: "Loop",
      entryBlockId: "a",
      triggers: keyword("loop"),
      blocks: [message("a", "A"), message("b", "B")],
      edges: [next("a", "b"), next("b", "a")],
    });
    const s = new Subscriber(project);
    const loopsBefore = runtime.parts.stepper.metrics.loopsStopped;
    await s.says("loop");
    await waitFor("the loop stopped", () => runtime.parts.stepper.metrics.loopsStopped > loopsBefore);
    await waitFor("its messages", () => textsTo(s).length >= 100);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(textsTo(s)).toHaveLength(100);
    expect(await sessionsOf((await contactOf(s)).contactId)).toEqual([]);
  });

  test("a redelivered message changes nothing; a message for a contact with no flow is ignored and counted", async () => {
    await create_({ name: "Echo", entryBlockId: "e", triggers: keyword("echo"), blocks: [message("e", "Echo {{first_name|friend}}")], edges: [] });
    const s = new Subscriber(project);
    await s.says("hi there");
    const contact = await contactOf(s);
    const ignored = runtime.parts.stepper.metrics.ignored["no-flow"];
    await s.says("still nobody listening");
    await waitFor("the message counted as ignored", () => runtime.parts.stepper.metrics.ignored["no-flow"] > ignored);

    const publisher = await Subscriber.publisher();
    const resolved = create(ContactResolvedMessageSchema, {
      message: { messageId: uniqueName("dup"), projectId: project, channelId: s.channelId, senderId: s.senderId, text: "echo" },
      contact: { contactId: contact.contactId, channelId: s.channelId, messengerUserId: s.senderId, firstName: "Dup" },
    });
    for (let i = 0; i < 3; i++) await publisher.publish(Topics.resolvedMessages, { key: contact.contactId, projectId: project, value: resolved });
    await waitText(s, "Echo Dup");
    await waitFor("the copies seen", () => runtime.parts.stepper.metrics.duplicates >= 2);
    expect(textsTo(s).filter((t) => t === "Echo Dup")).toHaveLength(1);
  });

  test("a session finishes on the version it started on; an update makes a new version", async () => {
    const v1 = await create_({
      name: "Versioned",
      entryBlockId: "ask",
      triggers: keyword("version"),
      blocks: [{ blockId: "ask", kind: { case: "question", value: { prompt: { text: "Name?" }, expect: AnswerKind.TEXT, retries: 1, saveToVariable: "name" } } }, message("bye", "v1 bye {{name}}")],
      edges: [next("ask", "bye")],
    });
    const s = new Subscriber(project);
    await s.says("version");
    await waitText(s, "Name?");
    const updated = await flows.updateFlow(
      {
        flowId: v1.flowId,
        expectedVersion: 1,
        definition: definition({ name: "Versioned", entryBlockId: "ask", triggers: keyword("version"), blocks: [{ blockId: "ask", kind: { case: "question", value: { prompt: { text: "Name?" }, expect: AnswerKind.TEXT, retries: 1, saveToVariable: "name" } } }, message("bye", "v2 bye {{name}}")], edges: [next("ask", "bye")] }),
      },
      as(project),
    );
    expect(updated.flow!.version).toBe(2);
    await expect(flows.updateFlow({ flowId: v1.flowId, expectedVersion: 1, definition: definition({ name: "x", entryBlockId: "a", blocks: [message("a", "a")] }) }, as(project))).rejects.toMatchObject({ code: Status.FAILED_PRECONDITION });
    await s.says("Ann");
    await waitText(s, "v1 bye Ann");
    const t = new Subscriber(project);
    await t.says("version");
    await waitText(t, "Name?");
    await t.says("Bob");
    await waitText(t, "v2 bye Bob");
    expect((await flows.getFlow({ flowId: v1.flowId, version: 1 }, as(project))).flow!.blocks[1]!.kind.value).toMatchObject({ text: "v1 bye {{name}}" });
  });

  test("validation lists every problem and stores nothing; other projects see no flows", async () => {
    const bad = definition({
      name: "Broken",
      entryBlockId: "start",
      blocks: [
        { blockId: "start", kind: { case: "question", value: { prompt: { text: "Hi {{client.shoe_size}}" }, expect: AnswerKind.TEXT, retries: 1, timeoutSeconds: 60n, onTimeout: TimeoutBehavior.BRANCH } } },
        message("island", "Nobody comes here"),
        { blockId: "wait", kind: { case: "delay", value: { amount: 0n, unit: DelayUnit.MINUTES } } },
      ],
      edges: [next("start", "ghost"), next("start", "wait")],
    });
    const { problems } = await flows.validateFlow({ definition: bad }, as(project));
    const fields = problems.map((p) => p.field);
    expect(fields).toEqual(
      expect.arrayContaining(["blocks[0].question.prompt.text", "edges[0].to_block_id", "blocks[0].question.on_timeout", "blocks[1]", "blocks[2].delay.amount"]),
    );
    expect(problems.find((p) => p.field === "blocks[0].question.prompt.text")!.message).toContain('unknown subscriber field "shoe_size"');
    expect(problems.find((p) => p.field === "blocks[1]")!.message).toContain("island");
    const err = await flows.createFlow({ definition: bad }, as(project)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).code).toBe(Status.INVALID_ARGUMENT);
    expect((err as RpcError).message).toContain("ghost");
    expect((await flows.listFlows({}, as(project))).flows.map((f) => f.name)).not.toContain("Broken");
    expect((await flows.listFlows({}, as(uniqueName("other")))).flows).toEqual([]);
    const some = (await flows.listFlows({}, as(project))).flows[0]!;
    await expect(flows.getFlow({ flowId: some.flowId }, as(uniqueName("other")))).rejects.toMatchObject({ code: Status.NOT_FOUND });
    await expect(flows.getFlow({ flowId: some.flowId }, {})).rejects.toMatchObject({ code: Status.UNAUTHENTICATED });
  });

  test("manual start for one contact (once per idempotency key), a mass action start, and a stop command", async () => {
    const flow = await create_({
      name: "Manual",
      entryBlockId: "hi",
      blocks: [message("hi", "Started by hand, {{first_name}}"), { blockId: "wait", kind: { case: "delay", value: { amount: 1n, unit: DelayUnit.DAYS } } }],
      edges: [next("hi", "wait")],
    });
    const s = new Subscriber(project);
    await s.says("hello");
    const contact = await contactOf(s);
    const first = await flows.startFlow({ contactId: contact.contactId, flowId: flow.flowId, idempotencyKey: "k1" }, as(project));
    const again = await flows.startFlow({ contactId: contact.contactId, flowId: flow.flowId, idempotencyKey: "k1" }, as(project));
    expect(again.commandId).toBe(first.commandId);
    await waitText(s, "Started by hand, Ivan");
    await waitFor("the copy seen", () => runtime.parts.stepper.metrics.duplicates > 0);
    expect(textsTo(s)).toEqual(["Started by hand, Ivan"]);
    expect((await sessionsOf(contact.contactId)).map((x) => x.wait)).toEqual([SessionWait.DELAY]);
    await flows.stopFlow({ contactId: contact.contactId, flowId: flow.flowId }, as(project));
    await waitFor("the session stopped", async () => (await sessionsOf(contact.contactId)).length === 0);

    await expect(flows.startFlow({ contactId: contact.contactId, flowId: flow.flowId, blockId: "nowhere" }, as(project))).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: "block_id" });
    await expect(flows.startFlow({ contactId: contact.contactId, flowId: "" }, as(project))).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: "flow_id" });
    await expect(flows.startFlow({ contactId: contact.contactId, flowId: flow.flowId }, as(uniqueName("other")))).rejects.toMatchObject({ code: Status.NOT_FOUND });

    // The contacts service's mass action "start bot" (seed 001) reaches the runtime as a start command.
    const { job } = await contacts.startMassAction(
      { action: { kind: MassActionKind.START_FLOW, flowId: flow.flowId }, selection: { selection: { case: "contactIds", value: { ids: [contact.contactId] } } } },
      as(project),
    );
    expect(job?.jobId).toBeTruthy();
    await waitText(s, "Started by hand, Ivan", 2);
  });

  test("a delay and a pending question survive a restart of the service, and each fires once", async () => {
    await create_({
      name: "Delayed",
      entryBlockId: "d1",
      triggers: keyword("later"),
      blocks: [message("d1", "See you in 3 s"), { blockId: "d2", kind: { case: "delay", value: { amount: 3n, unit: DelayUnit.SECONDS } } }, message("d3", "3 s later")],
      edges: [next("d1", "d2"), next("d2", "d3")],
    });
    await create_({
      name: "Waiting",
      entryBlockId: "q",
      triggers: keyword("ask me"),
      blocks: [
        { blockId: "q", kind: { case: "question", value: { prompt: { text: "Answer within 4 s" }, expect: AnswerKind.TEXT, retries: 1, timeoutSeconds: 4n, onTimeout: TimeoutBehavior.BRANCH } } },
        message("late", "You did not answer"),
      ],
      edges: [next("q", "late", EdgePort.TIMEOUT)],
    });
    const d = new Subscriber(project);
    const q = new Subscriber(project);
    await d.says("later");
    await q.says("ask me");
    await waitText(d, "See you in 3 s");
    await waitText(q, "Answer within 4 s");
    await runtime.stop();
    await new Promise((r) => setTimeout(r, 5_000));
    runtime = await startRuntime(name, stack.contacts.grpcPort);
    await waitText(d, "3 s later", 1, 30_000);
    await waitText(q, "You did not answer", 1, 30_000);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(textsTo(d)).toEqual(["See you in 3 s", "3 s later"]);
    expect(textsTo(q)).toEqual(["Answer within 4 s", "You did not answer"]);
  });
});
