import { create } from "@bufbuild/protobuf";
import { ConnectChannelRequestSchema, MessageDirection } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { DeliveryState, MessageKind, MessageOrigin, Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { Topics } from "@chatcrm/kafka";
import { callAs, stopAndDrop, tapTopic, testLogger, uniqueDatabase, uniqueName, waitFor } from "@chatcrm/testing";
import { statusUpdate, textMessage, WhatsAppFake, type WhatsAppNumber } from "../fakes/whatsapp-fake";
import { channelsClient, sendCommand, startTestChannels, testSecretsKey, type ChannelsClient } from "../integration/harness";

/**
 * Statuses our instance published. Every channels instance on the shared topics (other suites run at the same time,
 * each with its own database and consumer group) also reads our send commands and, not knowing our channel, reports
 * them FAILED without a messenger; only statuses about a channel the publisher knows carry its messenger.
 */
const fromUs = (e: { value: { messenger: Messenger } }) => e.value.messenger === Messenger.WHATSAPP;

const logger = testLogger("whatsapp-flow");

/** The fake lets two messages through to one user at once, then one every 500 ms: far below what we configure. */
const FAKE_PAIR_LIMIT = { ratePerSec: 2, burst: 2 };

describe("WhatsApp end to end: signed webhook → Kafka, send command → Cloud API → status webhooks", () => {
  const database = uniqueDatabase("ch_wa");
  const projectId = uniqueName("p");
  const key = testSecretsKey();
  let wa: WhatsAppFake;
  let number: WhatsAppNumber;
  let service: Awaited<ReturnType<typeof startTestChannels>>;
  let client: ChannelsClient;
  let channelId: string;
  let webhookUrl: string;
  let inbound: Awaited<ReturnType<typeof tapTopic<typeof Topics.inboundMessages.schema>>>;
  let statuses: Awaited<ReturnType<typeof tapTopic<typeof Topics.deliveryStatuses.schema>>>;

  const messagesTo = (to: string) => wa.sentTo(number.phoneNumberId, to);
  const send = (recipientId: string, text: string) => sendCommand(service.running.context.publisher, { projectId, channelId, recipientId, text });

  beforeAll(async () => {
    wa = await WhatsAppFake.start({ perRecipient: FAKE_PAIR_LIMIT });
    number = wa.addNumber({ verifiedName: "Acme Shop" });
    service = await startTestChannels(database, {
      CHANNEL_SECRETS_KEY: key,
      WHATSAPP_API_URL: wa.baseUrl,
      SEND_MAX_BACKOFF_MS: 400,
      // Our own per-chat limit is looser than the fake's pair limit, so the fake's 131056 answer is what slows a burst.
      CHANNEL_RATE_LIMITS: JSON.stringify({ whatsapp: { perChat: { ratePerSec: 50, burst: 50 } } }),
    });
    client = channelsClient(service.running.grpcPort);
    [inbound, statuses] = await Promise.all([tapTopic(Topics.inboundMessages, projectId, logger), tapTopic(Topics.deliveryStatuses, projectId, logger)]);
    const res = await client.connectChannel(
      create(ConnectChannelRequestSchema, {
        name: "Acme WhatsApp",
        settings: { case: "whatsapp", value: { phoneNumberId: number.phoneNumberId, accessToken: number.accessToken, appSecret: number.appSecret, verifyToken: number.verifyToken } },
      }),
      callAs(projectId),
    );
    channelId = res.channel!.id;
    webhookUrl = service.url(`/webhooks/whatsapp/${channelId}`);
    wa.setWebhook(number.phoneNumberId, webhookUrl);
  });

  afterAll(async () => {
    await Promise.all([inbound?.close(), statuses?.close()]);
    client?.close();
    await stopAndDrop(service?.running);
    await wa?.close();
  });

  it("connects with the number's name and path, and keeps the secrets out of the channel", async () => {
    const { channel } = await client.getChannel({ channelId }, callAs(projectId));
    expect(channel).toMatchObject({ messenger: Messenger.WHATSAPP, webhookPath: `/webhooks/whatsapp/${channelId}`, accountLabel: `${number.displayPhoneNumber} (Acme Shop)` });
    const stored = JSON.stringify(await service.running.parts.models.channels.findById(channelId).lean());
    for (const secret of [number.accessToken, number.appSecret, number.verifyToken]) expect(stored).not.toContain(secret);
  });

  it("echoes Meta's verification challenge, and refuses a wrong verify token with 403", async () => {
    const ok = await wa.verifyChallenge(webhookUrl, number.verifyToken, { challenge: "1158201444" });
    expect(ok).toMatchObject({ status: 200, text: "1158201444" });
    const wrong = await wa.verifyChallenge(webhookUrl, "not-the-verify-token");
    expect(wrong.status).toBe(403);
    expect(wrong.text).not.toContain(wrong.challenge);
  });

  it("publishes a signed text message with the profile name split, keyed by chat", async () => {
    const message = textMessage("15551230001", "Hi, is the blue one in stock?");
    const res = await wa.deliverMessage(number.phoneNumberId, message, { profileName: "Maria del Carmen" });
    expect(res.status).toBe(200);
    const [event] = await inbound.waitFor("the text message", (e) => e.value.providerMessageId === message.id);
    expect(event!.key).toBe(`${channelId}:15551230001`);
    expect(event!.value).toMatchObject({
      projectId,
      channelId,
      messenger: Messenger.WHATSAPP,
      senderId: "15551230001",
      kind: MessageKind.TEXT,
      text: "Hi, is the blue one in stock?",
      providerMessageId: message.id,
      sender: { firstName: "Maria", lastName: "del Carmen" },
      startPayload: "",
      attachments: [],
    });
    expect(event!.value.messageId).toMatch(/^[0-9a-f]{32}$/);
    expect(event!.id).toBe(event!.value.messageId);
    expect(event!.value.sentAt?.seconds).toBe(BigInt(message.timestamp as string));
  });

  it("refuses a forged signature with 403 and a missing one with 401, publishing nothing", async () => {
    const forged = await wa.deliverMessage(number.phoneNumberId, textMessage("15551230004", "forged"), { signWith: "not-the-app-secret" });
    expect(forged.status).toBe(403);
    const unsigned = await wa.deliverMessage(number.phoneNumberId, textMessage("15551230004", "unsigned"), { signature: null });
    expect(unsigned.status).toBe(401);
    await wa.deliverMessage(number.phoneNumberId, textMessage("15551230004", "genuine"));
    await inbound.waitFor("the genuine message", (e) => e.value.senderId === "15551230004" && e.value.text === "genuine");
    expect(inbound.events.filter((e) => e.value.senderId === "15551230004").map((e) => e.value.text)).toEqual(["genuine"]);
  });

  it("publishes a message Meta delivers twice (same wamid) once", async () => {
    const message = textMessage("15551230005", "twice");
    const [first, again] = [await wa.deliverMessage(number.phoneNumberId, message), await wa.deliverMessage(number.phoneNumberId, message)];
    expect([first.status, again.status]).toEqual([200, 200]);
    await wa.deliverMessage(number.phoneNumberId, textMessage("15551230005", "after"));
    await inbound.waitFor("the next message", (e) => e.value.senderId === "15551230005" && e.value.text === "after");
    expect(inbound.events.filter((e) => e.value.providerMessageId === message.id)).toHaveLength(1);
  });

  it("sends a command as the exact Cloud API request, reports SENT with the wamid, then DELIVERED and READ from the status webhooks", async () => {
    const commandId = await send("15551230002", "Your order #1042 has shipped");
    const [sent] = await statuses.waitFor("sent", (e) => fromUs(e) && e.value.commandId === commandId && e.value.state === DeliveryState.SENT);
    const calls = messagesTo("15551230002");
    expect(calls).toHaveLength(1);
    expect(calls[0]!.body).toEqual({ messaging_product: "whatsapp", recipient_type: "individual", to: "15551230002", type: "text", text: { body: "Your order #1042 has shipped", preview_url: false } });
    const request = wa.server.calls.find((c) => c.method === "POST" && (c.body as { to?: string } | undefined)?.to === "15551230002");
    expect(request?.path).toBe(`/v21.0/${number.phoneNumberId}/messages`);
    expect(request?.headers.authorization).toBe(`Bearer ${number.accessToken}`);
    const wamid = calls[0]!.wamid;
    expect(sent!.key).toBe(`${channelId}:15551230002`);
    expect(sent!.value).toMatchObject({ projectId, channelId, recipientId: "15551230002", contactId: "contact-15551230002", providerMessageId: wamid, messenger: Messenger.WHATSAPP, excerpt: "Your order #1042 has shipped" });

    expect((await wa.deliverStatus(number.phoneNumberId, statusUpdate(wamid, "15551230002", "delivered"))).status).toBe(200);
    expect((await wa.deliverStatus(number.phoneNumberId, statusUpdate(wamid, "15551230002", "read"))).status).toBe(200);
    const reports = await statuses.waitFor("delivered and read", (e) => fromUs(e) && e.value.commandId === commandId && [DeliveryState.DELIVERED, DeliveryState.READ].includes(e.value.state), 2);
    expect(reports.map((e) => e.value.state)).toEqual([DeliveryState.DELIVERED, DeliveryState.READ]);
    for (const report of reports) {
      expect(report.key).toBe(`${channelId}:15551230002`);
      expect(report.value).toMatchObject({ projectId, channelId, commandId, recipientId: "15551230002", contactId: "contact-15551230002", providerMessageId: wamid, messenger: Messenger.WHATSAPP, origin: MessageOrigin.FLOW, error: "", permanent: false });
    }
  });

  it("reports a send Meta accepts but cannot deliver as FAILED, permanent, from the async status webhook", async () => {
    wa.undeliverable("15551230003");
    const commandId = await send("15551230003", "Anyone there?");
    const [failed] = await statuses.waitFor("failed", (e) => fromUs(e) && e.value.commandId === commandId && e.value.state === DeliveryState.FAILED);
    const [call] = messagesTo("15551230003");
    expect(failed!.value).toMatchObject({ recipientId: "15551230003", contactId: "contact-15551230003", providerMessageId: call!.wamid, permanent: true, error: "131026 Message undeliverable: Message Undeliverable." });
    // Meta accepted it first: SENT comes from the dispatcher, possibly after the webhook's FAILED was published.
    await statuses.waitFor("sent", (e) => fromUs(e) && e.value.commandId === commandId && e.value.state === DeliveryState.SENT);
    await wa.settle();
    expect(wa.webhookFailures).toEqual([]);
  });

  it("retries sends refused by the pair rate limit (131056) until they go out, in order", async () => {
    const to = "15551230006";
    const texts = ["one", "two", "three", "four"];
    const ids: string[] = [];
    for (const text of texts) ids.push(await send(to, text));
    await statuses.waitFor("all four sent", (e) => fromUs(e) && ids.includes(e.value.commandId) && e.value.state === DeliveryState.SENT, 4);
    expect(wa.limitHits.filter((h) => h.to === to).map((h) => h.code)).toContain(131056);
    expect(messagesTo(to).map((s) => (s.body.text as { body: string }).body)).toEqual(texts);
    expect(statuses.events.some((e) => fromUs(e) && ids.includes(e.value.commandId) && e.value.state === DeliveryState.FAILED)).toBe(false);
    const queued = statuses.events.filter((e) => fromUs(e) && ids.includes(e.value.commandId) && e.value.state === DeliveryState.QUEUED);
    expect(queued.length).toBeGreaterThan(0);
    expect(queued[0]!.value.error).toContain("131056");
  });

  it("sends an operator's message to a new number written loosely, normalised, once per idempotency key", async () => {
    const request = { channelId, recipientId: "+7 (916) 123-45-67", text: "Hello from Acme!", idempotencyKey: uniqueName("idem") };
    const first = await client.sendMessage(request, callAs(projectId, "op-7"));
    expect(first.recipientId).toBe("79161234567");
    const again = await client.sendMessage(request, callAs(projectId, "op-7"));
    expect(again).toMatchObject({ commandId: first.commandId, recipientId: "79161234567" });
    // A later message of the same chat is dispatched after the repeated command, so once it is sent the repeat was handled.
    const later = await client.sendMessage({ channelId, recipientId: "79161234567", text: "One more thing" }, callAs(projectId, "op-7"));
    await statuses.waitFor("both sent", (e) => fromUs(e) && [first.commandId, later.commandId].includes(e.value.commandId) && e.value.state === DeliveryState.SENT, 2);

    expect(messagesTo("79161234567").map((s) => s.body.text)).toEqual([{ body: "Hello from Acme!", preview_url: false }, { body: "One more thing", preview_url: false }]);
    const sent = statuses.events.filter((e) => fromUs(e) && e.value.commandId === first.commandId && e.value.state === DeliveryState.SENT);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.value).toMatchObject({ recipientId: "79161234567", contactId: "", origin: MessageOrigin.OPERATOR, operatorId: "op-7", messenger: Messenger.WHATSAPP, providerMessageId: messagesTo("79161234567")[0]!.wamid });
    // The logged state is not asserted: other suites' instances report our commands FAILED (see fromUs) into the same log.
    const log = await waitFor("the log to show the operator's message", async () => {
      const page = await client.listMessages({ channelId, peerId: "79161234567" }, callAs(projectId));
      return page.messages.find((m) => m.id === first.commandId);
    });
    expect(log).toMatchObject({ direction: MessageDirection.OUTBOUND, origin: MessageOrigin.OPERATOR, operatorId: "op-7", text: "Hello from Acme!" });
  });
});
