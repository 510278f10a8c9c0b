import { create } from "@bufbuild/protobuf";
import { ConnectChannelRequestSchema } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { DeliveryState, MessageKind, Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { Topics } from "@chatcrm/kafka";
import { callAs, stopAndDrop, tapTopic, testLogger, uniqueDatabase, uniqueName } from "@chatcrm/testing";
import { VkFake, type VkFakeGroup } from "../fakes/vk-fake";
import { channelsClient, sendCommand, startTestChannels, testSecretsKey, type ChannelsClient } from "../integration/harness";

/**
 * Statuses our instance published. Every channels instance on the shared topics (other suites run at the same time,
 * each with its own database and consumer group) also reads our send commands and, not knowing our channel, reports
 * them FAILED without a messenger; only statuses about a channel the publisher knows carry its messenger.
 */
const fromUs = (e: { value: { messenger: Messenger } }) => e.value.messenger === Messenger.VK;

const logger = testLogger("vk-flow");

describe("VK end to end: Callback API → Kafka, send command → messages.send → status", () => {
  const database = uniqueDatabase("ch_vk");
  const projectId = uniqueName("p");
  const key = testSecretsKey();
  let vk: VkFake;
  let group: VkFakeGroup;
  let service: Awaited<ReturnType<typeof startTestChannels>>;
  let client: ChannelsClient;
  let channelId: string;
  let webhookUrl: string;
  let inbound: Awaited<ReturnType<typeof tapTopic<typeof Topics.inboundMessages.schema>>>;
  let statuses: Awaited<ReturnType<typeof tapTopic<typeof Topics.deliveryStatuses.schema>>>;
  let blocks: Awaited<ReturnType<typeof tapTopic<typeof Topics.subscriberStatuses.schema>>>;

  const deliver = (type: string, object: unknown, options?: { secret?: string | null }) => vk.deliver(webhookUrl, group.groupId, type, object, options);
  const send = (value: { recipientId: string; text: string; buttons?: Array<{ text: string; payload?: string; url?: string }> }) =>
    sendCommand(service.running.context.publisher, { projectId, channelId, ...value });

  beforeAll(async () => {
    vk = await VkFake.start();
    group = vk.addGroup({ name: "Coffee Club" });
    service = await startTestChannels(database, { CHANNEL_SECRETS_KEY: key, VK_API_URL: vk.baseUrl, SEND_MAX_BACKOFF_MS: 400 });
    client = channelsClient(service.running.grpcPort);
    [inbound, statuses, blocks] = await Promise.all([tapTopic(Topics.inboundMessages, projectId, logger), tapTopic(Topics.deliveryStatuses, projectId, logger), tapTopic(Topics.subscriberStatuses, projectId, logger)]);
    const res = await client.connectChannel(
      create(ConnectChannelRequestSchema, {
        name: "Coffee Club VK",
        settings: { case: "vk", value: { groupId: BigInt(group.groupId), accessToken: group.accessToken, secret: group.secret!, confirmationCode: group.confirmationCode } },
      }),
      callAs(projectId),
    );
    channelId = res.channel!.id;
    webhookUrl = service.url(`/webhooks/vk/${channelId}`);
  });

  afterAll(async () => {
    await Promise.all([inbound?.close(), statuses?.close(), blocks?.close()]);
    client?.close();
    await stopAndDrop(service?.running);
    await vk?.close();
  });

  it("connects under the community's name and keeps the secrets out of the channel", async () => {
    const { channel } = await client.getChannel({ channelId }, callAs(projectId));
    expect(channel).toMatchObject({ messenger: Messenger.VK, webhookPath: `/webhooks/vk/${channelId}`, accountLabel: "Coffee Club" });
    const stored = JSON.stringify(await service.running.parts.models.channels.findById(channelId).lean());
    for (const secret of [group.accessToken, group.secret!, group.confirmationCode]) expect(stored).not.toContain(secret);
  });

  it("answers the confirmation callback with the community's code", async () => {
    expect(await vk.confirm(webhookUrl, group.groupId)).toEqual({ status: 200, text: group.confirmationCode });
  });

  it("refuses a wrong or missing secret key with 403 and publishes nothing", async () => {
    expect((await deliver("message_new", vk.messageNew(300001, "forged"), { secret: "not-the-secret" })).status).toBe(403);
    expect((await deliver("message_new", vk.messageNew(300001, "no secret"), { secret: null })).status).toBe(403);
    expect((await deliver("message_deny", vk.messageDeny(300001), { secret: "not-the-secret" })).status).toBe(403);
    expect((await deliver("message_new", vk.messageNew(300001, "genuine"))).text).toBe("ok");
    await inbound.waitFor("the genuine message", (e) => e.value.senderId === "300001" && e.value.text === "genuine");
    expect(inbound.events.filter((e) => e.value.senderId === "300001").map((e) => e.value.text)).toEqual(["genuine"]);
    expect(blocks.events.some((e) => e.value.subscriberId === "300001")).toBe(false);
  });

  it("publishes message_new with the vk.me ref as the start payload and answers the literal ok", async () => {
    const object = vk.messageNew(300002, "Привет! Есть капучино?", { ref: "spring_sale", ref_source: "vk_ads" });
    const answer = await deliver("message_new", object);
    expect(answer).toMatchObject({ status: 200, text: "ok" });
    const [event] = await inbound.waitFor("the message", (e) => e.value.providerMessageId === String(object.message.id));
    expect(event!.key).toBe(`${channelId}:300002`);
    expect(event!.value).toMatchObject({
      projectId,
      channelId,
      messenger: Messenger.VK,
      senderId: "300002",
      kind: MessageKind.TEXT,
      text: "Привет! Есть капучино?",
      startPayload: "spring_sale&ref_source=vk_ads",
      buttonPayload: "",
    });
    expect(event!.value.sentAt?.seconds).toBe(BigInt(object.message.date));
  });

  it("publishes an event VK repeats (same event_id, same message id) once", async () => {
    const object = vk.messageNew(300005, "repeated");
    const eventId = uniqueName("ev");
    const answers = [await vk.deliver(webhookUrl, group.groupId, "message_new", object, { eventId }), await vk.deliver(webhookUrl, group.groupId, "message_new", object, { eventId })];
    expect(answers.map((a) => a.text)).toEqual(["ok", "ok"]);
    await deliver("message_new", vk.messageNew(300005, "after"));
    await inbound.waitFor("the next message", (e) => e.value.senderId === "300005" && e.value.text === "after");
    expect(inbound.events.filter((e) => e.value.providerMessageId === String(object.message.id))).toHaveLength(1);
  });

  it("turns message_deny and message_allow into subscriber status events", async () => {
    expect((await deliver("message_deny", vk.messageDeny(300004))).text).toBe("ok");
    expect((await deliver("message_allow", vk.messageAllow(300004))).text).toBe("ok");
    const events = await blocks.waitFor("deny and allow", (e) => e.value.subscriberId === "300004", 2);
    expect(events.map((e) => e.value.blocked)).toEqual([true, false]);
    expect(events[0]!.key).toBe(`${channelId}:300004`);
    expect(events[0]!.value).toMatchObject({ projectId, channelId, messenger: Messenger.VK, subscriberId: "300004", blocked: true });
    expect(events[0]!.value.eventId).not.toBe(events[1]!.value.eventId);
  });

  it("sends buttons as an inline keyboard, reports SENT with VK's message id, and a press comes back as the button's payload", async () => {
    const commandId = await send({ recipientId: "300002", text: "Which size?", buttons: [{ text: "Large", payload: "size_l" }, { text: "Menu", url: "https://coffee.test/menu" }] });
    const [sent] = await statuses.waitFor("sent", (e) => fromUs(e) && e.value.commandId === commandId && e.value.state === DeliveryState.SENT);
    const messages = vk.sentTo(group.groupId, "300002");
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ message: "Which size?" });
    expect(messages[0]!.keyboard).toEqual({
      inline: true,
      buttons: [[{ action: { type: "text", label: "Large", payload: JSON.stringify({ p: "size_l" }) } }], [{ action: { type: "open_link", link: "https://coffee.test/menu", label: "Menu" } }]],
    });
    expect(messages[0]!.randomId).toBeGreaterThan(0);
    const call = vk.server.calls.find((c) => c.path === "/method/messages.send");
    expect(call?.body).toMatchObject({ access_token: group.accessToken, peer_id: "300002", v: "5.199" });
    expect(sent!.key).toBe(`${channelId}:300002`);
    expect(sent!.value).toMatchObject({ projectId, channelId, recipientId: "300002", contactId: "contact-300002", providerMessageId: String(messages[0]!.messageId), messenger: Messenger.VK, excerpt: "Which size?" });

    const press = vk.buttonPress(300002, JSON.stringify({ p: "size_l" }));
    expect((await deliver("message_new", press)).text).toBe("ok");
    const [pressed] = await inbound.waitFor("the button press", (e) => e.value.providerMessageId === String(press.message.id));
    expect(pressed!.value).toMatchObject({ senderId: "300002", kind: MessageKind.BUTTON, buttonPayload: "size_l", text: "Large" });
  });

  it("reports error 901 (messages not allowed) as FAILED, permanent, without retrying", async () => {
    vk.denyUser(300003, group.groupId);
    const commandId = await send({ recipientId: "300003", text: "Your coupon is ready" });
    const [failed] = await statuses.waitFor("failed", (e) => fromUs(e) && e.value.commandId === commandId && e.value.state === DeliveryState.FAILED);
    expect(failed!.value).toMatchObject({ recipientId: "300003", permanent: true, error: "VK error 901: Can't send messages for users without permission", messenger: Messenger.VK });
    expect(vk.server.calls.filter((c) => c.path === "/method/messages.send" && (c.body as { peer_id?: string }).peer_id === "300003")).toHaveLength(1);
    expect(statuses.events.some((e) => fromUs(e) && e.value.commandId === commandId && e.value.state !== DeliveryState.FAILED)).toBe(false);
  });
});
