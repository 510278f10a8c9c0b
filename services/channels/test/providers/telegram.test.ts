import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AttachmentSchema, ButtonSchema, MessageKind, Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { ChannelSetupError, WebhookRejected, type AccountView, type OutboundMessage, type WebhookOutcome } from "../../src/providers/provider";
import { TelegramAdapter } from "../../src/providers/telegram/telegram-adapter";
import { FakeServer, postWebhook } from "../fakes/fake-server";
import {
  callbackUpdate,
  chatMemberUpdate,
  contactUpdate,
  documentUpdate,
  locationUpdate,
  photoUpdate,
  startUpdate,
  TelegramFake,
  textUpdate,
  voiceUpdate,
  type TelegramBotInfo,
} from "../fakes/telegram-fake";

const CHAT = 555_000_111;

/** Stands in for the service's webhook endpoint: hands each request to the adapter and answers as the service would. */
async function startReceiver(adapter: TelegramAdapter, accounts: Map<string, AccountView>) {
  const outcomes: WebhookOutcome[] = [];
  const server = await FakeServer.start(async (call) => {
    const account = accounts.get(call.path.split("/").pop() ?? "");
    if (!account) return { status: 404, body: "no such channel" };
    try {
      const outcome = await adapter.handleWebhook(account, { method: call.method as "POST", headers: call.headers, query: call.query, rawBody: call.raw });
      outcomes.push(outcome);
      return { status: outcome.reply.status, body: outcome.reply.body };
    } catch (err) {
      if (err instanceof WebhookRejected) return { status: err.status, body: err.message };
      throw err;
    }
  });
  return { server, outcomes };
}

function outbound(init: Partial<Omit<OutboundMessage, "attachments" | "buttons">> & { attachments?: MessageInitShape<typeof AttachmentSchema>[]; buttons?: MessageInitShape<typeof ButtonSchema>[] }): OutboundMessage {
  return {
    commandId: "cmd-1",
    recipientId: String(CHAT),
    text: "",
    subject: "",
    ...init,
    attachments: (init.attachments ?? []).map((a) => create(AttachmentSchema, a)),
    buttons: (init.buttons ?? []).map((b) => create(ButtonSchema, b)),
  };
}

describe("TelegramAdapter against the Telegram fake", () => {
  let fake: TelegramFake;
  let adapter: TelegramAdapter;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const accounts = new Map<string, AccountView>();
  let channelNo = 0;

  beforeAll(async () => {
    fake = await TelegramFake.start();
    adapter = new TelegramAdapter({ apiBaseUrl: fake.baseUrl, timeoutMs: 2_000 });
    receiver = await startReceiver(adapter, accounts);
  });
  afterAll(async () => {
    await receiver.server.close();
    await fake.close();
  });

  /** A fresh bot connected through the adapter, so limits and chat states never leak between tests. */
  async function connectedBot(): Promise<{ bot: TelegramBotInfo; account: AccountView; webhookUrl: string }> {
    const bot = fake.addBot();
    const channelId = `ch${++channelNo}`;
    const webhookUrl = `${receiver.server.baseUrl}/webhooks/telegram/${channelId}`;
    const result = await adapter.connect({ channelId, settings: {}, secrets: { botToken: bot.token }, webhookUrl });
    const account: AccountView = { id: channelId, projectId: "p1", messenger: Messenger.TELEGRAM, settings: result.settings, secrets: result.secrets };
    accounts.set(channelId, account);
    return { bot, account, webhookUrl };
  }

  async function deliver(bot: TelegramBotInfo, update: Parameters<TelegramFake["deliverUpdate"]>[1]) {
    const before = receiver.outcomes.length;
    const answer = await fake.deliverUpdate(bot.token, update);
    expect(answer.status).toBe(200);
    expect(receiver.outcomes).toHaveLength(before + 1);
    return { ...answer, outcome: receiver.outcomes[before]! };
  }

  describe("connect / disconnect", () => {
    it("checks the token with getMe and registers the webhook with a fresh secret", async () => {
      const bot = fake.addBot({ username: "acme_support_bot" });
      const webhookUrl = `${receiver.server.baseUrl}/webhooks/telegram/x`;
      const result = await adapter.connect({ channelId: "x", settings: {}, secrets: { botToken: ` ${bot.token}\n` }, webhookUrl });

      expect(result.accountLabel).toBe("@acme_support_bot");
      expect(result.settings).toEqual({ botId: String(bot.id), botUsername: "acme_support_bot", webhookUrl });
      expect(result.secrets.botToken).toBe(bot.token);
      expect(result.secrets.webhookSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(fake.webhookOf(bot.token)).toEqual({ url: webhookUrl, secretToken: result.secrets.webhookSecret });
      const [setWebhook] = fake.server.callsTo(`/bot${bot.token}/setWebhook`);
      expect(setWebhook?.body).toEqual({ url: webhookUrl, secret_token: result.secrets.webhookSecret, allowed_updates: ["message", "callback_query", "my_chat_member"] });
      expect(fake.server.callsTo(`/bot${bot.token}/getMe`)).toHaveLength(1);
    });

    it("generates a different webhook secret on every connect", async () => {
      const bot = fake.addBot();
      const input = { channelId: "x", settings: {}, secrets: { botToken: bot.token }, webhookUrl: `${receiver.server.baseUrl}/webhooks/telegram/x` };
      const first = await adapter.connect(input);
      const second = await adapter.connect(input);
      expect(first.secrets.webhookSecret).not.toBe(second.secrets.webhookSecret);
      expect(fake.webhookOf(bot.token)?.secretToken).toBe(second.secrets.webhookSecret);
    });

    it("names the bot token field when the token is missing, malformed or refused", async () => {
      const input = { channelId: "x", settings: {}, webhookUrl: "https://hooks.example.com/t" };
      const missing = adapter.connect({ ...input, secrets: {} });
      await expect(missing).rejects.toBeInstanceOf(ChannelSetupError);
      await expect(missing).rejects.toMatchObject({ field: "telegram.bot_token" });
      await expect(adapter.connect({ ...input, secrets: { botToken: "not a token" } })).rejects.toMatchObject({ field: "telegram.bot_token" });

      const refused = adapter.connect({ ...input, secrets: { botToken: "123456:AAthisBotDoesNotExist_xxxxxxxxxxxxxx" } });
      await expect(refused).rejects.toBeInstanceOf(ChannelSetupError);
      await expect(refused).rejects.toMatchObject({ field: "telegram.bot_token", message: expect.stringContaining("Telegram refused the bot token (Unauthorized)") });
    });

    it("names the webhook field with Telegram's description when setWebhook is refused", async () => {
      const bot = fake.addBot();
      const attempt = adapter.connect({ channelId: "x", settings: {}, secrets: { botToken: bot.token }, webhookUrl: "ftp://hooks.example.com/t" });
      await expect(attempt).rejects.toBeInstanceOf(ChannelSetupError);
      await expect(attempt).rejects.toMatchObject({ field: "telegram.webhook", message: "Bad Request: bad webhook: An HTTPS URL must be provided for webhook" });
      expect(fake.webhookOf(bot.token)).toBeUndefined();
    });

    it("deletes the webhook on disconnect and swallows failures", async () => {
      const { bot, account } = await connectedBot();
      await adapter.disconnect(account);
      expect(fake.webhookOf(bot.token)).toBeUndefined();
      expect(fake.server.callsTo(`/bot${bot.token}/deleteWebhook`)).toHaveLength(1);

      fake.server.dropConnections((c) => c.path === `/bot${bot.token}/deleteWebhook`);
      await expect(adapter.disconnect(account)).resolves.toBeUndefined();
      await expect(adapter.disconnect({ ...account, secrets: { ...account.secrets, botToken: "1:AArevoked" } })).resolves.toBeUndefined();
    });

    it("leaves the webhook alone on disconnect when the same bot was connected again as a newer channel", async () => {
      const bot = fake.addBot();
      const older = await adapter.connect({ channelId: "old", settings: {}, secrets: { botToken: bot.token }, webhookUrl: `${receiver.server.baseUrl}/webhooks/telegram/old` });
      const newer = await adapter.connect({ channelId: "new", settings: {}, secrets: { botToken: bot.token }, webhookUrl: `${receiver.server.baseUrl}/webhooks/telegram/new` });
      await adapter.disconnect({ id: "old", projectId: "p", messenger: Messenger.TELEGRAM, settings: older.settings, secrets: older.secrets });
      expect(fake.webhookOf(bot.token)).toEqual({ url: `${receiver.server.baseUrl}/webhooks/telegram/new`, secretToken: newer.secrets.webhookSecret });
      expect(fake.server.callsTo(`/bot${bot.token}/deleteWebhook`)).toHaveLength(0);
    });
  });

  describe("webhook verification", () => {
    it("rejects a wrong or missing secret header with 401 and publishes nothing", async () => {
      const { bot } = await connectedBot();
      const before = receiver.outcomes.length;
      const forged = await fake.deliverUpdate(bot.token, textUpdate(CHAT, "hi"), { secretToken: "forged_secret" });
      expect(forged.status).toBe(401);
      const missing = await fake.deliverUpdate(bot.token, textUpdate(CHAT, "hi"), { secretToken: null });
      expect(missing.status).toBe(401);
      expect(receiver.outcomes).toHaveLength(before);
    });

    it("rejects a secret that differs only in length, and an account without a secret", () => {
      const account: AccountView = { id: "c", projectId: "p", messenger: Messenger.TELEGRAM, settings: {}, secrets: { botToken: "1:AA", webhookSecret: "abc" } };
      const request = (secret: string) => ({ method: "POST" as const, headers: { "x-telegram-bot-api-secret-token": secret }, query: {}, rawBody: Buffer.from('{"update_id":1}') });
      expect(() => adapter.handleWebhook(account, request("abcd"))).toThrow(expect.objectContaining({ status: 401 }));
      expect(() => adapter.handleWebhook({ ...account, secrets: { botToken: "1:AA" } }, request(""))).toThrow(expect.objectContaining({ status: 401 }));
      expect(() => adapter.handleWebhook(account, { ...request("abc"), method: "GET" })).toThrow(expect.objectContaining({ status: 400 }));
    });

    it("rejects malformed JSON and bodies that are not updates with 400", async () => {
      const { account, webhookUrl } = await connectedBot();
      const headers = { "x-telegram-bot-api-secret-token": account.secrets.webhookSecret! };
      expect((await postWebhook(webhookUrl, "{not json", headers)).status).toBe(400);
      expect((await postWebhook(webhookUrl, '{"message":{}}', headers)).status).toBe(400);
    });
  });

  describe("inbound updates", () => {
    it("normalizes a text message with the sender's profile, keyed by the update id", async () => {
      const { bot } = await connectedBot();
      const update = textUpdate(CHAT, "Hello there", { first_name: "Ivan", last_name: "Sidorov", username: "ivan_s", language_code: "en" });
      const { outcome, updateId } = await deliver(bot, update);
      expect(outcome.reply).toEqual({ status: 200, body: "ok" });
      expect(outcome.messages).toEqual([
        {
          kind: MessageKind.TEXT,
          text: "Hello there",
          providerMessageId: String(updateId),
          senderId: String(CHAT),
          sender: { firstName: "Ivan", lastName: "Sidorov", username: "ivan_s", language: "en", profileUrl: "https://t.me/ivan_s" },
          sentAt: timestampFromDate(new Date(update.message!.date * 1000)),
        },
      ]);
    });

    it("gives a redelivered update the same provider message id", async () => {
      const { bot } = await connectedBot();
      const first = await deliver(bot, textUpdate(CHAT, "once"));
      const again = await deliver(bot, { ...textUpdate(CHAT, "once"), update_id: first.updateId });
      expect(again.outcome.messages[0]?.providerMessageId).toBe(String(first.updateId));
      expect(first.outcome.messages[0]?.providerMessageId).toBe(String(first.updateId));
      const next = await deliver(bot, textUpdate(CHAT, "twice"));
      expect(next.updateId).toBe(first.updateId + 1);
    });

    it("takes the deep-link payload from /start and keeps the text as sent", async () => {
      const { bot } = await connectedBot();
      const withPayload = await deliver(bot, startUpdate(CHAT, "utm_source-vk_campaign-spring"));
      expect(withPayload.outcome.messages[0]).toMatchObject({ kind: MessageKind.TEXT, text: "/start utm_source-vk_campaign-spring", startPayload: "utm_source-vk_campaign-spring" });
      const bare = await deliver(bot, startUpdate(CHAT));
      expect(bare.outcome.messages[0]).toMatchObject({ kind: MessageKind.TEXT, text: "/start", startPayload: "" });
      const notStart = await deliver(bot, textUpdate(CHAT, "/started it"));
      expect(notStart.outcome.messages[0]).not.toHaveProperty("startPayload");
    });

    it("takes the largest photo size as a tg-file reference, with the caption as text", async () => {
      const { bot, account } = await connectedBot();
      const update = photoUpdate(CHAT, { caption: "my receipt", fileId: "AgACAgIAAxPHOTO_big" });
      const { outcome } = await deliver(bot, update);
      expect(outcome.messages[0]).toMatchObject({ kind: MessageKind.IMAGE, text: "my receipt", senderId: String(CHAT) });
      expect(outcome.messages[0]?.attachments).toEqual([{ kind: MessageKind.IMAGE, url: "tg-file:AgACAgIAAxPHOTO_big", mimeType: "image/jpeg", fileName: "", sizeBytes: 81_519n }]);

      const url = await adapter.fileDownloadUrl(account, "tg-file:AgACAgIAAxPHOTO_big");
      expect(url).toMatch(new RegExp(`^${fake.baseUrl}/file/bot${bot.token}/photos/file_\\d+\\.jpg$`));
      const download = await fetch(url);
      expect(download.status).toBe(200);
      await expect(download.text()).resolves.toBe("fake bytes of AgACAgIAAxPHOTO_big");
      await expect(adapter.fileDownloadUrl(account, "tg-file:nope")).rejects.toThrow("Telegram could not give the file: Bad Request: invalid file_id");
    });

    it("normalizes a voice note as audio", async () => {
      const { bot } = await connectedBot();
      const { outcome } = await deliver(bot, voiceUpdate(CHAT, { fileId: "AwACVOICE1", fileSize: 4_321 }));
      expect(outcome.messages[0]).toMatchObject({ kind: MessageKind.AUDIO, text: "" });
      expect(outcome.messages[0]?.attachments).toEqual([{ kind: MessageKind.AUDIO, url: "tg-file:AwACVOICE1", mimeType: "audio/ogg", fileName: "", sizeBytes: 4_321n }]);
    });

    it("normalizes a document with its name, type and size", async () => {
      const { bot } = await connectedBot();
      const { outcome } = await deliver(bot, documentUpdate(CHAT, { fileId: "BQACDOC1", fileName: "contract.docx", mimeType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", fileSize: 20_480, caption: "signed" }));
      expect(outcome.messages[0]).toMatchObject({ kind: MessageKind.DOCUMENT, text: "signed" });
      expect(outcome.messages[0]?.attachments).toEqual([
        { kind: MessageKind.DOCUMENT, url: "tg-file:BQACDOC1", mimeType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", fileName: "contract.docx", sizeBytes: 20_480n },
      ]);
    });

    it("takes a shared contact's phone and a shared location", async () => {
      const { bot } = await connectedBot();
      const contact = await deliver(bot, contactUpdate(CHAT, "+79001234567"));
      expect(contact.outcome.messages[0]).toMatchObject({ kind: MessageKind.CONTACT, text: "", sharedPhone: "+79001234567", senderId: String(CHAT) });
      const location = await deliver(bot, locationUpdate(CHAT, 55.751244, 37.618423));
      expect(location.outcome.messages[0]).toMatchObject({ kind: MessageKind.LOCATION, text: "", location: { latitude: 55.751244, longitude: 37.618423 } });
    });

    it("turns a pressed button into a BUTTON message with its label and answers the callback query", async () => {
      const { bot } = await connectedBot();
      const update = callbackUpdate(CHAT, "menu:prices", { label: "Prices", from: { first_name: "Oleg", username: "oleg" } });
      const { outcome, updateId } = await deliver(bot, update);
      expect(outcome.messages).toEqual([
        {
          kind: MessageKind.BUTTON,
          text: "Prices",
          buttonPayload: "menu:prices",
          providerMessageId: String(updateId),
          senderId: String(CHAT),
          sender: { firstName: "Oleg", lastName: "Petrova", username: "oleg", language: "ru", profileUrl: "https://t.me/oleg" },
          sentAt: expect.objectContaining({ seconds: expect.any(BigInt) }),
        },
      ]);
      const [answer] = await fake.server.waitForCalls(`/bot${bot.token}/answerCallbackQuery`, 1);
      expect(answer?.body).toEqual({ callback_query_id: update.callback_query!.id });
    });

    it("does not fail the webhook when answering the callback query fails", async () => {
      const { bot } = await connectedBot();
      fake.server.dropConnections((c) => c.path === `/bot${bot.token}/answerCallbackQuery`);
      const { outcome } = await deliver(bot, callbackUpdate(CHAT, "yes"));
      expect(outcome.messages[0]).toMatchObject({ kind: MessageKind.BUTTON, buttonPayload: "yes", text: "Button yes" });
      await fake.server.waitForCalls(`/bot${bot.token}/answerCallbackQuery`, 1);
    });

    it("reports blocking and unblocking the bot as subscriber statuses", async () => {
      const { bot } = await connectedBot();
      const blockedUpdate = chatMemberUpdate(CHAT, true);
      const blocked = await deliver(bot, blockedUpdate);
      expect(blocked.outcome.messages).toEqual([]);
      expect(blocked.outcome.subscriberStatuses).toEqual([
        { subscriberId: String(CHAT), blocked: true, providerEventId: String(blocked.updateId), at: new Date(blockedUpdate.my_chat_member!.date * 1000) },
      ]);
      const unblocked = await deliver(bot, chatMemberUpdate(CHAT, false));
      expect(unblocked.outcome.subscriberStatuses).toEqual([expect.objectContaining({ subscriberId: String(CHAT), blocked: false, providerEventId: String(unblocked.updateId) })]);
    });

    it("acknowledges update kinds it does not handle and names them", async () => {
      const { bot } = await connectedBot();
      const edited = await deliver(bot, { edited_message: { ...textUpdate(CHAT, "typo fixed").message!, edit_date: 1 } });
      expect(edited.outcome).toMatchObject({ reply: { status: 200 }, messages: [], subscriberStatuses: [], ignored: ["edited_message"] });
      const sticker = await deliver(bot, { message: { ...textUpdate(CHAT, "x").message!, text: undefined, sticker: { file_id: "CAACsticker", file_unique_id: "AgAD1" } } });
      expect(sticker.outcome).toMatchObject({ messages: [], ignored: ["message.sticker"] });
    });
  });

  describe("send", () => {
    it("sends text with an inline keyboard, one button per row", async () => {
      const { bot, account } = await connectedBot();
      const result = await adapter.send(
        account,
        outbound({
          text: "Pick one",
          buttons: [
            { text: "Yes", payload: "answer:yes" },
            { text: "Our site", url: "https://example.com/prices" },
          ],
        }),
      );
      const [call] = fake.server.callsTo(`/bot${bot.token}/sendMessage`);
      expect(call?.body).toEqual({
        chat_id: String(CHAT),
        text: "Pick one",
        reply_markup: { inline_keyboard: [[{ text: "Yes", callback_data: "answer:yes" }], [{ text: "Our site", url: "https://example.com/prices" }]] },
      });
      const [sent] = fake.sentTo(bot.token, CHAT);
      expect(result).toEqual({ ok: true, providerMessageId: String(sent?.messageId) });
    });

    it("sends a single photo with the text as its caption and the keyboard in one call", async () => {
      const { bot, account } = await connectedBot();
      const result = await adapter.send(
        account,
        outbound({ text: "Our new menu", attachments: [{ kind: MessageKind.IMAGE, url: "https://cdn.example.com/menu.jpg" }], buttons: [{ text: "Order", payload: "order" }] }),
      );
      expect(result.ok).toBe(true);
      expect(fake.server.callsTo(`/bot${bot.token}/send`).map((c) => c.body)).toEqual([
        { chat_id: String(CHAT), photo: "https://cdn.example.com/menu.jpg", caption: "Our new menu", reply_markup: { inline_keyboard: [[{ text: "Order", callback_data: "order" }]] } },
      ]);
    });

    it("sends several attachments first and the text with the keyboard last", async () => {
      const { bot, account } = await connectedBot();
      const longText = "x".repeat(1_500);
      const result = await adapter.send(
        account,
        outbound({
          text: longText,
          attachments: [
            { kind: MessageKind.VIDEO, url: "https://cdn.example.com/a.mp4" },
            { kind: MessageKind.DOCUMENT, url: "https://cdn.example.com/price.pdf" },
          ],
          buttons: [{ text: "Ok", payload: "ok" }],
        }),
      );
      const sent = fake.sentTo(bot.token, CHAT);
      expect(sent.map((s) => [s.method, s.media, s.text, s.replyMarkup])).toEqual([
        ["sendVideo", "https://cdn.example.com/a.mp4", undefined, undefined],
        ["sendDocument", "https://cdn.example.com/price.pdf", undefined, undefined],
        ["sendMessage", undefined, longText, { inline_keyboard: [[{ text: "Ok", callback_data: "ok" }]] }],
      ]);
      expect(result).toEqual({ ok: true, providerMessageId: String(sent[2]?.messageId) });
    });

    it("sends text too long for a caption separately, after the attachment", async () => {
      const { bot, account } = await connectedBot();
      const longText = "z".repeat(1_025);
      const result = await adapter.send(account, outbound({ text: longText, attachments: [{ kind: MessageKind.IMAGE, url: "https://cdn.example.com/a.jpg" }], buttons: [{ text: "Ok", payload: "ok" }] }));
      expect(result.ok).toBe(true);
      expect(fake.server.callsTo(`/bot${bot.token}/send`).map((c) => c.body)).toEqual([
        { chat_id: String(CHAT), photo: "https://cdn.example.com/a.jpg" },
        { chat_id: String(CHAT), text: longText, reply_markup: { inline_keyboard: [[{ text: "Ok", callback_data: "ok" }]] } },
      ]);
    });

    it("re-sends a received file by its Telegram file id", async () => {
      const { bot, account } = await connectedBot();
      await deliver(bot, voiceUpdate(CHAT, { fileId: "AwACVOICEfwd" }));
      const result = await adapter.send(account, outbound({ attachments: [{ kind: MessageKind.AUDIO, url: "tg-file:AwACVOICEfwd" }] }));
      expect(result.ok).toBe(true);
      expect(fake.server.callsTo(`/bot${bot.token}/sendAudio`).map((c) => c.body)).toEqual([{ chat_id: String(CHAT), audio: "AwACVOICEfwd" }]);
    });

    it("rejects a payload over 64 bytes naming the button, without calling Telegram", async () => {
      const { bot, account } = await connectedBot();
      const result = await adapter.send(account, outbound({ text: "Pick", buttons: [{ text: "Ок", payload: "ж".repeat(33) }] }));
      expect(result).toEqual({ ok: false, kind: "rejected", error: 'Button "Ок": its payload is 66 bytes, Telegram allows at most 64' });
      expect(fake.server.callsTo(`/bot${bot.token}/send`)).toHaveLength(0);
    });

    it("rejects a message with nothing to send", async () => {
      const { account } = await connectedBot();
      await expect(adapter.send(account, outbound({ text: "  " }))).resolves.toMatchObject({ ok: false, kind: "rejected" });
    });

    it("maps a 429 with retry_after to rate_limited with the wait in milliseconds", async () => {
      const { bot, account } = await connectedBot();
      fake.server.script((c) => c.path === `/bot${bot.token}/sendMessage`, {
        status: 429,
        body: { ok: false, error_code: 429, description: "Too Many Requests: retry after 3", parameters: { retry_after: 3 } },
      });
      await expect(adapter.send(account, outbound({ text: "hi" }))).resolves.toEqual({ ok: false, kind: "rate_limited", retryAfterMs: 3000, error: "Too Many Requests: retry after 3" });
    });

    it("maps a blocked bot and a deactivated user to permanent with Telegram's words", async () => {
      const { bot, account } = await connectedBot();
      fake.blockChat(bot.token, CHAT);
      await expect(adapter.send(account, outbound({ text: "hi" }))).resolves.toEqual({ ok: false, kind: "permanent", error: "Forbidden: bot was blocked by the user" });
      fake.unblockChat(bot.token, CHAT);
      fake.server.script((c) => c.path === `/bot${bot.token}/sendMessage`, { status: 403, body: { ok: false, error_code: 403, description: "Forbidden: user is deactivated" } });
      await expect(adapter.send(account, outbound({ text: "hi" }))).resolves.toEqual({ ok: false, kind: "permanent", error: "Forbidden: user is deactivated" });
    });

    it("maps chat not found to permanent and other bad requests to rejected", async () => {
      const { bot, account } = await connectedBot();
      fake.missingChat(bot.token, 42);
      await expect(adapter.send(account, outbound({ recipientId: "42", text: "hi" }))).resolves.toEqual({ ok: false, kind: "permanent", error: "Bad Request: chat not found" });
      await expect(adapter.send(account, outbound({ text: "y".repeat(5_000) }))).resolves.toEqual({ ok: false, kind: "rejected", error: "Bad Request: message is too long" });
    });

    it("maps a refused token to rejected, blaming the channel", async () => {
      const { account } = await connectedBot();
      const revoked = { ...account, secrets: { ...account.secrets, botToken: "999:AArevokedrevokedrevokedrevokedrevok" } };
      await expect(adapter.send(revoked, outbound({ text: "hi" }))).resolves.toEqual({ ok: false, kind: "rejected", error: "Telegram refused the bot token (401): reconnect the channel" });
    });

    it("maps 5xx answers and a dropped connection to transient", async () => {
      const { bot, account } = await connectedBot();
      const sendMessage = (c: { path: string }) => c.path === `/bot${bot.token}/sendMessage`;
      fake.server.script(sendMessage, { status: 500, body: { ok: false, error_code: 500, description: "Internal Server Error" } });
      await expect(adapter.send(account, outbound({ text: "hi" }))).resolves.toEqual({ ok: false, kind: "transient", error: "Internal Server Error" });
      fake.server.script(sendMessage, { status: 502, body: "<html>502 Bad Gateway</html>" });
      await expect(adapter.send(account, outbound({ text: "hi" }))).resolves.toEqual({ ok: false, kind: "transient", error: "Telegram answered HTTP 502" });
      fake.server.dropConnections(sendMessage);
      await expect(adapter.send(account, outbound({ text: "hi" }))).resolves.toMatchObject({ ok: false, kind: "transient", error: expect.stringContaining("127.0.0.1") });
      expect(fake.sentTo(bot.token, CHAT)).toHaveLength(0);
    });

    it("hits the fake's own per-chat limit on the fourth immediate send to one chat", async () => {
      const { bot, account } = await connectedBot();
      const hitsBefore = fake.limitHits;
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await adapter.send(account, outbound({ text: `n${i}` })));
      expect(results.slice(0, 3).every((r) => r.ok)).toBe(true);
      expect(results[3]).toEqual({ ok: false, kind: "rate_limited", retryAfterMs: 1000, error: "Too Many Requests: retry after 1" });
      expect(fake.limitHits).toBe(hitsBefore + 1);
      // Another chat of the same bot has its own allowance.
      await expect(adapter.send(account, outbound({ recipientId: "777", text: "other chat" }))).resolves.toMatchObject({ ok: true });
      expect(fake.sentTo(bot.token, CHAT).map((s) => s.text)).toEqual(["n0", "n1", "n2"]);
    });
  });
});
