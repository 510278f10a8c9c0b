import { ChannelsService } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { ContactsService } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { ConversationsService } from "@chatcrm/contracts/chatcrm/gateway/v1/conversations_service_pb";
import { LiveService, type StreamUpdatesResponse } from "@chatcrm/contracts/chatcrm/gateway/v1/live_service_pb";
import { waitFor } from "@chatcrm/testing";
import { publicClient, seedProject, startGatewayStack, type GatewayStack, type SeededProject } from "../harness";

/** An open update stream that records what arrives and when. */
function openStream(url: string, token: string) {
  const controller = new AbortController();
  const received: { at: number; update: StreamUpdatesResponse["update"] }[] = [];
  let failed: unknown;
  const done = (async () => {
    try {
      for await (const res of publicClient(url, LiveService, token).streamUpdates({}, { signal: controller.signal })) received.push({ at: Date.now(), update: res.update });
    } catch (err) {
      if (!controller.signal.aborted) failed = err;
    }
  })();
  return {
    received,
    messages: () => received.filter((r) => r.update.case === "newMessage").map((r) => ({ at: r.at, value: r.update.value as Extract<StreamUpdatesResponse["update"], { case: "newMessage" }>["value"] })),
    failed: () => failed,
    close: async () => {
      controller.abort();
      await done;
    },
  };
}

describe("live updates: new messages, card changes and unread counters pushed per project and role", () => {
  let stack: GatewayStack;
  let project: SeededProject;
  let other: SeededProject;
  let widgetKey: string;
  let channelId: string;
  const streams: ReturnType<typeof openStream>[] = [];
  const stream = (token: string) => {
    const s = openStream(stack.url, token);
    streams.push(s);
    return s;
  };
  /** A new visitor writes through the widget's HTTP endpoint, as a browser without WebSocket would. */
  const visitorTokens = new Map<string, string>();
  const visitorWrites = async (text: string, visitorId?: string) => {
    const body = { key: widgetKey, text, ...(visitorId && { token: visitorTokens.get(visitorId) }) };
    const res = await fetch(stack.channels.url("/widget/v1/messages"), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect(res.status).toBe(202);
    const posted = (await res.json()) as { visitor_id: string; token: string };
    visitorTokens.set(posted.visitor_id, posted.token);
    return posted.visitor_id;
  };

  beforeAll(async () => {
    stack = await startGatewayStack("gw_live");
    [project, other] = await Promise.all([seedProject(stack, "live"), seedProject(stack, "live-other")]);
    const connected = await publicClient(stack.url, ChannelsService, project.admin.token).connectChannel({ name: "Site", settings: { case: "web", value: { allowedOrigins: [] } } });
    widgetKey = connected.channel!.widgetKey;
    channelId = connected.channel!.id;
  }, 120_000);

  afterAll(async () => {
    await Promise.all(streams.map((s) => s.close()));
    await stack?.stop();
  });

  it("pushes a new web-widget message to the project's admin within a second, and nothing to another project", async () => {
    const admin = stream(project.admin.token);
    const outsider = stream(other.admin.token);
    await waitFor("the first unread totals", () => {
      if (admin.failed()) throw admin.failed();
      return admin.received[0]?.update.case === "unreadTotals" && outsider.received[0]?.update.case === "unreadTotals";
    });

    // The gateway's consumer joins its group from "now" at start-up; a first message shows when it listens.
    await waitFor("the live consumer to deliver", async () => admin.messages().length > 0 || (await visitorWrites("warm-up"), false), 30_000, 2_000);

    const before = admin.messages().length;
    const sentAt = Date.now();
    const visitor = await visitorWrites("Hello, do you deliver on Sundays?");
    const arrived = await waitFor("the message on the stream", () => admin.messages().slice(before).find((m) => m.value.message?.senderId === visitor), 5_000, 10);
    expect(arrived.at - sentAt).toBeLessThan(1_000);
    expect(arrived.value).toMatchObject({ message: { text: "Hello, do you deliver on Sundays?", channelId, projectId: project.projectId }, firstTouch: true });
    expect(arrived.value.contact?.contactId).toBeTruthy();

    // Its card change and the project's new unread totals follow.
    await waitFor("the card and the counters", () => {
      const rest = admin.received.filter((r) => r.at >= sentAt);
      return rest.some((r) => r.update.case === "contactUpdate" && r.update.value.contactId === arrived.value.contact?.contactId) && rest.some((r) => r.update.case === "unreadTotals");
    });
    expect(outsider.messages()).toEqual([]);
    expect(outsider.received.some((r) => r.update.case === "contactUpdate")).toBe(false);
    expect(admin.failed()).toBeUndefined();
  });

  it("gives an operator their own and free clients only, with unread counters of their own clients", async () => {
    const contacts = publicClient(stack.url, ContactsService, project.admin.token);
    // On FerretDB an assignment right after the card's creation has answered "not found" in CI, at either call
    // below, although contacts inserted the card before publishing the message the stream carried. The cause is
    // unknown (issue 5's session notes); this test is about who hears what, so an assignment is tried again for a
    // few seconds (waitFor retries a throwing check and fails with its last error).
    const assign = (contactId: string, operatorId: string) =>
      waitFor(`the assignment of ${contactId}`, async () => (await contacts.assignOperator({ contact: { ref: { case: "contactId", value: contactId } }, operatorId }), true), 5_000, 200);
    const operatorStream = stream(project.operator.token);
    await waitFor("the operator's first unread totals", () => operatorStream.received[0]?.update.case === "unreadTotals");
    const first = operatorStream.received[0]!.update.value as { unreadContacts: bigint };
    expect(first.unreadContacts).toBe(0n);

    // A free client writes: the operator sees it (they may take it).
    const freeVisitor = await visitorWrites("anyone there?");
    const freeMessage = await waitFor("the free client's message", () => operatorStream.messages().find((m) => m.value.message?.senderId === freeVisitor), 10_000);
    const freeContactId = freeMessage.value.contact!.contactId;

    // The admin gives the client to the operator: the card change and the operator's own unread count arrive.
    await assign(freeContactId, project.operator.operatorId);
    await waitFor("the operator's unread count to include the client", () =>
      operatorStream.received.some((r) => r.update.case === "unreadTotals" && r.update.value.unreadContacts === 1n),
    );

    // Another client is taken by a colleague: from then on the operator hears nothing of it.
    const otherOperator = `op_someone_else`;
    const otherVisitor = await visitorWrites("I am about to be someone else's client");
    const otherMessage = await waitFor("the other client's first message", () => operatorStream.messages().find((m) => m.value.message?.senderId === otherVisitor), 10_000);
    const otherContactId = otherMessage.value.contact!.contactId;
    await assign(otherContactId, otherOperator);
    const admin = stream(project.admin.token);
    await waitFor("the admin's stream to open", () => admin.received.length > 0);
    // The hub filters on the card each event carries. On FerretDB an event right after the assignment has been
    // seen to carry the card as it was before (a stale read in contacts; see the session note), so the client
    // keeps writing until the admin's stream shows a message whose card names the colleague.
    await waitFor(
      "a message whose card names the colleague",
      async () => {
        if (admin.messages().some((m) => m.value.contact?.contactId === otherContactId && m.value.contact.operatorId === otherOperator)) return true;
        await visitorWrites("a message to my own operator", otherVisitor);
        return false;
      },
      20_000,
      1_000,
    );
    const conversations = publicClient(stack.url, ConversationsService, project.operator.token);
    const sent = await conversations.sendToContact({ contact: { ref: { case: "contactId", value: freeContactId } }, text: "Yes, we deliver on Sundays" });
    expect(sent).toMatchObject({ contactId: freeContactId, channelId });
    const history = await waitFor("the reply in the contact's history", async () => {
      const page = await conversations.listContactMessages({ contact: { ref: { case: "contactId", value: freeContactId } } });
      return page.messages.some((m) => m.text === "Yes, we deliver on Sundays") && page.messages;
    });
    expect(history.map((m) => m.text)).toEqual(expect.arrayContaining(["anyone there?", "Yes, we deliver on Sundays"]));

    await waitFor("the card update for the operator's client", () =>
      operatorStream.received.some((r) => r.update.case === "contactUpdate" && r.update.value.contactId === freeContactId && r.update.value.card?.operatorId === project.operator.operatorId),
    );
    const ownerOf = (r: (typeof operatorStream.received)[number]) =>
      r.update.case === "newMessage" && r.update.value.contact?.contactId === otherContactId
        ? r.update.value.contact.operatorId
        : r.update.case === "contactUpdate" && r.update.value.contactId === otherContactId
          ? (r.update.value.card?.operatorId ?? "")
          : undefined;
    const aboutOther = operatorStream.received.filter((r) => ownerOf(r) !== undefined);
    // It heard of the client while the events said it was free (at least its first message and the card's
    // creation), and nothing that named the colleague.
    expect(aboutOther.map((r) => r.update.case)).toEqual(expect.arrayContaining(["contactUpdate", "newMessage"]));
    expect(aboutOther.filter((r) => ownerOf(r) !== "")).toEqual([]);
  });
});
