import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AttachmentSchema, ButtonSchema, MessageKind, Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { ChannelSetupError, WebhookRejected, type AccountView, type OutboundMessage, type WebhookOutcome } from "../../src/providers/provider";
import { WhatsAppAdapter } from "../../src/providers/whatsapp/whatsapp-adapter";
import { FakeServer, postWebhook } from "../fakes/fake-server";
import {
  buttonReplyMessage,
  contactsMessage,
  imageMessage,
  listReplyMessage,
  locationMessage,
  mediaMessage,
  quickReplyMessage,
  STATUS_ERRORS,
  statusUpdate,
  textMessage,
  unsupportedMessage,
  WhatsAppFake,
  withReferral,
  type WhatsAppNumber,
} from "../fakes/whatsapp-fake";

const USER = "16505551234";

/** The webhook side as the channels service would run it: real HTTP from the fake, into the adapter. */
interface Receiver {
  server: FakeServer;
  url: string;
  outcomes: WebhookOutcome[];
  rejections: WebhookRejected[];
}

async function startReceiver(adapter: WhatsAppAdapter, account: () => AccountView): Promise<Receiver> {
  const outcomes: WebhookOutcome[] = [];
  const rejections: WebhookRejected[] = [];
  const server = await FakeServer.start(async (call) => {
    try {
      const outcome = await adapter.handleWebhook(account(), {
        method: call.method as "GET" | "POST",
        headers: call.headers,
        query: call.query,
        rawBody: call.raw,
      });
      outcomes.push(outcome);
      return { status: outcome.reply.status, body: outcome.reply.body };
    } catch (err) {
      if (!(err instanceof WebhookRejected)) throw err;
      rejections.push(err);
      return { status: err.status, body: err.message };
    }
  });
  return { server, url: `${server.baseUrl}/webhooks/whatsapp/acc-1`, outcomes, rejections };
}

function accountFor(number: WhatsAppNumber): AccountView {
  return {
    id: "acc-1",
    projectId: "proj-1",
    messenger: Messenger.WHATSAPP,
    settings: { phoneNumberId: number.phoneNumberId, displayPhoneNumber: number.displayPhoneNumber },
    secrets: { accessToken: number.accessToken, appSecret: number.appSecret, verifyToken: number.verifyToken },
  };
}

function outbound(partial: Partial<OutboundMessage>): OutboundMessage {
  return { commandId: "cmd-1", recipientId: USER, text: "", attachments: [], buttons: [], subject: "", ...partial };
}

const seconds = (message: Record<string, unknown>): Date => new Date(Number(message.timestamp) * 1000);

describe("WhatsApp Cloud API adapter", () => {
  let fake: WhatsAppFake;
  let adapter: WhatsAppAdapter;
  let number: WhatsAppNumber;
  let account: AccountView;
  let receiver: Receiver;

  beforeAll(async () => {
    fake = await WhatsAppFake.start();
    adapter = new WhatsAppAdapter({ apiBaseUrl: fake.baseUrl, timeoutMs: 2_000 });
    receiver = await startReceiver(adapter, () => account);
  });

  beforeEach(() => {
    // A fresh number per test keeps rate-limit buckets, webhook URLs and sent lists from leaking between tests.
    number = fake.addNumber({ displayPhoneNumber: "+1 555-010-0199", verifiedName: "Acme Shop" });
    account = accountFor(number);
    fake.setWebhook(number.phoneNumberId, receiver.url);
    receiver.outcomes.length = 0;
    receiver.rejections.length = 0;
  });

  afterAll(async () => {
    await fake.close();
    await receiver.server.close();
  });

  /** Delivers one inbound message and returns what the adapter made of it. */
  async function deliver(message: Record<string, unknown>, profileName = "Maria del Carmen"): Promise<WebhookOutcome> {
    const res = await fake.deliverMessage(number.phoneNumberId, message, { profileName });
    expect(res).toEqual({ status: 200, text: "ok" });
    const outcome = receiver.outcomes.at(-1);
    if (!outcome) throw new Error("the receiver recorded no outcome");
    return outcome;
  }

  describe("connect", () => {
    const input = (n: WhatsAppNumber, overrides: { settings?: Record<string, string>; secrets?: Record<string, string> } = {}) => ({
      channelId: "ch-1",
      webhookUrl: "https://chatcrm.example/webhooks/whatsapp/ch-1",
      settings: { phoneNumberId: n.phoneNumberId, ...overrides.settings },
      secrets: { accessToken: n.accessToken, appSecret: n.appSecret, verifyToken: n.verifyToken, ...overrides.secrets },
    });

    it("checks the token against the phone number and labels the account with its number and verified name", async () => {
      const result = await adapter.connect(input(number));
      expect(result).toEqual({
        settings: { phoneNumberId: number.phoneNumberId, displayPhoneNumber: "+1 555-010-0199" },
        secrets: { accessToken: number.accessToken, appSecret: number.appSecret, verifyToken: number.verifyToken },
        accountLabel: "+1 555-010-0199 (Acme Shop)",
      });
      const [call] = fake.server.callsTo(`/v21.0/${number.phoneNumberId}`).filter((c) => c.method === "GET");
      expect(call?.headers.authorization).toBe(`Bearer ${number.accessToken}`);
      expect(call?.query).toEqual({ fields: "display_phone_number,verified_name" });
    });

    it("names the missing input without calling Meta", async () => {
      const before = fake.server.calls.length;
      for (const [key, field] of [
        ["verifyToken", "whatsapp.verify_token"],
        ["appSecret", "whatsapp.app_secret"],
        ["accessToken", "whatsapp.access_token"],
      ] as const) {
        const error = await adapter.connect(input(number, { secrets: { [key]: "  " } })).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ChannelSetupError);
        expect((error as ChannelSetupError).field).toBe(field);
      }
      const noNumber = await adapter.connect(input(number, { settings: { phoneNumberId: "" } })).catch((e: unknown) => e);
      expect((noNumber as ChannelSetupError).field).toBe("whatsapp.phone_number_id");
      expect(fake.server.calls.length).toBe(before);
    });

    it("blames the access token when Graph answers OAuthException 190", async () => {
      const error = await adapter.connect(input(number, { secrets: { accessToken: "EAAGwrong" } })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ChannelSetupError);
      expect(error).toMatchObject({ field: "whatsapp.access_token", message: "WhatsApp refused the access token: Invalid OAuth access token - Cannot parse access token" });
    });

    it("blames the phone number id when the token cannot see that number", async () => {
      const other = fake.addNumber();
      const error = await adapter.connect(input(number, { settings: { phoneNumberId: other.phoneNumberId } })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ChannelSetupError);
      expect((error as ChannelSetupError).field).toBe("whatsapp.phone_number_id");
      expect((error as Error).message).toContain(`Object with ID '${other.phoneNumberId}' does not exist`);
    });

    it("refuses a phone number id that is not a Graph id before putting it in a URL", async () => {
      const error = await adapter.connect(input(number, { settings: { phoneNumberId: "../me" } })).catch((e: unknown) => e);
      expect((error as ChannelSetupError).field).toBe("whatsapp.phone_number_id");
    });
  });

  describe("webhook verification", () => {
    it("echoes hub.challenge to Meta's GET when the verify token matches", async () => {
      const res = await fake.verifyChallenge(receiver.url, number.verifyToken, { challenge: "1158201444" });
      expect(res).toEqual({ status: 200, text: "1158201444", challenge: "1158201444" });
    });

    it("answers 403 to a wrong verify token or another hub.mode", async () => {
      expect((await fake.verifyChallenge(receiver.url, number.verifyToken + "x")).status).toBe(403);
      expect((await fake.verifyChallenge(receiver.url, "short")).status).toBe(403);
      expect((await fake.verifyChallenge(receiver.url, number.verifyToken, { mode: "unsubscribe" })).status).toBe(403);
      expect(receiver.outcomes).toEqual([]);
    });

    it("rejects a body signed with another secret (403) and one without a signature (401)", async () => {
      const forged = await fake.deliverMessage(number.phoneNumberId, textMessage(USER, "hi"), { signWith: "not-the-app-secret" });
      expect(forged.status).toBe(403);
      const unsigned = await fake.deliverMessage(number.phoneNumberId, textMessage(USER, "hi"), { signature: null });
      expect(unsigned.status).toBe(401);
      const malformed = await fake.deliverMessage(number.phoneNumberId, textMessage(USER, "hi"), { signature: "sha1=abc" });
      expect(malformed.status).toBe(403);
      expect(receiver.outcomes).toEqual([]);
      expect(receiver.rejections.map((r) => r.status)).toEqual([403, 401, 403]);
    });

    it("rejects a correctly signed body with one byte changed", async () => {
      const body = fake.notificationBody(number.phoneNumberId, { contacts: [], messages: [textMessage(USER, "pay 100")] });
      const signature = fake.signature(number.phoneNumberId, body);
      const tampered = body.replace("pay 100", "pay 900");
      expect(tampered.length).toBe(body.length);
      const res = await postWebhook(receiver.url, tampered, { "x-hub-signature-256": signature });
      expect(res.status).toBe(403);
      // The untouched body with the same signature passes, so the 403 is the changed byte's doing.
      expect((await postWebhook(receiver.url, body, { "x-hub-signature-256": signature })).status).toBe(200);
    });

    it("verifies the bytes Meta sent, escapes included, and answers 400 to signed non-JSON", async () => {
      const outcome = await deliver(textMessage(USER, "Привет 👋 https://example.com/a"));
      expect(outcome.messages[0]?.text).toBe("Привет 👋 https://example.com/a");
      const res = await fake.deliverMessage(number.phoneNumberId, {}, { rawBody: "{not json" });
      expect(res.status).toBe(400);
    });
  });

  describe("inbound messages", () => {
    it("normalizes a text message with the sender's profile split into first and last name", async () => {
      const message = textMessage(USER, "Hello there");
      const outcome = await deliver(message);
      expect(outcome.reply).toEqual({ status: 200, body: "ok" });
      expect(outcome.ignored).toEqual([]);
      expect(outcome.messages).toEqual([
        {
          providerMessageId: message.id,
          senderId: USER,
          sender: { firstName: "Maria", lastName: "del Carmen" },
          kind: MessageKind.TEXT,
          text: "Hello there",
          sentAt: timestampFromDate(seconds(message)),
        },
      ]);
      expect(String(message.id)).toMatch(/^wamid\.HBgL/);
    });

    it("keeps the same providerMessageId when Meta redelivers the message", async () => {
      const message = textMessage(USER, "again");
      const first = await deliver(message);
      const second = await deliver(message);
      expect(second.messages[0]?.providerMessageId).toBe(first.messages[0]?.providerMessageId);
      expect(first.messages[0]?.providerMessageId).toBe(message.id);
    });

    it("gives a one-word profile name as the first name only", async () => {
      const outcome = await deliver(textMessage(USER, "hi"), "Cher");
      expect(outcome.messages[0]?.sender).toEqual({ firstName: "Cher", lastName: "" });
    });

    it("keeps media as wa-media refs with caption, mime type and file name", async () => {
      const image = await deliver(imageMessage(USER, "1037543291543636", "my cat"));
      expect(image.messages[0]).toMatchObject({
        kind: MessageKind.IMAGE,
        text: "my cat",
        attachments: [{ kind: MessageKind.IMAGE, url: "wa-media:1037543291543636", mimeType: "image/jpeg", fileName: "" }],
      });
      const document = await deliver(mediaMessage(USER, "document", { id: "2001", mime_type: "application/pdf", filename: "invoice.pdf", caption: "the invoice" }));
      expect(document.messages[0]).toMatchObject({
        kind: MessageKind.DOCUMENT,
        text: "the invoice",
        attachments: [{ kind: MessageKind.DOCUMENT, url: "wa-media:2001", mimeType: "application/pdf", fileName: "invoice.pdf" }],
      });
      const audio = await deliver(mediaMessage(USER, "audio", { id: "2002", voice: true }));
      expect(audio.messages[0]).toMatchObject({ kind: MessageKind.AUDIO, text: "", attachments: [{ kind: MessageKind.AUDIO, url: "wa-media:2002", mimeType: "audio/ogg; codecs=opus" }] });
      const video = await deliver(mediaMessage(USER, "video", { id: "2003" }));
      expect(video.messages[0]).toMatchObject({ kind: MessageKind.VIDEO, attachments: [{ kind: MessageKind.VIDEO, url: "wa-media:2003", mimeType: "video/mp4" }] });
      const sticker = await deliver(mediaMessage(USER, "sticker", { id: "2004", animated: false }));
      expect(sticker.messages[0]).toMatchObject({ kind: MessageKind.IMAGE, attachments: [{ kind: MessageKind.IMAGE, url: "wa-media:2004", mimeType: "image/webp" }] });
    });

    it("resolves a wa-media ref to its download URL through the Graph media endpoint", async () => {
      const media = fake.addMedia(number.phoneNumberId, { mimeType: "image/png" });
      const url = await adapter.mediaDownloadUrl(account, `wa-media:${media.id}`);
      expect(url).toBe(media.url);
      const [call] = fake.server.callsTo(`/v21.0/${media.id}`);
      expect(call?.headers.authorization).toBe(`Bearer ${number.accessToken}`);
      expect(call?.query).toEqual({ phone_number_id: number.phoneNumberId });
      await expect(adapter.mediaDownloadUrl(account, "wa-media:999")).rejects.toThrow(/WhatsApp could not look up media 999: WhatsApp error 100: Unsupported get request/);
    });

    it("normalizes location, contact card, button and list replies, and template quick replies", async () => {
      const place = locationMessage(USER, 55.7558, 37.6173, { name: "Red Square" });
      const location = await deliver(place);
      expect(location.messages[0]).toEqual({
        providerMessageId: place.id,
        senderId: USER,
        sender: { firstName: "Maria", lastName: "del Carmen" },
        kind: MessageKind.LOCATION,
        location: { latitude: 55.7558, longitude: 37.6173 },
        sentAt: timestampFromDate(seconds(place)),
      });

      const card = await deliver(contactsMessage(USER, "+1 (650) 555-9876", { waId: "16505559876" }));
      expect(card.messages[0]).toMatchObject({ kind: MessageKind.CONTACT, sharedPhone: "16505559876" });
      const notOnWhatsApp = await deliver(contactsMessage(USER, "+44 20 7946 0958", { waId: null }));
      expect(notOnWhatsApp.messages[0]).toMatchObject({ kind: MessageKind.CONTACT, sharedPhone: "+44 20 7946 0958" });

      const button = await deliver(buttonReplyMessage(USER, "menu:prices", "Prices"));
      expect(button.messages[0]).toMatchObject({ kind: MessageKind.BUTTON, buttonPayload: "menu:prices", text: "Prices" });
      const list = await deliver(listReplyMessage(USER, "size:xl", "XL", "Extra large"));
      expect(list.messages[0]).toMatchObject({ kind: MessageKind.BUTTON, buttonPayload: "size:xl", text: "XL" });
      const quick = await deliver(quickReplyMessage(USER, "CONFIRM_ORDER", "Confirm"));
      expect(quick.messages[0]).toMatchObject({ kind: MessageKind.BUTTON, buttonPayload: "CONFIRM_ORDER", text: "Confirm" });
    });

    it("keeps a click-to-WhatsApp ad referral as the start payload", async () => {
      const fromAd = await deliver(withReferral(textMessage(USER, "Is this available?"), { source_url: "https://fb.me/3kJ9aBc", source_id: "120208" }));
      expect(fromAd.messages[0]).toMatchObject({ kind: MessageKind.TEXT, text: "Is this available?", startPayload: "https://fb.me/3kJ9aBc" });
      const idOnly = await deliver(withReferral(textMessage(USER, "hi"), { source_id: "120209" }));
      expect(idOnly.messages[0]?.startPayload).toBe("120209");
    });

    it("ignores unsupported and unknown message types without failing the webhook", async () => {
      const unsupported = await deliver(unsupportedMessage(USER));
      expect(unsupported.messages).toEqual([]);
      expect(unsupported.ignored).toEqual(["message:unsupported"]);
      const reaction = await deliver({ from: USER, id: "wamid.reaction1", timestamp: "1718000000", type: "reaction", reaction: { message_id: "wamid.x", emoji: "👍" } });
      expect(reaction.ignored).toEqual(["message:reaction"]);
    });

    it("ignores a change for another phone number and other webhook fields", async () => {
      const other = fake.addNumber();
      fake.setWebhook(other.phoneNumberId, receiver.url);
      // Signed with this account's secret (one Meta app, several numbers), but about a number that is not this channel's.
      const res = await fake.deliverMessage(other.phoneNumberId, textMessage(USER, "for someone else"), { signWith: number.appSecret });
      expect(res.status).toBe(200);
      expect(receiver.outcomes.at(-1)).toMatchObject({ messages: [], statuses: [], ignored: ["foreign phone_number_id"] });

      const templateUpdate = JSON.stringify({
        object: "whatsapp_business_account",
        entry: [{ id: number.wabaId, changes: [{ field: "message_template_status_update", value: { event: "APPROVED", message_template_id: 1 } }] }],
      });
      expect((await fake.deliverMessage(number.phoneNumberId, {}, { rawBody: templateUpdate })).status).toBe(200);
      expect(receiver.outcomes.at(-1)).toMatchObject({ messages: [], ignored: ["message_template_status_update"] });
    });
  });

  describe("statuses", () => {
    async function status(update: Record<string, unknown>) {
      const res = await fake.deliverStatus(number.phoneNumberId, update);
      expect(res.status).toBe(200);
      return receiver.outcomes.at(-1)?.statuses;
    }

    it("reports delivered and read", async () => {
      const delivered = statusUpdate("wamid.HBgLsent1", USER, "delivered");
      expect(await status(delivered)).toEqual([{ providerMessageId: "wamid.HBgLsent1", recipientId: USER, state: "delivered", at: seconds(delivered) }]);
      const read = statusUpdate("wamid.HBgLsent1", USER, "read");
      expect(await status(read)).toEqual([{ providerMessageId: "wamid.HBgLsent1", recipientId: USER, state: "read", at: seconds(read) }]);
    });

    it("marks 131026 failures permanent and 131047 (24-hour window) failures not", async () => {
      expect(await status(statusUpdate("wamid.f1", USER, "failed", STATUS_ERRORS.undeliverable))).toEqual([
        expect.objectContaining({ state: "failed", error: "131026 Message undeliverable: Message Undeliverable.", permanent: true }),
      ]);
      expect(await status(statusUpdate("wamid.f2", USER, "failed", STATUS_ERRORS.reEngagement))).toEqual([
        expect.objectContaining({
          state: "failed",
          error: "131047 Re-engagement message: Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
          permanent: false,
        }),
      ]);
    });

    it("posts signed sent and delivered statuses after a send when autoStatuses is on", async () => {
      fake.autoStatuses = true;
      try {
        const result = await adapter.send(account, outbound({ text: "tracked" }));
        await fake.settle();
        if (!result.ok) throw new Error(result.error);
        const reports = receiver.outcomes.flatMap((o) => o.statuses);
        expect(reports.map((r) => [r.providerMessageId, r.state])).toEqual([
          [result.providerMessageId, "sent"],
          [result.providerMessageId, "delivered"],
        ]);
        expect(fake.webhookFailures).toEqual([]);
      } finally {
        fake.autoStatuses = false;
      }
    });

    it("accepts a send to an undeliverable user, then reports it failed permanently", async () => {
      fake.undeliverable("16505550000");
      const result = await adapter.send(account, outbound({ recipientId: "16505550000", text: "anyone there?" }));
      await fake.settle();
      expect(result.ok).toBe(true);
      const reports = receiver.outcomes.flatMap((o) => o.statuses);
      expect(reports).toEqual([expect.objectContaining({ recipientId: "16505550000", state: "failed", permanent: true, providerMessageId: result.ok ? result.providerMessageId : "" })]);
    });
  });

  describe("send", () => {
    it("sends text with preview off and returns the wamid", async () => {
      const result = await adapter.send(account, outbound({ text: "Your order has shipped" }));
      const [sent] = fake.sentTo(number.phoneNumberId, USER);
      expect(result).toEqual({ ok: true, providerMessageId: sent?.wamid });
      expect(sent?.body).toEqual({ messaging_product: "whatsapp", recipient_type: "individual", to: USER, type: "text", text: { body: "Your order has shipped", preview_url: false } });
      expect(fake.server.callsTo(`/v21.0/${number.phoneNumberId}/messages`)[0]?.headers.authorization).toBe(`Bearer ${number.accessToken}`);
    });

    it("sends payload buttons as interactive reply buttons and URL buttons as lines of the text", async () => {
      const result = await adapter.send(
        account,
        outbound({
          text: "Pick a size",
          buttons: [
            create(ButtonSchema, { text: "Small", payload: "size:s" }),
            create(ButtonSchema, { text: "Size chart", url: "https://shop.example/sizes" }),
            create(ButtonSchema, { text: "Large", payload: "size:l" }),
          ],
        }),
      );
      expect(result.ok).toBe(true);
      expect(fake.sentTo(number.phoneNumberId, USER).map((s) => s.body)).toEqual([
        {
          messaging_product: "whatsapp",
          recipient_type: "individual",
          to: USER,
          type: "interactive",
          interactive: {
            type: "button",
            body: { text: "Pick a size\n\nSize chart: https://shop.example/sizes" },
            action: {
              buttons: [
                { type: "reply", reply: { id: "size:s", title: "Small" } },
                { type: "reply", reply: { id: "size:l", title: "Large" } },
              ],
            },
          },
        },
      ]);
    });

    it("sends an image with the text as its caption", async () => {
      const result = await adapter.send(
        account,
        outbound({ text: "Here is the photo", attachments: [create(AttachmentSchema, { kind: MessageKind.IMAGE, url: "https://cdn.example/p.jpg" })] }),
      );
      const sent = fake.sentTo(number.phoneNumberId, USER);
      expect(sent.map((s) => s.body)).toEqual([
        { messaging_product: "whatsapp", recipient_type: "individual", to: USER, type: "image", image: { link: "https://cdn.example/p.jpg", caption: "Here is the photo" } },
      ]);
      expect(result).toEqual({ ok: true, providerMessageId: sent[0]?.wamid });
    });

    it("sends audio first and the text after it, returning the last wamid; documents keep their file name", async () => {
      const result = await adapter.send(
        account,
        outbound({
          text: "Listen and read",
          attachments: [
            create(AttachmentSchema, { kind: MessageKind.AUDIO, url: "https://cdn.example/a.ogg" }),
            create(AttachmentSchema, { kind: MessageKind.DOCUMENT, url: "https://cdn.example/t.pdf", fileName: "transcript.pdf" }),
          ],
        }),
      );
      const sent = fake.sentTo(number.phoneNumberId, USER);
      expect(sent.map((s) => [s.type, s.body[s.type]])).toEqual([
        ["audio", { link: "https://cdn.example/a.ogg" }],
        ["document", { link: "https://cdn.example/t.pdf", filename: "transcript.pdf" }],
        ["text", { body: "Listen and read", preview_url: false }],
      ]);
      expect(result).toEqual({ ok: true, providerMessageId: sent[2]?.wamid });
    });

    it("sends attachments without caption before the buttons when both are present", async () => {
      await adapter.send(
        account,
        outbound({
          text: "Like it?",
          attachments: [create(AttachmentSchema, { kind: MessageKind.VIDEO, url: "https://cdn.example/v.mp4" })],
          buttons: [create(ButtonSchema, { text: "Yes", payload: "like:yes" })],
        }),
      );
      expect(fake.sentTo(number.phoneNumberId, USER).map((s) => [s.type, s.body[s.type]])).toEqual([
        ["video", { link: "https://cdn.example/v.mp4" }],
        ["interactive", { type: "button", body: { text: "Like it?" }, action: { buttons: [{ type: "reply", reply: { id: "like:yes", title: "Yes" } }] } }],
      ]);
    });

    it("rejects four reply buttons, a title over 20 characters and an empty message without calling Meta", async () => {
      const four = ["a", "b", "c", "d"].map((p) => create(ButtonSchema, { text: p.toUpperCase(), payload: p }));
      expect(await adapter.send(account, outbound({ text: "Choose", buttons: four }))).toEqual({
        ok: false,
        kind: "rejected",
        error: "WhatsApp allows at most 3 reply buttons under a message; this one has 4",
      });
      const long = create(ButtonSchema, { text: "Tell me more about it", payload: "more" });
      expect(await adapter.send(account, outbound({ text: "Choose", buttons: [long] }))).toEqual({
        ok: false,
        kind: "rejected",
        error: 'WhatsApp button titles are limited to 20 characters; "Tell me more about it" has 21',
      });
      expect(await adapter.send(account, outbound({}))).toEqual({ ok: false, kind: "rejected", error: "The message is empty: it has no text and no attachments" });
      expect(fake.server.callsTo(`/v21.0/${number.phoneNumberId}/messages`)).toEqual([]);
    });
  });

  describe("send failures", () => {
    const messagesPath = () => `/v21.0/${number.phoneNumberId}/messages`;

    it("maps throughput (130429) to rate_limited without a retry delay", async () => {
      const limited = await WhatsAppFake.start({ perNumber: { ratePerSec: 0.001, burst: 2 } });
      try {
        const n = limited.addNumber();
        const a = new WhatsAppAdapter({ apiBaseUrl: limited.baseUrl, timeoutMs: 2_000 });
        const acc = accountFor(n);
        expect((await a.send(acc, outbound({ recipientId: "15550001", text: "1" }))).ok).toBe(true);
        expect((await a.send(acc, outbound({ recipientId: "15550002", text: "2" }))).ok).toBe(true);
        expect(await a.send(acc, outbound({ recipientId: "15550003", text: "3" }))).toEqual({
          ok: false,
          kind: "rate_limited",
          error: "WhatsApp error 130429: (#130429) Rate limit hit (Cloud API message throughput has been reached.)",
        });
        expect(limited.limitHits).toEqual([expect.objectContaining({ phoneNumberId: n.phoneNumberId, to: "15550003", code: 130429 })]);
      } finally {
        await limited.close();
      }
    });

    it("answers 131056 once the pair burst to one user is spent, while other users still get messages", async () => {
      for (let i = 0; i < 45; i++) expect((await adapter.send(account, outbound({ text: `m${i}` }))).ok).toBe(true);
      const over = await adapter.send(account, outbound({ text: "one too many" }));
      expect(over).toMatchObject({ ok: false, kind: "rate_limited" });
      expect(over.ok ? "" : over.error).toContain("WhatsApp error 131056: (#131056) (Business Account, Consumer Account) pair rate limit hit");
      const raw = fake.server.callsTo(messagesPath()).at(-1);
      expect(raw?.body).toMatchObject({ to: USER });
      expect(fake.limitHits.filter((h) => h.phoneNumberId === number.phoneNumberId)).toEqual([expect.objectContaining({ to: USER, code: 131056 })]);
      expect((await adapter.send(account, outbound({ recipientId: "16505557777", text: "hi" }))).ok).toBe(true);
    });

    it("maps OAuthException 190 to rejected with a reconnect hint", async () => {
      const result = await adapter.send({ ...account, secrets: { ...account.secrets, accessToken: "EAAGexpired" } }, outbound({ text: "hi" }));
      expect(result).toEqual({
        ok: false,
        kind: "rejected",
        error: "WhatsApp refused the access token: reconnect the channel (WhatsApp error 190: Invalid OAuth access token - Cannot parse access token)",
      });
    });

    it("maps 500 and a dropped connection to transient", async () => {
      fake.server.script((c) => c.path === messagesPath(), {
        status: 500,
        body: { error: { message: "An unknown error has occurred.", type: "OAuthException", code: 1, fbtrace_id: "A1" } },
      });
      expect(await adapter.send(account, outbound({ text: "hi" }))).toEqual({ ok: false, kind: "transient", error: "WhatsApp error 1: An unknown error has occurred." });
      fake.server.dropConnections((c) => c.path === messagesPath());
      const dropped = await adapter.send(account, outbound({ text: "hi" }));
      expect(dropped).toMatchObject({ ok: false, kind: "transient" });
      expect(dropped.ok ? "" : dropped.error).toMatch(/^WhatsApp did not answer: 127\.0\.0\.1:\d+: /);
    });

    it("maps 131026 to permanent, 131000 to transient and invalid parameters to rejected", async () => {
      const graph = (status: number, code: number, message: string, details?: string) => ({
        status,
        body: { error: { message, type: "OAuthException", code, ...(details ? { error_data: { messaging_product: "whatsapp", details } } : {}), fbtrace_id: "A2" } },
      });
      fake.server.script((c) => c.path === messagesPath(), graph(400, 131026, "(#131026) Message undeliverable", "Message Undeliverable."));
      expect(await adapter.send(account, outbound({ text: "hi" }))).toEqual({
        ok: false,
        kind: "permanent",
        error: "WhatsApp error 131026: (#131026) Message undeliverable (Message Undeliverable.)",
      });
      fake.server.script((c) => c.path === messagesPath(), graph(500, 131000, "(#131000) Something went wrong"));
      expect(await adapter.send(account, outbound({ text: "hi" }))).toMatchObject({ ok: false, kind: "transient" });
      fake.server.script((c) => c.path === messagesPath(), { status: 429, body: "Too Many Requests" });
      expect(await adapter.send(account, outbound({ text: "hi" }))).toEqual({ ok: false, kind: "rate_limited", error: "WhatsApp error: HTTP 429: Too Many Requests" });
      // The fake's own validation: a media link that is not a URL is Meta's code 100, not something to retry.
      const bad = await adapter.send(account, outbound({ attachments: [create(AttachmentSchema, { kind: MessageKind.IMAGE, url: "wa-media:123" })] }));
      expect(bad).toEqual({
        ok: false,
        kind: "rejected",
        error: "WhatsApp error 100: (#100) Param image['id'] is not a valid whatsapp business account media attachment ID",
      });
    });

    it("says which part failed when a multi-part message breaks midway", async () => {
      let seen = 0;
      fake.server.script(
        (c) => c.path === messagesPath() && ++seen === 2,
        { status: 503, body: { error: { message: "(#131016) Service unavailable", type: "OAuthException", code: 131016, fbtrace_id: "A3" } } },
      );
      const result = await adapter.send(
        account,
        outbound({ text: "caption", attachments: [1, 2].map((i) => create(AttachmentSchema, { kind: MessageKind.IMAGE, url: `https://cdn.example/${i}.jpg` })) }),
      );
      expect(result).toEqual({ ok: false, kind: "transient", error: "WhatsApp error 131016: (#131016) Service unavailable (after 1 of 2 parts were sent)" });
    });
  });
});
