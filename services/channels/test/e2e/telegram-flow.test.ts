import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { ConnectChannelRequestSchema, MessageDirection } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { DeliveryState, MessageKind, Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { Status } from "@chatcrm/grpc";
import { Topics } from "@chatcrm/kafka";
import { callAs, stopAndDrop, tapTopic, testLogger, uniqueDatabase, uniqueName, waitFor } from "@chatcrm/testing";
import { postWebhook } from "../fakes/fake-server";
import { chatMemberUpdate, photoUpdate, startUpdate, TelegramFake, textUpdate } from "../fakes/telegram-fake";
import { channelsClient, sendCommand, startTestChannels, testSecretsKey, type ChannelsClient } from "../integration/harness";

const logger = testLogger("telegram-flow");

describe("Telegram end to end: webhook → Kafka, send command → Bot API → status", () => {
  const database = uniqueDatabase("ch_tg");
  const projectId = uniqueName("p");
  const key = testSecretsKey();
  let tg: TelegramFake;
  let service: Awaited<ReturnType<typeof startTestChannels>>;
  let client: ChannelsClient;
  let bot: { token: string; username: string };
  let channelId: string;
  let inbound: Awaited<ReturnType<typeof tapTopic<typeof Topics.inboundMessages.schema>>>;
  let statuses: Awaited<ReturnType<typeof tapTopic<typeof Topics.deliveryStatuses.schema>>>;
  let blocks: Awaited<ReturnType<typeof tapTopic<typeof Topics.subscriberStatuses.schema>>>;

  beforeAll(async () => {
    tg = await TelegramFake.start();
    service = await startTestChannels(database, { CHANNEL_SECRETS_KEY: key, TELEGRAM_API_URL: tg.baseUrl, SEND_MAX_BACKOFF_MS: 400, WEBHOOK_BODY_LIMIT_BYTES: 64 * 1024 });
    client = channelsClient(service.running.grpcPort);
    bot = tg.addBot({ username: "shop_bot" });
    [inbound, statuses, blocks] = await Promise.all([tapTopic(Topics.inboundMessages, projectId, logger), tapTopic(Topics.deliveryStatuses, projectId, logger), tapTopic(Topics.subscriberStatuses, projectId, logger)]);
    const res = await client.connectChannel(create(ConnectChannelRequestSchema, { name: "Shop bot", settings: { case: "telegram", value: { botToken: bot.token } } }), callAs(projectId));
    channelId = res.channel!.id;
  });

  afterAll(async () => {
    await Promise.all([inbound?.close(), statuses?.close(), blocks?.close()]);
    client?.close();
    await stopAndDrop(service?.running);
    await tg?.close();
  });

  it("registers the webhook with a secret and never returns the token", async () => {
    const hook = tg.webhookOf(bot.token);
    expect(hook?.url).toBe(service.url(`/webhooks/telegram/${channelId}`));
    expect(hook?.secretToken).toMatch(/^[\w-]{32,}$/);
    const { channel } = await client.getChannel({ channelId }, callAs(projectId));
    expect(channel?.accountLabel).toBe("@shop_bot");
    expect(JSON.stringify(channel, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))).not.toContain(bot.token);
    const stored = await service.running.parts.models.channels.findById(channelId).lean();
    expect(JSON.stringify(stored)).not.toContain(bot.token);
  });

  it("refuses bad connect requests naming the field, and stores nothing for them", async () => {
    const connect = (name: string, rest: Omit<MessageInitShape<typeof ConnectChannelRequestSchema>, "name">) =>
      client.connectChannel(create(ConnectChannelRequestSchema, { name, ...(rest as object) }), callAs(projectId));
    await expect(connect("", { settings: { case: "telegram", value: { botToken: bot.token } } })).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: "name" });
    await expect(connect("No messenger", {})).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: "settings" });
    await expect(connect("Bad token", { settings: { case: "telegram", value: { botToken: "123:not-a-real-token-aaaaaaaaaaaaaaaaaaaaaa" } } })).rejects.toMatchObject({
      code: Status.INVALID_ARGUMENT,
      field: "telegram.bot_token",
    });
    await expect(connect("Bad origin", { settings: { case: "web", value: { allowedOrigins: ["shop.example.com/path"] } } })).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, field: "web.allowed_origins" });
    const { channels } = await client.listChannels({ includeDisconnected: true }, callAs(projectId));
    expect(channels.map((c) => c.id)).toEqual([channelId]);
  });

  it("shows and changes a channel only for its own project", async () => {
    const other = callAs(uniqueName("other"));
    await expect(client.getChannel({ channelId }, other)).rejects.toMatchObject({ code: Status.NOT_FOUND });
    await expect(client.disconnectChannel({ channelId }, other)).rejects.toMatchObject({ code: Status.NOT_FOUND });
    await expect(client.listMessages({ channelId, peerId: "5001" }, other)).rejects.toMatchObject({ code: Status.NOT_FOUND });
    await expect(client.sendMessage({ channelId, recipientId: "5001", text: "hi" }, other)).rejects.toMatchObject({ code: Status.NOT_FOUND });
    await expect(client.startResendFailed({ channelId }, other)).rejects.toMatchObject({ code: Status.NOT_FOUND });
    expect((await client.listChannels({ includeDisconnected: true }, other)).channels).toHaveLength(0);
    await expect(client.getChannel({ channelId }, { metadata: {} })).rejects.toMatchObject({ code: Status.UNAUTHENTICATED });
    expect(tg.webhookOf(bot.token)).toBeDefined();
  });

  it("publishes a /start with its deep-link payload, keyed by chat, once however often it is delivered", async () => {
    const update = { ...startUpdate(5001, "utm_source-vk__utm_campaign-spring"), update_id: 777001 };
    const first = await tg.deliverUpdate(bot.token, update);
    const again = await tg.deliverUpdate(bot.token, update);
    expect([first.status, again.status]).toEqual([200, 200]);
    const [event] = await inbound.waitFor("the /start message", (e) => e.value.providerMessageId === "777001");
    expect(event!.key).toBe(`${channelId}:5001`);
    expect(event!.value).toMatchObject({ projectId, channelId, messenger: Messenger.TELEGRAM, senderId: "5001", kind: MessageKind.TEXT, startPayload: "utm_source-vk__utm_campaign-spring" });
    await tg.deliverUpdate(bot.token, textUpdate(5001, "after"));
    await inbound.waitFor("the next message", (e) => e.value.text === "after");
    expect(inbound.events.filter((e) => e.value.providerMessageId === "777001")).toHaveLength(1);
  });

  it("turns a photo's file id into a signed link that serves the file without showing the token", async () => {
    const update = photoUpdate(5010, { caption: "my receipt" });
    await tg.deliverUpdate(bot.token, update);
    const [event] = await inbound.waitFor("the photo", (e) => e.value.senderId === "5010" && e.value.kind === MessageKind.IMAGE);
    const [photo] = event!.value.attachments;
    expect(event!.value.text).toBe("my receipt");
    expect(photo!.url).toMatch(new RegExp(`^${service.url(`/media/${channelId}/`).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}tg-file%3A[^?]+\\?sig=[\\w-]+$`));
    expect(photo!.url).not.toContain(bot.token);
    const res = await fetch(photo!.url);
    expect(res.status).toBe(200);
    const largest = update.message!.photo!.at(-1)!.file_id;
    expect(await res.text()).toBe(`fake bytes of ${largest}`);
    const forged = photo!.url.replace(/sig=[\w-]+/, "sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    expect((await fetch(forged)).status).toBe(403);
  });

  it("refuses a forged secret with 401 and publishes nothing", async () => {
    const res = await tg.deliverUpdate(bot.token, textUpdate(5002, "forged"), { secretToken: "not-the-secret" });
    expect(res.status).toBe(401);
    await tg.deliverUpdate(bot.token, textUpdate(5002, "genuine"));
    await inbound.waitFor("the genuine message", (e) => e.value.text === "genuine");
    expect(inbound.events.some((e) => e.value.text === "forged")).toBe(false);
  });

  it("answers malformed JSON with 400, an oversized body with 413, an unknown channel with 404, an unknown update kind with 200", async () => {
    const secret = { "x-telegram-bot-api-secret-token": tg.webhookOf(bot.token)!.secretToken };
    const url = service.url(`/webhooks/telegram/${channelId}`);
    expect((await postWebhook(url, "{not json", secret)).status).toBe(400);
    expect((await postWebhook(url, JSON.stringify({ update_id: 1, message: { text: "x".repeat(70_000) } }), secret)).status).toBe(413);
    expect((await postWebhook(service.url("/webhooks/telegram/ch_nope"), "{}", secret)).status).toBe(404);
    expect((await postWebhook(url, JSON.stringify({ update_id: 999_999, poll: { id: "1" } }), secret)).status).toBe(200);
  });

  it("turns block and unblock into subscriber status events", async () => {
    await tg.deliverUpdate(bot.token, chatMemberUpdate(5003, true));
    await tg.deliverUpdate(bot.token, chatMemberUpdate(5003, false));
    const events = await blocks.waitFor("block and unblock", (e) => e.value.subscriberId === "5003", 2);
    expect(events.map((e) => e.value.blocked)).toEqual([true, false]);
  });

  it("sends a command with buttons and reports it sent with the provider's id; the log shows both directions", async () => {
    const commandId = await sendCommand(service.running.context.publisher, { projectId, channelId, recipientId: "5001", text: "Choose a size", buttons: [{ text: "XS", payload: "size_xs" }] });
    const [sent] = await statuses.waitFor("sent", (e) => e.value.commandId === commandId && e.value.state === DeliveryState.SENT);
    const call = tg.sentTo(bot.token, "5001").find((s) => s.text === "Choose a size");
    expect(call?.replyMarkup).toEqual({ inline_keyboard: [[{ text: "XS", callback_data: "size_xs" }]] });
    expect(sent!.value).toMatchObject({ recipientId: "5001", providerMessageId: String(call!.messageId), excerpt: "Choose a size", messenger: Messenger.TELEGRAM });
    const log = await waitFor("the log to hold the sent message", async () => {
      const page = await client.listMessages({ channelId, peerId: "5001" }, callAs(projectId));
      return page.messages.find((m) => m.id === commandId && m.state === DeliveryState.SENT) ? page : undefined;
    });
    expect(log.messages.some((m) => m.direction === MessageDirection.INBOUND && m.text.startsWith("/start"))).toBe(true);
  });

  it("waits the seconds a 429 names, then sends; keeps the chat's order", async () => {
    tg.server.script((c) => c.path.endsWith("/sendMessage") && (c.body as { chat_id?: unknown })?.chat_id?.toString() === "5004", { status: 429, body: { ok: false, error_code: 429, description: "Too Many Requests: retry after 2", parameters: { retry_after: 2 } } });
    const first = await sendCommand(service.running.context.publisher, { projectId, channelId, recipientId: "5004", text: "one" });
    const second = await sendCommand(service.running.context.publisher, { projectId, channelId, recipientId: "5004", text: "two" });
    await statuses.waitFor("both sent", (e) => [first, second].includes(e.value.commandId) && e.value.state === DeliveryState.SENT, 2);
    const calls = tg.server.calls.filter((c) => c.path.endsWith("/sendMessage") && (c.body as { chat_id?: unknown }).chat_id?.toString() === "5004");
    expect(calls.map((c) => (c.body as { text: string }).text)).toEqual(["one", "one", "two"]);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(1_950);
    expect(statuses.events.find((e) => e.value.commandId === first && e.value.state === DeliveryState.QUEUED)?.value.error).toContain("Too Many Requests");
  });

  it("does not retry a blocked user: failed, permanent, with Telegram's words", async () => {
    tg.blockChat(bot.token, 5005);
    const commandId = await sendCommand(service.running.context.publisher, { projectId, channelId, recipientId: "5005", text: "hello?" });
    const [failed] = await statuses.waitFor("failed", (e) => e.value.commandId === commandId && e.value.state === DeliveryState.FAILED);
    expect(failed!.value).toMatchObject({ permanent: true, error: "Forbidden: bot was blocked by the user" });
    expect(tg.sentTo(bot.token, "5005")).toHaveLength(0);
  });

  it("retries a burst of 5xx with backoff and then sends", async () => {
    tg.server.script((c) => c.path.endsWith("/sendMessage") && (c.body as { chat_id?: unknown }).chat_id?.toString() === "5006", { status: 502, body: "Bad Gateway" }, 3);
    const commandId = await sendCommand(service.running.context.publisher, { projectId, channelId, recipientId: "5006", text: "eventually" });
    await statuses.waitFor("sent after 5xx", (e) => e.value.commandId === commandId && e.value.state === DeliveryState.SENT);
    expect(tg.server.calls.filter((c) => (c.body as { chat_id?: unknown } | undefined)?.chat_id?.toString() === "5006")).toHaveLength(4);
  });

  it("keeps each chat under Telegram's per-chat limit without a single 429", async () => {
    const before = tg.limitHits;
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await sendCommand(service.running.context.publisher, { projectId, channelId, recipientId: "5007", text: `burst ${i}` }));
    await statuses.waitFor("all six sent", (e) => ids.includes(e.value.commandId) && e.value.state === DeliveryState.SENT, 6, 30_000);
    expect(tg.limitHits).toBe(before);
    expect(tg.sentTo(bot.token, "5007").map((s) => s.text)).toEqual(ids.map((_, i) => `burst ${i}`));
  });

  it("fails a send on a disconnected channel with a clear status and removes the webhook", async () => {
    await client.disconnectChannel({ channelId }, callAs(projectId));
    expect(tg.webhookOf(bot.token)).toBeUndefined();
    const commandId = await sendCommand(service.running.context.publisher, { projectId, channelId, recipientId: "5001", text: "too late" });
    const [failed] = await statuses.waitFor("failed", (e) => e.value.commandId === commandId && e.value.state === DeliveryState.FAILED);
    expect(failed!.value.error).toContain("disconnected");
    expect(failed!.value.permanent).toBe(false);
  });
});
