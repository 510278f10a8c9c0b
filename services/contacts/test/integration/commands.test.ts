import { Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { AnswerField, ContactStatus, MessageAuthor, TimelineKind } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { ContactChangeKind } from "@chatcrm/contracts/chatcrm/contacts/v1/events_pb";
import { Status } from "@chatcrm/grpc";
import { Topics } from "@chatcrm/kafka";
import { stopAndDrop, tapTopic, testLogger, uniqueDatabase, uniqueName } from "@chatcrm/testing";
import { as, contactsClient, inbound, startTestContacts, type ContactsClient } from "./harness";

type Service = Awaited<ReturnType<typeof startTestContacts>>;

describe("contacts: commands, timeline, saved filters and import", () => {
  const project = uniqueName("proj");
  let svc: Service;
  let client: ContactsClient;
  let changes: Awaited<ReturnType<typeof tapTopic<typeof Topics.contactEvents.schema>>>;
  let contactId: string;
  const ref = () => ({ ref: { case: "contactId" as const, value: contactId } });
  const card = async () => (await client.getContact({ contact: ref() }, as(project))).contact!;

  beforeAll(async () => {
    svc = await startTestContacts(uniqueDatabase("commands"));
    client = contactsClient(svc.grpcPort);
    changes = await tapTopic(Topics.contactEvents, project, testLogger());
    const result = (await svc.parts.ingest.ingest(inbound(project, { senderId: "42" }))) as { contact: { _id: string } };
    contactId = result.contact._id;
  });
  afterAll(async () => {
    client?.close();
    await changes?.close();
    await stopAndDrop(svc);
  });

  it("sets variables with any names, emits an event naming the changed field, and records the timeline", async () => {
    const res = await client.setVariables({ contact: ref(), set: { "Размер": "XS", "order.total": "1500", "with space": "y" } }, as(project, "op1"));
    expect(res.contact?.variables).toEqual({ "Размер": "XS", "order.total": "1500", "with space": "y" });
    await client.setVariables({ contact: ref(), set: { "Размер": "M" }, unset: ["with space"] }, as(project));
    expect((await card()).variables).toEqual({ "Размер": "M", "order.total": "1500" });
    const [event] = await changes.waitFor("a variables event", (e) => e.value.contactId === contactId && e.value.changedFields.includes("variables"));
    expect(event!.value.kind).toBe(ContactChangeKind.UPDATED);
    const timeline = await client.listTimeline({ contact: ref() }, as(project));
    const sets = timeline.entries.filter((e) => e.kind === TimelineKind.VARIABLE_SET && e.subject === "Размер");
    expect(sets.map((e) => [e.oldValue, e.newValue])).toEqual([["XS", "M"], ["", "XS"]]);
    expect(timeline.entries.find((e) => e.kind === TimelineKind.VARIABLE_UNSET)?.subject).toBe("with space");
    expect(sets[1]!.actor).toBe("operator:op1");
  });

  it("normalises phone answers to E.164, overwrites on every pass, and refuses bad answers without changing anything", async () => {
    await client.setAnswer({ contact: ref(), field: AnswerField.PHONE, value: "8 (912) 345-67-89", defaultRegion: "RU" }, as(project));
    expect((await card()).phone).toBe("+79123456789");
    await client.setAnswer({ contact: ref(), field: AnswerField.PHONE, value: "+44 20 7946 0958" }, as(project));
    expect((await card()).phone).toBe("+442079460958");
    await expect(client.setAnswer({ contact: ref(), field: AnswerField.PHONE, value: "12345" }, as(project))).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: "value" });
    await expect(client.setAnswer({ contact: ref(), field: AnswerField.EMAIL, value: "not-an-email" }, as(project))).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: "value" });
    await client.setAnswer({ contact: ref(), field: AnswerField.EMAIL, value: "Ksu@Example.COM" }, as(project));
    await client.setAnswer({ contact: ref(), field: AnswerField.FREE_TEXT, value: "first answer" }, as(project));
    await client.setAnswer({ contact: ref(), field: AnswerField.FREE_TEXT, value: "second answer" }, as(project));
    expect(await card()).toMatchObject({ phone: "+442079460958", email: "ksu@example.com", freeText: "second answer" });
  });

  it("keeps tags and lists as sets, funnel history in order, and refuses oversize or contradictory input", async () => {
    await client.modifyTags({ contact: ref(), add: ["vip", "lead"] }, as(project));
    await client.modifyTags({ contact: ref(), add: ["vip"], remove: ["lead"] }, as(project));
    await client.modifyLists({ contact: ref(), add: ["Оплатили"] }, as(project));
    await client.setFunnelPosition({ contact: ref(), flowId: "welcome", blockId: "greeting" }, as(project));
    await client.setFunnelPosition({ contact: ref(), flowId: "welcome", blockId: "ask-phone" }, as(project));
    await client.setDealStage({ contact: ref(), dealStage: "negotiation" }, as(project));
    await client.assignOperator({ contact: ref(), operatorId: "op7" }, as(project));
    await client.setPinned({ contact: ref(), pinned: true }, as(project));
    await client.setStatus({ contact: ref(), status: ContactStatus.PAUSED }, as(project));
    const c = await card();
    expect(c).toMatchObject({ tags: ["vip"], lists: ["Оплатили"], dealStage: "negotiation", operatorId: "op7", pinned: true, status: ContactStatus.PAUSED });
    expect(c.funnel?.blockId).toBe("ask-phone");
    expect(c.funnelHistory.map((f) => f.blockId)).toEqual(["greeting", "ask-phone"]);

    const before = await card();
    await expect(client.modifyTags({ contact: ref(), add: ["x".repeat(201)] }, as(project))).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: "add[0]" });
    await expect(client.modifyTags({ contact: ref(), add: ["a"], remove: ["a"] }, as(project))).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: "remove" });
    await expect(client.setStatus({ contact: ref(), status: ContactStatus.BLACKLISTED }, as(project))).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: "status" });
    await expect(client.setVariables({ contact: ref(), set: { ["n".repeat(101)]: "v" } }, as(project))).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
    await expect(client.setVariables({ contact: ref(), set: { "a\u001fb": "v" } }, as(project))).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, message: expect.stringContaining("control characters") });
    expect(await card()).toEqual(before);
  });

  it("marks read and unread; an imported contact who never wrote cannot be marked unread (seed 003)", async () => {
    await client.setRead({ contact: ref(), read: true }, as(project));
    expect(await card()).toMatchObject({ unread: false, unreadCount: 0 });
    await client.setRead({ contact: ref(), read: false }, as(project));
    expect(await card()).toMatchObject({ unread: true, unreadCount: 1 });

    await client.importSubscribers({ channelId: "bot-1", messenger: Messenger.TELEGRAM, subscriberIds: "9001" }, as(project));
    const imported = (await client.listContacts({ filter: { search: "9001" } }, as(project))).contacts[0]!;
    expect(imported.clientWrote).toBe(false);
    await expect(client.setRead({ contact: { ref: { case: "contactId", value: imported.contactId } }, read: false }, as(project))).rejects.toMatchObject({ code: Status.FAILED_PRECONDITION });
  });

  it("adds a comment as the last message, authored COMMENT, with a timeline line; a repeated comment_id adds it once (seed 003)", async () => {
    const text = `Перезвонить после 18:00. ${"x".repeat(300)}`;
    const comment = { contact: ref(), authorOperatorId: "op1", mentionedOperatorId: "op7", text, commentId: uniqueName("comment") };
    const res = await client.addComment(comment, as(project, "op1"));
    expect(res.contact?.lastMessage).toMatchObject({ author: MessageAuthor.COMMENT, operatorId: "op1", excerpt: text.slice(0, 200) });
    expect(res.contact?.lastMessage?.at).toBeDefined();
    await changes.waitFor("the comment's event", (e) => e.value.contactId === contactId && e.value.changedFields.join() === "last_message");
    const again = await client.addComment(comment, as(project, "op1"));
    expect(again.contact?.lastMessage).toEqual(res.contact?.lastMessage);
    await client.addComment({ contact: ref(), text: "from the bot", commentId: uniqueName("step") }, as(project));
    expect((await card()).lastMessage).toMatchObject({ author: MessageAuthor.COMMENT, operatorId: "", excerpt: "from the bot" });

    const comments = (await client.listTimeline({ contact: ref() }, as(project))).entries.filter((e) => e.kind === TimelineKind.COMMENT);
    expect(comments.map((e) => [e.subject, e.newValue, e.actor])).toEqual([
      ["", "from the bot", "flow"],
      ["op7", text, "operator:op1"],
    ]);
  });

  it("refuses an empty or oversize comment and another project's contact, changing nothing", async () => {
    const before = await card();
    const timelineBefore = (await client.listTimeline({ contact: ref(), pageSize: 200 }, as(project))).entries;
    await expect(client.addComment({ contact: ref(), text: "  ", commentId: "c-empty" }, as(project))).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: "text" });
    await expect(client.addComment({ contact: ref(), text: "y".repeat(4001) }, as(project))).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: "text" });
    await expect(client.addComment({ text: "no contact" }, as(project))).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: "contact" });
    await expect(client.addComment({ contact: ref(), text: "intruder", commentId: "c-other" }, as(uniqueName("other")))).rejects.toMatchObject({ code: Status.NOT_FOUND });
    expect(await card()).toEqual(before);
    expect((await client.listTimeline({ contact: ref(), pageSize: 200 }, as(project))).entries).toEqual(timelineBefore);
  });

  it("imports ids separated by commas and new lines into a channel and a list, skipping duplicates and reporting invalid lines", async () => {
    const res = await client.importSubscribers({ channelId: "bot-2", messenger: Messenger.TELEGRAM, subscriberIds: "7001, 7002\n7003\nabc\n7001\n\n7004,-100200", list: "Импорт" }, as(project));
    expect(res.imported).toBe(5);
    expect(res.skippedDuplicates).toBe(1);
    expect(res.invalid.map((i) => [i.line, i.value])).toEqual([[3, "abc"]]);
    const again = await client.importSubscribers({ channelId: "bot-2", messenger: Messenger.TELEGRAM, subscriberIds: "7001\n7005" }, as(project));
    expect([again.imported, again.skippedDuplicates]).toEqual([1, 1]);
    const inList = await client.listContacts({ filter: { lists: ["Импорт"], channelIds: ["bot-2"] } }, as(project));
    expect(inList.totalCount).toBe(5n);
    const wa = await client.importSubscribers({ channelId: "wa-1", messenger: Messenger.WHATSAPP, subscriberIds: "+7 912 345-67-89\n12" }, as(project));
    expect([wa.imported, wa.invalid.length]).toEqual([1, 1]);
    expect((await client.listContacts({ filter: { channelIds: ["wa-1"] } }, as(project))).contacts[0]?.messengerUserId).toBe("79123456789");
    await expect(client.importSubscribers({ channelId: "", messenger: Messenger.TELEGRAM, subscriberIds: "1" }, as(project))).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: "channel_id" });
  });

  it("saves, lists and deletes named filters per project, validating them like a list request", async () => {
    const saved = await client.createSavedFilter({ name: "VIP in Moscow", filter: { tags: ["vip"], registeredAfter: "2024-01-01", timeZone: "Europe/Moscow" } }, as(project));
    await expect(client.createSavedFilter({ name: "VIP in Moscow", filter: {} }, as(project))).rejects.toMatchObject({ code: Status.ALREADY_EXISTS });
    await expect(client.createSavedFilter({ name: "bad", filter: { registeredAfter: "31.12.2024" } }, as(project))).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: "filter.registered_after" });
    const listed = await client.listSavedFilters({}, as(project));
    expect(listed.savedFilters.map((f) => [f.name, f.filter?.tags])).toEqual([["VIP in Moscow", ["vip"]]]);
    expect((await client.listSavedFilters({}, as(uniqueName("other")))).savedFilters).toHaveLength(0);
    await expect(client.deleteSavedFilter({ filterId: saved.savedFilter!.filterId }, as(uniqueName("other")))).rejects.toMatchObject({ code: Status.NOT_FOUND });
    await client.deleteSavedFilter({ filterId: saved.savedFilter!.filterId }, as(project));
    expect((await client.listSavedFilters({}, as(project))).savedFilters).toHaveLength(0);
  });

  it("reports unread totals per role: the whole project for an admin, own clients for an operator (seed 002)", async () => {
    const mine = (await svc.parts.ingest.ingest(inbound(project, { senderId: "8001" }))) as { contact: { _id: string } };
    await svc.parts.ingest.ingest(inbound(project, { senderId: "8001" }));
    await client.assignOperator({ contact: { ref: { case: "contactId", value: mine.contact._id } }, operatorId: "op-unread" }, as(project));
    const admin = await client.getUnreadTotals({}, as(project));
    const operator = await client.getUnreadTotals({}, as(project, "op-unread"));
    expect(operator).toMatchObject({ unreadContacts: 1n, unreadMessages: 2n });
    expect(admin.unreadContacts).toBeGreaterThan(1n);
    expect(admin.unreadMessages).toBeGreaterThanOrEqual(admin.unreadContacts);
  });
});

describe("contacts: what a crash leaves behind is published later", () => {
  const project = uniqueName("proj");
  let svc: Service;
  let changes: Awaited<ReturnType<typeof tapTopic<typeof Topics.contactEvents.schema>>>;

  beforeAll(async () => {
    svc = await startTestContacts(uniqueDatabase("relay"));
    changes = await tapTopic(Topics.contactEvents, project, testLogger());
  });
  afterAll(async () => {
    await changes?.close();
    await stopAndDrop(svc);
  });

  it("publishes an outbox entry a crash left on the card, with its timeline line, and clears it", async () => {
    const { contact } = (await svc.parts.ingest.ingest(inbound(project, { senderId: "31337" }))) as { contact: { _id: string } };
    const entry = { eventId: uniqueName("stuck"), kind: "updated", changedFields: ["tags"], at: new Date(Date.now() - 60_000), timeline: [{ kind: "tag_added", subject: "vip", oldValue: "", newValue: "vip", actor: "system" }] };
    // What a command leaves when the process dies between its write and the publish.
    const db = svc.context.mongo.connection.db!;
    await db.collection("outbox_pending").insertOne({ _id: contact._id as never, projectId: project, at: entry.at });
    await db.collection("contacts").updateOne({ _id: contact._id as never }, { $set: { tags: ["vip"], outbox: [entry] }, $inc: { rev: 1 } });
    expect(await svc.parts.writer.relay(30_000)).toBe(1);
    const [event] = await changes.waitFor("the relayed event", (e) => e.id === entry.eventId);
    expect(event!.value.changedFields).toEqual(["tags"]);
    expect(event!.value.contact?.tags).toEqual(["vip"]);
    expect((await db.collection("contacts").findOne({ _id: contact._id as never }))?.outbox).toEqual([]);
    expect(await db.collection("timeline").countDocuments({ _id: `${entry.eventId}:0` as never })).toBe(1);
    expect(await svc.parts.writer.relay(30_000)).toBe(0);
    expect(await db.collection("outbox_pending").countDocuments({ projectId: project })).toBe(0);
  });

  it("leaves no outbox hint behind after ordinary commands", async () => {
    const { contact } = (await svc.parts.ingest.ingest(inbound(project, { senderId: "31339" }))) as { contact: { _id: string } };
    const client = contactsClient(svc.grpcPort);
    await client.modifyTags({ contact: { ref: { case: "contactId", value: contact._id } }, add: ["a"] }, as(project));
    await client.setPinned({ contact: { ref: { case: "contactId", value: contact._id } }, pinned: true }, as(project));
    client.close();
    const db = svc.context.mongo.connection.db!;
    expect(await db.collection("outbox_pending").countDocuments({ _id: contact._id as never })).toBe(0);
    expect((await db.collection("contacts").findOne({ _id: contact._id as never }))?.outbox).toEqual([]);
  });

  it("finishes a deletion a crash interrupted after its tombstone", async () => {
    const { contact } = (await svc.parts.ingest.ingest(inbound(project, { senderId: "31338" }))) as { contact: { _id: string; clientId: number } };
    const db = svc.context.mongo.connection.db!;
    await db.collection("deleted_contacts").insertOne({
      _id: contact._id as never,
      projectId: project,
      clientId: contact.clientId,
      identityId: `${project}|bot-1|31338`,
      blacklisted: false,
      deletedAt: new Date(Date.now() - 60_000),
      published: false,
      actor: "system",
    });
    expect(await svc.parts.deleter.relay(30_000)).toBe(1);
    await changes.waitFor("the deleted event", (e) => e.id === `deleted:${contact._id}`);
    expect(await db.collection("contacts").countDocuments({ _id: contact._id as never })).toBe(0);
    expect((await db.collection("identities").findOne({ _id: `${project}|bot-1|31338` as never }))?.deletedAt).toBeInstanceOf(Date);
  });
});
