import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MessageKind, Messenger, type Attachment, type Button } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { ChannelSetupError, WebhookRejected, type AccountView, type OutboundMessage, type WebhookOutcome } from "../../src/providers/provider";
import { randomIdFor, VkAdapter } from "../../src/providers/vk/vk-adapter";
import { FakeServer, type FakeResponse } from "../fakes/fake-server";
import { VkFake, type VkFakeGroup, type VkMessageNewObject } from "../fakes/vk-fake";

const USER = 512_345_678;

function accountFor(group: VkFakeGroup): AccountView {
  return {
    id: `acc-${group.groupId}`,
    projectId: "p1",
    messenger: Messenger.VK,
    settings: { groupId: String(group.groupId), groupName: group.name },
    secrets: { accessToken: group.accessToken, secret: group.secret ?? "", confirmationCode: group.confirmationCode },
  };
}

function outbound(commandId: string, text: string, extra: { buttons?: Partial<Button>[]; attachments?: Partial<Attachment>[]; recipientId?: string } = {}): OutboundMessage {
  return {
    commandId,
    recipientId: extra.recipientId ?? String(USER),
    text,
    attachments: (extra.attachments ?? []) as Attachment[],
    buttons: (extra.buttons ?? []).map((b) => ({ text: "", payload: "", url: "", ...b })) as Button[],
    subject: "",
  };
}

const sentAtOf = (object: VkMessageNewObject) => timestampFromDate(new Date(object.message.date * 1000));

describe("VK adapter against the VK fake", () => {
  let vk: VkFake;
  let adapter: VkAdapter;
  let group: VkFakeGroup;
  let account: AccountView;
  // The service's webhook endpoint stand-in: hands each request to the adapter and answers with its reply.
  let receiver: FakeServer;
  let outcomes: WebhookOutcome[];
  let webhookUrl: string;

  beforeAll(async () => {
    vk = await VkFake.start();
    adapter = new VkAdapter({ apiBaseUrl: vk.baseUrl, timeoutMs: 2_000 });
    receiver = await FakeServer.start(async (call): Promise<FakeResponse> => {
      try {
        const outcome = await adapter.handleWebhook(account, { method: "POST", headers: call.headers, query: call.query, rawBody: call.raw });
        outcomes.push(outcome);
        const headers: Record<string, string> = outcome.reply.contentType ? { "content-type": outcome.reply.contentType } : {};
        return { status: outcome.reply.status, body: outcome.reply.body, headers };
      } catch (err) {
        if (err instanceof WebhookRejected) return { status: err.status, body: err.message };
        throw err;
      }
    });
    webhookUrl = `${receiver.baseUrl}/webhooks/vk`;
  });

  afterAll(async () => {
    await receiver.close();
    await vk.close();
  });

  beforeEach(() => {
    // A fresh community per test keeps the per-token rate limit and the random_id memory apart.
    group = vk.addGroup({ name: "Coffee Lovers" });
    account = accountFor(group);
    outcomes = [];
  });

  describe("connect", () => {
    const input = (settings: Record<string, string>, secrets: Record<string, string>) => ({ channelId: "ch1", settings, secrets, webhookUrl: "https://crm.example/webhooks/vk/ch1" });

    it("checks the token with groups.getById and labels the channel with the community name", async () => {
      const result = await adapter.connect(input({ groupId: String(group.groupId) }, { accessToken: group.accessToken, secret: group.secret ?? "", confirmationCode: group.confirmationCode }));
      expect(result).toEqual({
        settings: { groupId: String(group.groupId), groupName: "Coffee Lovers" },
        secrets: { accessToken: group.accessToken, secret: group.secret, confirmationCode: group.confirmationCode },
        accountLabel: "Coffee Lovers",
      });
      const calls = vk.server.callsTo("/method/groups.getById").filter((c) => (c.body as Record<string, string>).access_token === group.accessToken);
      expect(calls).toHaveLength(1);
      expect(calls[0]?.method).toBe("POST");
      expect(calls[0]?.body).toEqual({ access_token: group.accessToken, v: "5.199" });
    });

    it.each([
      [{ groupId: "" }, { accessToken: "t", secret: "s", confirmationCode: "c" }, "vk.group_id"],
      [{ groupId: "club123" }, { accessToken: "t", secret: "s", confirmationCode: "c" }, "vk.group_id"],
      [{ groupId: "123" }, { accessToken: " ", secret: "s", confirmationCode: "c" }, "vk.access_token"],
      [{ groupId: "123" }, { accessToken: "t", confirmationCode: "c" }, "vk.secret"],
      [{ groupId: "123" }, { accessToken: "t", secret: "s" }, "vk.confirmation_code"],
    ])("refuses incomplete settings %j / %j before calling VK (field %s)", async (settings, secrets, field) => {
      const before = vk.server.calls.length;
      const error = await adapter.connect(input(settings, secrets)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ChannelSetupError);
      expect((error as ChannelSetupError).field).toBe(field);
      expect(vk.server.calls.length).toBe(before);
    });

    it("names the access token when VK refuses it (error 5)", async () => {
      const error = await adapter.connect(input({ groupId: String(group.groupId) }, { accessToken: "vk1.a.revoked", secret: "s", confirmationCode: "c" })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ChannelSetupError);
      expect(error).toMatchObject({ field: "vk.access_token", message: "VK refused the access token: User authorization failed: invalid access_token (4)." });
    });

    it("names the community id when the token belongs to another community", async () => {
      const other = vk.addGroup({ name: "Tea Club" });
      const error = await adapter.connect(input({ groupId: String(group.groupId) }, { accessToken: other.accessToken, secret: "s", confirmationCode: "c" })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ChannelSetupError);
      expect((error as ChannelSetupError).field).toBe("vk.group_id");
      expect((error as Error).message).toContain(`belongs to community ${other.groupId} (Tea Club), not ${group.groupId}`);
    });
  });

  describe("webhooks", () => {
    it("answers the confirmation request with the confirmation code as plain text", async () => {
      const answer = await vk.confirm(webhookUrl, group.groupId);
      expect(answer).toEqual({ status: 200, text: group.confirmationCode });
      expect(receiver.calls.at(-1)?.body).toEqual({ type: "confirmation", group_id: group.groupId, secret: group.secret });
      expect(outcomes[0]).toMatchObject({ messages: [], subscriberStatuses: [], ignored: [] });
    });

    it("refuses a confirmation carrying another secret key", async () => {
      group.secret = "not-the-secret";
      const answer = await vk.confirm(webhookUrl, group.groupId);
      expect(answer.status).toBe(403);
      expect(answer.text).not.toContain(group.confirmationCode);
    });

    it.each([
      ["a wrong", () => "0123456789abcdef"],
      ["a truncated", () => (group.secret ?? "").slice(0, 4)],
      ["no", () => null],
    ])("refuses an event with %s secret key (403) and publishes nothing", async (_what, secret) => {
      const answer = await vk.deliver(webhookUrl, group.groupId, "message_new", vk.messageNew(USER, "hi"), { secret: secret() });
      expect(answer.status).toBe(403);
      expect(outcomes).toHaveLength(0);
    });

    it("refuses an event for another community (403)", async () => {
      const other = vk.addGroup({ secret: group.secret });
      const answer = await vk.deliver(webhookUrl, other.groupId, "message_new", vk.messageNew(USER, "hi"));
      expect(answer).toMatchObject({ status: 403 });
      expect(answer.text).toContain(`community ${other.groupId}`);
    });

    it("refuses a body that is not JSON (400)", async () => {
      const res = await fetch(webhookUrl, { method: "POST", body: "{type: message_new", headers: { "content-type": "application/json" } });
      expect(res.status).toBe(400);
    });

    it("normalizes a text message and answers the literal ok", async () => {
      const object = vk.messageNew(USER, "Привет!");
      const answer = await vk.deliver(webhookUrl, group.groupId, "message_new", object);
      expect(answer).toMatchObject({ status: 200, text: "ok" });
      expect(outcomes[0]?.reply).toEqual({ status: 200, body: "ok", contentType: "text/plain" });
      expect(outcomes[0]?.messages).toEqual([
        { senderId: String(USER), providerMessageId: String(object.message.id), kind: MessageKind.TEXT, text: "Привет!", attachments: [], sentAt: sentAtOf(object) },
      ]);
    });

    it("keeps the provider message id stable when VK redelivers the event", async () => {
      const object = vk.messageNew(USER, "again");
      const first = await vk.deliver(webhookUrl, group.groupId, "message_new", object);
      await vk.deliver(webhookUrl, group.groupId, "message_new", object, { eventId: first.eventId });
      expect(outcomes.map((o) => o.messages[0]?.providerMessageId)).toEqual([String(object.message.id), String(object.message.id)]);
    });

    it("takes the largest size of a photo", async () => {
      const object = vk.photo(USER, { text: "look" });
      await vk.deliver(webhookUrl, group.groupId, "message_new", object);
      const photoId = (object.message.attachments[0] as { photo: { id: number } }).photo.id;
      expect(outcomes[0]?.messages[0]).toEqual({
        senderId: String(USER),
        providerMessageId: String(object.message.id),
        kind: MessageKind.IMAGE,
        text: "look",
        attachments: [{ kind: MessageKind.IMAGE, url: `https://sun9-1.userapi.com/impg/photo${photoId}.jpg?size=1280x960`, mimeType: "image/jpeg" }],
        sentAt: sentAtOf(object),
      });
    });

    it("normalizes a document with its title and size", async () => {
      const object = vk.doc(USER, { title: "invoice.pdf", size: 48_213, url: "https://vk.com/doc1_2?hash=h&dl=x" });
      await vk.deliver(webhookUrl, group.groupId, "message_new", object);
      expect(outcomes[0]?.messages[0]).toMatchObject({
        kind: MessageKind.DOCUMENT,
        text: "",
        attachments: [{ kind: MessageKind.DOCUMENT, url: "https://vk.com/doc1_2?hash=h&dl=x", mimeType: "application/pdf", fileName: "invoice.pdf", sizeBytes: 48_213n }],
      });
    });

    it("normalizes a voice message to its mp3 link, or the ogg one when there is no mp3", async () => {
      await vk.deliver(webhookUrl, group.groupId, "message_new", vk.audioMessage(USER, { linkMp3: "https://psv4.userapi.com/a.mp3" }));
      await vk.deliver(webhookUrl, group.groupId, "message_new", vk.audioMessage(USER, { linkMp3: "", linkOgg: "https://psv4.userapi.com/a.ogg" }));
      expect(outcomes.map((o) => [o.messages[0]?.kind, o.messages[0]?.attachments])).toEqual([
        [MessageKind.AUDIO, [{ kind: MessageKind.AUDIO, url: "https://psv4.userapi.com/a.mp3", mimeType: "audio/mpeg" }]],
        [MessageKind.AUDIO, [{ kind: MessageKind.AUDIO, url: "https://psv4.userapi.com/a.ogg", mimeType: "audio/ogg" }]],
      ]);
    });

    it("links a video to its VK page and a sticker to its largest image", async () => {
      await vk.deliver(webhookUrl, group.groupId, "message_new", vk.video(USER, { ownerId: -77, id: 456239017 }));
      await vk.deliver(webhookUrl, group.groupId, "message_new", vk.sticker(USER, 9014));
      expect(outcomes[0]?.messages[0]).toMatchObject({ kind: MessageKind.VIDEO, attachments: [{ kind: MessageKind.VIDEO, url: "https://vk.com/video-77_456239017" }] });
      expect(outcomes[1]?.messages[0]).toMatchObject({ kind: MessageKind.IMAGE, attachments: [{ kind: MessageKind.IMAGE, url: "https://vk.com/sticker/1-9014-512", mimeType: "image/png" }] });
    });

    it("normalizes a shared location", async () => {
      const object = vk.geo(USER, 55.751244, 37.618423);
      await vk.deliver(webhookUrl, group.groupId, "message_new", object);
      expect(outcomes[0]?.messages[0]).toEqual({
        senderId: String(USER),
        providerMessageId: String(object.message.id),
        kind: MessageKind.LOCATION,
        text: "",
        attachments: [],
        location: { latitude: 55.751244, longitude: 37.618423 },
        sentAt: sentAtOf(object),
      });
    });

    it("gives back the payload of a button the adapter sent, and the label as text", async () => {
      await adapter.send(account, outbound("cmd-menu", "Pick one", { buttons: [{ text: "Espresso", payload: "order:espresso" }] }));
      const pressed = vk.sentTo(group.groupId, USER)[0]?.keyboard?.buttons[0]?.[0]?.action.payload as string;
      const object = vk.buttonPress(USER, pressed);
      await vk.deliver(webhookUrl, group.groupId, "message_new", object);
      expect(outcomes[0]?.messages[0]).toEqual({
        senderId: String(USER),
        providerMessageId: String(object.message.id),
        kind: MessageKind.BUTTON,
        text: "Espresso",
        attachments: [],
        buttonPayload: "order:espresso",
        sentAt: sentAtOf(object),
      });
    });

    it("passes a foreign payload on unchanged and treats VK's Start button as text", async () => {
      await vk.deliver(webhookUrl, group.groupId, "message_new", vk.buttonPress(USER, '{"button":"1"}', "One"));
      await vk.deliver(webhookUrl, group.groupId, "message_new", vk.buttonPress(USER, '{"command":"start"}', "Начать"));
      expect(outcomes[0]?.messages[0]).toMatchObject({ kind: MessageKind.BUTTON, buttonPayload: '{"button":"1"}', text: "One" });
      expect(outcomes[1]?.messages[0]).toMatchObject({ kind: MessageKind.TEXT, text: "Начать" });
      expect(outcomes[1]?.messages[0]).not.toHaveProperty("buttonPayload");
    });

    it("turns a vk.me ref (and its ref_source) into the start payload", async () => {
      await vk.deliver(webhookUrl, group.groupId, "message_new", vk.messageNew(USER, "hello", { ref: "promo_spring", ref_source: "ads feed" }));
      await vk.deliver(webhookUrl, group.groupId, "message_new", vk.messageNew(USER, "hello", { ref: "promo_spring" }));
      expect(outcomes.map((o) => o.messages[0]?.startPayload)).toEqual(["promo_spring&ref_source=ads%20feed", "promo_spring"]);
    });

    it("names a chat message by peer and conversation_message_id (VK gives bots id 0 in chats)", async () => {
      const chat = 2_000_000_005;
      await vk.deliver(webhookUrl, group.groupId, "message_new", vk.messageNew(USER, "in chat", { id: 0, peer_id: chat, conversation_message_id: 42 }));
      expect(outcomes[0]?.messages[0]).toMatchObject({ senderId: String(chat), providerMessageId: `${chat}_42` });
    });

    it("reports message_deny and message_allow as subscriber statuses named by event_id", async () => {
      const deny = await vk.deliver(webhookUrl, group.groupId, "message_deny", vk.messageDeny(USER));
      const allow = await vk.deliver(webhookUrl, group.groupId, "message_allow", vk.messageAllow(USER, "k"));
      expect([deny.text, allow.text]).toEqual(["ok", "ok"]);
      expect(outcomes.map((o) => o.subscriberStatuses)).toEqual([
        [{ subscriberId: String(USER), blocked: true, providerEventId: deny.eventId, at: expect.any(Date) }],
        [{ subscriberId: String(USER), blocked: false, providerEventId: allow.eventId, at: expect.any(Date) }],
      ]);
    });

    it.each(["message_reply", "message_edit", "message_typing_state", "group_join"])("acknowledges %s with ok and marks it ignored", async (type) => {
      const answer = await vk.deliver(webhookUrl, group.groupId, type, { from_id: USER, state: "typing" });
      expect(answer).toMatchObject({ status: 200, text: "ok" });
      expect(outcomes[0]).toMatchObject({ messages: [], subscriberStatuses: [], ignored: [type] });
    });
  });

  describe("send", () => {
    const lastSendParams = () => vk.server.callsTo("/method/messages.send").at(-1)?.body;

    it("sends text with buttons as an inline keyboard, with exactly these form params", async () => {
      const result = await adapter.send(
        account,
        outbound("cmd-1", "Choose a drink", {
          buttons: [
            { text: "Latte", payload: "drink:latte" },
            { text: "Menu", url: "https://coffee.example/menu" },
          ],
        }),
      );
      const sent = vk.sentTo(group.groupId, USER);
      expect(result).toEqual({ ok: true, providerMessageId: String(sent[0]?.messageId) });
      const keyboard = {
        inline: true,
        buttons: [[{ action: { type: "text", label: "Latte", payload: '{"p":"drink:latte"}' } }], [{ action: { type: "open_link", link: "https://coffee.example/menu", label: "Menu" } }]],
      };
      expect(lastSendParams()).toEqual({
        access_token: group.accessToken,
        v: "5.199",
        peer_id: String(USER),
        random_id: String(randomIdFor("cmd-1")),
        message: "Choose a drink",
        keyboard: JSON.stringify(keyboard),
        dont_parse_links: "0",
      });
      expect(sent).toEqual([{ groupId: group.groupId, peerId: String(USER), randomId: randomIdFor("cmd-1"), message: "Choose a drink", keyboard, messageId: sent[0]?.messageId, at: expect.any(Number) }]);
    });

    it("appends each attachment URL on its own line (VK cannot attach by URL)", async () => {
      const result = await adapter.send(
        account,
        outbound("cmd-2", "Your receipt", {
          attachments: [
            { kind: MessageKind.DOCUMENT, url: "https://files.example/r.pdf" },
            { kind: MessageKind.IMAGE, url: "https://files.example/p.jpg" },
          ],
        }),
      );
      expect(result.ok).toBe(true);
      expect(vk.sentTo(group.groupId, USER)[0]?.message).toBe("Your receipt\nhttps://files.example/r.pdf\nhttps://files.example/p.jpg");
      expect(lastSendParams()).not.toHaveProperty("keyboard");
    });

    it("sends the same command once however often it is retried (random_id)", async () => {
      const first = await adapter.send(account, outbound("cmd-dup", "once"));
      const second = await adapter.send(account, outbound("cmd-dup", "once"));
      expect(second).toEqual(first);
      expect(vk.sentTo(group.groupId, USER)).toHaveLength(1);
      expect(vk.server.callsTo("/method/messages.send").filter((c) => (c.body as Record<string, string>).access_token === group.accessToken)).toHaveLength(2);
      // random_id is a positive int32 and differs between commands.
      expect(randomIdFor("cmd-dup")).toBeGreaterThan(0);
      expect(randomIdFor("cmd-dup")).toBeLessThanOrEqual(2 ** 31 - 1);
      expect(randomIdFor("cmd-dup")).not.toBe(randomIdFor("cmd-dup2"));
    });

    it.each([
      ["an empty message", outbound("e1", "")],
      ["seven buttons", outbound("e2", "x", { buttons: Array.from({ length: 7 }, (_, i) => ({ text: `b${i}`, payload: `${i}` })) })],
      ["a 41-character label", outbound("e3", "x", { buttons: [{ text: "a".repeat(41), payload: "p" }] })],
      ["a payload over 255 characters", outbound("e4", "x", { buttons: [{ text: "ok", payload: "p".repeat(250) }] })],
      ["a non-numeric peer", outbound("e5", "x", { recipientId: "durov" })],
    ])("rejects %s without calling VK", async (_what, message) => {
      const before = vk.server.calls.length;
      const result = await adapter.send(account, message);
      expect(result).toMatchObject({ ok: false, kind: "rejected" });
      expect(vk.server.calls.length).toBe(before);
    });

    it("accepts six buttons and a 40-character label", async () => {
      const buttons = Array.from({ length: 6 }, (_, i) => ({ text: i === 0 ? "é".repeat(40) : `b${i}`, payload: `${i}` }));
      expect(await adapter.send(account, outbound("six", "x", { buttons }))).toMatchObject({ ok: true });
      expect(vk.sentTo(group.groupId, USER)[0]?.keyboard?.buttons).toHaveLength(6);
    });

    const vkError = (code: number, msg: string) => ({ status: 200, body: { error: { error_code: code, error_msg: msg, request_params: [] } } });
    const isSend = (c: { path: string }) => c.path === "/method/messages.send";

    it.each([
      [6, "Too many requests per second", { kind: "rate_limited", error: "VK error 6: Too many requests per second" }],
      [9, "Flood control", { kind: "rate_limited", error: "VK error 9: Flood control" }],
      [902, "Can't send messages to this user due to their privacy settings", { kind: "permanent" }],
      [936, "Contact not found", { kind: "permanent" }],
      [5, "User authorization failed: invalid access_token (4).", { kind: "rejected", error: "VK refused the community token: reconnect the channel (VK error 5: User authorization failed: invalid access_token (4).)" }],
      [27, "Group authorization failed: method is unavailable with group auth.", { kind: "rejected" }],
      [10, "Internal server error", { kind: "transient", error: "VK error 10: Internal server error" }],
      [1, "Unknown error occurred", { kind: "transient" }],
      [100, "One of the parameters specified was missing or invalid: peer_id is undefined", { kind: "rejected" }],
    ])("maps VK error %i to its result", async (code, msg, expected) => {
      vk.server.script(isSend, vkError(code, msg));
      const result = await adapter.send(account, outbound(`err-${code}`, "x"));
      expect(result).toMatchObject({ ok: false, ...expected });
      expect(result).not.toHaveProperty("retryAfterMs");
    });

    it("gets error 901 from the fake for a user who denied messages: permanent", async () => {
      vk.denyUser(USER, group.groupId);
      const result = await adapter.send(account, outbound("deny", "x"));
      expect(result).toEqual({ ok: false, kind: "permanent", error: "VK error 901: Can't send messages for users without permission" });
      expect(vk.sentTo(group.groupId, USER)).toHaveLength(0);
    });

    it("gets error 5 from the fake for a revoked token: rejected", async () => {
      const result = await adapter.send({ ...account, secrets: { ...account.secrets, accessToken: "vk1.a.revoked" } }, outbound("revoked", "x"));
      expect(result).toMatchObject({ ok: false, kind: "rejected", error: expect.stringContaining("reconnect the channel") });
    });

    it("treats an HTTP 5xx without a VK body and a dropped connection as transient", async () => {
      vk.server.script(isSend, { status: 502, body: "<html>Bad Gateway</html>" });
      expect(await adapter.send(account, outbound("h502", "x"))).toEqual({ ok: false, kind: "transient", error: "VK answered HTTP 502 without an API response" });
      vk.server.dropConnections(isSend);
      expect(await adapter.send(account, outbound("drop", "x"))).toMatchObject({ ok: false, kind: "transient" });
      // The retry of the dropped command goes through once.
      expect(await adapter.send(account, outbound("drop", "x"))).toMatchObject({ ok: true });
      expect(vk.sentTo(group.groupId, USER)).toHaveLength(1);
    });

    it("hits the fake's per-token limit on the 21st immediate send, and refills at 20 a second", async () => {
      // A frozen clock makes "immediate" exact; the default limit (20/s, burst 20) is what is under test.
      let now = 1_000_000;
      const limited = await VkFake.start({ now: () => now });
      try {
        const limitedAdapter = new VkAdapter({ apiBaseUrl: limited.baseUrl, timeoutMs: 2_000 });
        const community = accountFor(limited.addGroup());
        const groupId = Number(community.settings.groupId);
        const results = await Promise.all(Array.from({ length: 21 }, (_, i) => limitedAdapter.send(community, outbound(`burst-${i}`, `m${i}`))));
        expect(results.filter((r) => r.ok)).toHaveLength(20);
        expect(results.filter((r) => !r.ok)).toEqual([{ ok: false, kind: "rate_limited", error: "VK error 6: Too many requests per second" }]);
        expect(limited.limitHits).toBe(1);
        expect(limited.sentTo(groupId, USER)).toHaveLength(20);
        // Another community's token has its own budget.
        const other = accountFor(limited.addGroup());
        expect(await limitedAdapter.send(other, outbound("other", "x"))).toMatchObject({ ok: true });
        now += 50; // one token back after 1/20 s
        expect(await limitedAdapter.send(community, outbound("burst-20", "m20"))).toMatchObject({ ok: true });
        expect(await limitedAdapter.send(community, outbound("burst-21", "m21"))).toMatchObject({ ok: false, kind: "rate_limited" });
      } finally {
        await limited.close();
      }
    });
  });
});
