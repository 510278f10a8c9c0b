import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DeliveryState, DeliveryStatusSchema, MessageKind, MessageOrigin, Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { ContactStatus, MessageAuthor, TimelineKind } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { ContactChangeKind } from "@chatcrm/contracts/chatcrm/contacts/v1/events_pb";
import { Status } from "@chatcrm/grpc";
import { Topics } from "@chatcrm/kafka";
import { stopAndDrop, tapTopic, testLogger, uniqueDatabase, uniqueName, waitFor } from "@chatcrm/testing";
import { as, contactsClient, inbound, startTestContacts, type ContactsClient } from "./harness";

type Service = Awaited<ReturnType<typeof startTestContacts>>;

describe("contacts: inbound messages and delivery statuses through Kafka", () => {
  const project = uniqueName("proj");
  let svc: Service;
  let client: ContactsClient;
  let resolved: Awaited<ReturnType<typeof tapTopic<typeof Topics.resolvedMessages.schema>>>;
  let changes: Awaited<ReturnType<typeof tapTopic<typeof Topics.contactEvents.schema>>>;

  const byId = (id: string) => client.getContact({ contact: { ref: { case: "contactId", value: id } } }, as(project));
  const contactOf = async (senderId: string) => (await client.listContacts({ filter: { search: senderId } }, as(project))).contacts;

  beforeAll(async () => {
    svc = await startTestContacts(uniqueDatabase("inbound"));
    client = contactsClient(svc.grpcPort);
    resolved = await tapTopic(Topics.resolvedMessages, project, testLogger());
    changes = await tapTopic(Topics.contactEvents, project, testLogger());
  });
  afterAll(async () => {
    client?.close();
    await resolved?.close();
    await changes?.close();
    await stopAndDrop(svc);
  });

  it("creates the contact on first touch with profile and UTM, and hands the message to flow-runtime", async () => {
    const msg = inbound(project, { senderId: "555001", sender: { firstName: "Ксения", lastName: "Иванова", username: "ksu" }, startPayload: "utm_source-vk__utm_campaign-spring", text: "/start" });
    await svc.context.publisher.publish(Topics.inboundMessages, { key: `${msg.channelId}:${msg.senderId}`, projectId: project, value: msg });

    const [event] = await resolved.waitFor("the resolved message", (e) => e.value.message?.messageId === msg.messageId);
    expect(event!.value.firstTouch).toBe(true);
    expect(event!.value.contact?.firstName).toBe("Ксения");
    // The card is written before the event is published, yet once (CI, machine loaded by a benchmark) the read
    // right after the event answered NOT_FOUND: FerretDB on SQLite may serve a read from a connection whose
    // snapshot predates the insert. Read until it shows; see the gateway session note.
    const card = await waitFor("the card to be readable", () => byId(event!.value.contact!.contactId).then((r) => r.contact, () => undefined), 10_000);
    expect(card).toMatchObject({ firstName: "Ксения", lastName: "Иванова", username: "ksu", messengerUserId: "555001", unread: true, unreadCount: 1, status: ContactStatus.SUBSCRIBED, clientWrote: true });
    expect(card.firstUtm).toMatchObject({ source: "vk", campaign: "spring" });
    expect(card.lastMessage).toMatchObject({ author: MessageAuthor.CLIENT, excerpt: "/start" });
    expect(card.clientId).toBeGreaterThan(0n);
    const [created] = await changes.waitFor("the created event", (e) => e.value.contactId === card.contactId && e.value.kind === ContactChangeKind.CREATED);
    expect(created!.key).toBe(card.contactId);
  });

  it("counts a redelivered message once and keeps one contact per subscriber", async () => {
    const first = inbound(project, { senderId: "555002", text: "one" });
    await svc.parts.ingest.ingest(first);
    await svc.parts.ingest.ingest(first);
    const second = inbound(project, { senderId: "555002", text: "two", kind: MessageKind.IMAGE, sender: { firstName: "Renamed" } });
    await svc.parts.ingest.ingest(second);
    await svc.parts.ingest.ingest(second);
    const cards = await contactOf("555002");
    expect(cards).toHaveLength(1);
    expect(cards[0]).toMatchObject({ unreadCount: 2, firstName: "Renamed", lastMessage: { excerpt: "two", hasAttachment: true } });
  });

  it("shows the bot's message as the preview and unsubscribes a contact who blocked the bot", async () => {
    const { contact } = (await svc.parts.ingest.ingest(inbound(project, { senderId: "555003" }))) as { contact: { _id: string } };
    const status = (state: DeliveryState, extra: object = {}) =>
      create(DeliveryStatusSchema, { statusId: uniqueName("s"), commandId: "cmd-1", projectId: project, channelId: "bot-1", recipientId: "555003", contactId: contact._id, state, at: timestampFromDate(new Date()), ...extra });
    await svc.context.publisher.publish(Topics.deliveryStatuses, { key: "bot-1:555003", projectId: project, value: status(DeliveryState.SENT, { origin: MessageOrigin.FLOW, excerpt: "Hi from the bot" }) });
    await waitFor("the bot preview", async () => (await byId(contact._id)).contact?.lastMessage?.author === MessageAuthor.BOT);
    await svc.context.publisher.publish(Topics.deliveryStatuses, { key: "bot-1:555003", projectId: project, value: status(DeliveryState.FAILED, { error: "Forbidden: bot was blocked by the user", permanent: true }) });
    const card = await waitFor("the unsubscribe", async () => {
      const c = (await byId(contact._id)).contact!;
      return c.status === ContactStatus.UNSUBSCRIBED ? c : undefined;
    });
    expect(card.lastMessage).toMatchObject({ excerpt: "Hi from the bot", failed: true, error: "Forbidden: bot was blocked by the user" });
    // Writing again makes them reachable again.
    await svc.parts.ingest.ingest(inbound(project, { senderId: "555003" }));
    expect((await byId(contact._id)).contact?.status).toBe(ContactStatus.SUBSCRIBED);
  });

  it("records the flow runtime's funnel moves on the card in order and once, and drops moves for cards it does not have", async () => {
    const { contact } = (await svc.parts.ingest.ingest(inbound(project, { senderId: "555020" }))) as { contact: { _id: string } };
    const t0 = Date.now();
    const move = (moveId: string, blockId: string, atMs: number, contactId = contact._id) => ({
      key: contactId,
      projectId: project,
      eventId: moveId,
      value: { moveId, projectId: project, contactId, flowId: "quiz", blockId, movedAtMs: BigInt(atMs) },
    });
    // An unknown card first in the same batch: it must not hold up the others.
    await svc.context.publisher.publishBatch(Topics.funnelMoves, [move("m0", "ask", t0, "no-such-contact"), move("m1", "ask", t0), move("m2", "thanks", t0 + 1)]);
    const moved = await waitFor("the second move", async () => ((await byId(contact._id)).contact?.funnel?.blockId === "thanks" ? (await byId(contact._id)).contact : undefined));
    expect(moved!.funnelHistory.map((p) => p.blockId)).toEqual(["ask", "thanks"]);
    expect(moved!.funnel?.flowId).toBe("quiz");
    // A redelivered move is not recorded twice; the next one is.
    await svc.context.publisher.publishBatch(Topics.funnelMoves, [move("m1", "ask", t0), move("m3", "bye", t0 + 2)]);
    const after = await waitFor("the third move", async () => ((await byId(contact._id)).contact?.funnel?.blockId === "bye" ? (await byId(contact._id)).contact : undefined));
    expect(after!.funnelHistory.map((p) => p.blockId)).toEqual(["ask", "thanks", "bye"]);
    const timeline = await client.listTimeline({ contact: { ref: { case: "contactId", value: contact._id } } }, as(project));
    expect(timeline.entries.filter((e) => e.kind === TimelineKind.FUNNEL_MOVED).map((e) => [e.oldValue, e.newValue])).toEqual([
      ["quiz/thanks", "quiz/bye"],
      ["quiz/ask", "quiz/thanks"],
      ["", "quiz/ask"],
    ]);
  });

  it("follows the messenger's block and unblock, and leaves unknown subscribers alone", async () => {
    const { contact } = (await svc.parts.ingest.ingest(inbound(project, { senderId: "555010" }))) as { contact: { _id: string } };
    const change = (subscriberId: string, blocked: boolean) =>
      svc.context.publisher.publish(Topics.subscriberStatuses, {
        key: `bot-1:${subscriberId}`,
        projectId: project,
        value: { eventId: uniqueName("b"), projectId: project, channelId: "bot-1", messenger: Messenger.TELEGRAM, subscriberId, blocked, at: timestampFromDate(new Date()) },
      });
    await change("555010", true);
    await change("555999", true);
    await waitFor("unsubscribed", async () => (await byId(contact._id)).contact?.status === ContactStatus.UNSUBSCRIBED);
    await change("555010", false);
    await waitFor("subscribed again", async () => (await byId(contact._id)).contact?.status === ContactStatus.SUBSCRIBED);
    expect(await contactOf("555999")).toHaveLength(0);
  });

  it("makes a contact of a new number an operator wrote to, once it is sent (seed 002)", async () => {
    const sent = (commandId: string, origin: MessageOrigin) =>
      create(DeliveryStatusSchema, { statusId: uniqueName("s"), commandId, projectId: project, channelId: "wa-1", recipientId: "79161234567", state: DeliveryState.SENT, origin, operatorId: "op-7", excerpt: "Hello from the shop", messenger: Messenger.WHATSAPP, at: timestampFromDate(new Date()) });
    await svc.context.publisher.publish(Topics.deliveryStatuses, { key: "wa-1:79161234567", projectId: project, value: sent("op-cmd-1", MessageOrigin.OPERATOR) });
    await svc.context.publisher.publish(Topics.deliveryStatuses, { key: "wa-1:79161234567", projectId: project, value: sent("op-cmd-2", MessageOrigin.OPERATOR) });
    const cards = await waitFor("the new contact", async () => {
      const found = await contactOf("79161234567");
      return found.length && found[0]!.lastMessage?.excerpt === "Hello from the shop" ? found : undefined;
    });
    expect(cards).toHaveLength(1);
    expect(cards[0]).toMatchObject({ messengerUserId: "79161234567", channelId: "wa-1", messenger: Messenger.WHATSAPP, lastMessage: { author: MessageAuthor.OPERATOR } });
    await changes.waitFor("the created event", (e) => e.value.contactId === cards[0]!.contactId && e.value.kind === ContactChangeKind.CREATED);
    // A bot status without a contact creates nothing.
    await svc.context.publisher.publish(Topics.deliveryStatuses, { key: "wa-1:79160000000", projectId: project, value: { ...sent("bot-cmd", MessageOrigin.FLOW), recipientId: "79160000000" } });
    await svc.context.publisher.publish(Topics.deliveryStatuses, { key: "wa-1:79161234567", projectId: project, value: sent("op-cmd-3", MessageOrigin.OPERATOR) });
    await waitFor("the third status", async () => (await contactOf("79161234567"))[0]?.lastMessage !== undefined);
    expect(await contactOf("79160000000")).toHaveLength(0);
  });

  it("does not resurrect a deleted contact from late events, and ignores a blacklisted subscriber", async () => {
    const sentBefore = new Date(Date.now() - 60_000);
    const { contact } = (await svc.parts.ingest.ingest(inbound(project, { senderId: "555004", at: new Date(Date.now() - 120_000) }))) as { contact: { _id: string; clientId: number } };
    await client.deleteContact({ contact: { ref: { case: "contactId", value: contact._id } } }, as(project));
    await expect(byId(contact._id)).rejects.toMatchObject({ code: Status.NOT_FOUND });
    await changes.waitFor("the deleted event", (e) => e.value.contactId === contact._id && e.value.kind === ContactChangeKind.DELETED);

    expect(await svc.parts.ingest.ingest(inbound(project, { senderId: "555004", at: sentBefore }))).toEqual({ ignored: "the message predates the contact's deletion" });
    const late = create(DeliveryStatusSchema, { statusId: uniqueName("s"), commandId: "c", projectId: project, contactId: contact._id, state: DeliveryState.FAILED, permanent: true });
    await svc.context.publisher.publish(Topics.deliveryStatuses, { key: "bot-1:555004", projectId: project, value: late });
    await new Promise((r) => setTimeout(r, 1_000));
    await expect(byId(contact._id)).rejects.toMatchObject({ code: Status.NOT_FOUND });
    expect(await contactOf("555004")).toHaveLength(0);

    // A message written after the deletion is a new subscriber: a new card and a new client id.
    const again = (await svc.parts.ingest.ingest(inbound(project, { senderId: "555004" }))) as { contact: { _id: string; clientId: number }; firstTouch: boolean };
    expect(again.firstTouch).toBe(true);
    expect(again.contact._id).not.toBe(contact._id);
    expect(again.contact.clientId).toBeGreaterThan(contact.clientId);

    await client.deleteContact({ contact: { ref: { case: "contactId", value: again.contact._id } }, blacklist: true }, as(project));
    expect(await svc.parts.ingest.ingest(inbound(project, { senderId: "555004" }))).toEqual({ ignored: "the subscriber is blacklisted" });
  });

  it("reads cards and looks subscribers up by _id only, so the hot path never scans (FerretDB pushes down only _id)", async () => {
    const db = svc.context.mongo.connection.db!;
    for (const collection of ["contacts", "identities", "client_ids"]) {
      const plan = (await db.collection(collection).find({ _id: "any" as never }).explain()) as { filterPushdown?: boolean; queryPlanner?: { winningPlan?: { stage?: string } } };
      // FerretDB reports filterPushdown; MongoDB answers with an IDHACK / EXPRESS plan.
      if (plan.filterPushdown !== undefined) expect(plan.filterPushdown).toBe(true);
      else expect(JSON.stringify(plan.queryPlanner)).toMatch(/IDHACK|EXPRESS/);
    }
  });
});
