import { createHmac, randomBytes } from "node:crypto";
import { FakeServer, postWebhook, type FakeResponse, type RecordedCall } from "./fake-server";

/**
 * A local WhatsApp Cloud API (Graph API) as far as ChatCRM uses it: GET /<version>/<phone-number-id> (what connect
 * checks), POST /<version>/<phone-number-id>/messages with Meta's validation, throughput and pair rate limits and error
 * bodies, GET /<version>/<media-id> and the media download URL; and the other direction, signed "messages" webhooks
 * (inbound messages, sent/delivered/failed statuses) and the GET verification handshake.
 */

export interface RateLimit {
  ratePerSec: number;
  burst: number;
}

export interface WhatsAppFakeOptions {
  /** Cloud API throughput per business number; over it: HTTP 400, code 130429. Default 80/s, burst 80. */
  perNumber?: RateLimit;
  /** Messages from one business number to one user; over it: HTTP 400, code 131056. Default burst 45, then 1 per 6 s. */
  perRecipient?: RateLimit;
  /** After each accepted send, post "sent" then "delivered" statuses to the number's webhook. Default false. */
  autoStatuses?: boolean;
  /** Delay before a status webhook goes out, so the sender has recorded the wamid first. Default 5 ms. */
  statusDelayMs?: number;
}

export interface WhatsAppNumber {
  phoneNumberId: string;
  /** The WhatsApp Business Account the number belongs to: entry[].id of its webhooks. */
  wabaId: string;
  displayPhoneNumber: string;
  verifiedName: string;
  accessToken: string;
  appSecret: string;
  verifyToken: string;
  /** Where this number's webhooks are posted; set with setWebhook. */
  webhookUrl?: string;
}

export interface WhatsAppSent {
  phoneNumberId: string;
  to: string;
  type: string;
  /** The whole request JSON. */
  body: Record<string, unknown>;
  wamid: string;
  at: number;
}

export interface WhatsAppLimitHit {
  phoneNumberId: string;
  to: string;
  code: 130429 | 131056;
  at: number;
}

export interface WhatsAppMedia {
  id: string;
  phoneNumberId: string;
  mimeType: string;
  content: string;
  /** The short-lived download URL GET /<media-id> answers with. */
  url: string;
}

export interface StatusError {
  code: number;
  title: string;
  details: string;
}

/** The asynchronous delivery errors tests use, with Meta's titles and details. */
export const STATUS_ERRORS = {
  undeliverable: { code: 131026, title: "Message undeliverable", details: "Message Undeliverable." },
  reEngagement: {
    code: 131047,
    title: "Re-engagement message",
    details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
  },
} satisfies Record<string, StatusError>;

export interface DeliverOptions {
  /** The sender's WhatsApp profile name in value.contacts[]. Default "WhatsApp User". */
  profileName?: string;
  /** Sign with this secret instead of the number's app secret (a forged webhook). */
  signWith?: string;
  /** Post these exact bytes instead of the built envelope (signed all the same). */
  rawBody?: string;
  /** Send this X-Hub-Signature-256 value as is; null sends no signature header. */
  signature?: string | null;
}

type Json = Record<string, unknown>;

const DEFAULT_PER_NUMBER: RateLimit = { ratePerSec: 80, burst: 80 };
const DEFAULT_PER_RECIPIENT: RateLimit = { ratePerSec: 1 / 6, burst: 45 };
const SEND_TYPES = new Set(["text", "image", "video", "audio", "document", "sticker", "interactive", "location", "contacts", "template", "reaction"]);
const MEDIA_TYPES = new Set(["image", "video", "audio", "document", "sticker"]);
const CAPTIONED = new Set(["image", "video", "document"]);

// ---- message builders: what Meta puts in value.messages[] ----

let idCounter = 0;

const unixNow = (): string => String(Math.floor(Date.now() / 1000));

/**
 * A wamid in Meta's layout: base64 of 0x1c 0x18 <len> <phone digits> 0x15 0x02 0x00 0x11 0x18 0x12 <18 hex chars> 0x00,
 * which is why real ones start with "wamid.HBgL" for 11-digit numbers. A counter in the hex part keeps them unique.
 */
export function wamid(phone: string): string {
  const digits = Buffer.from(phone.replace(/\D/g, "").slice(0, 20) || "0", "ascii");
  const counter = (idCounter++ % 0xffffffff).toString(16).padStart(8, "0");
  const hex = Buffer.from((counter + randomBytes(5).toString("hex")).toUpperCase(), "ascii");
  const raw = Buffer.concat([Buffer.from([0x1c, 0x18, digits.length]), digits, Buffer.from([0x15, 0x02, 0x00, 0x11, 0x18, 0x12]), hex, Buffer.from([0x00])]);
  return "wamid." + raw.toString("base64");
}

/** A numeric Graph id, as media and other objects have. */
export const graphId = (): string => String(1_000_000_000_000_000 + Math.floor(Math.random() * 9_000_000_000_000_000));

const sha256Base64 = (): string => randomBytes(32).toString("base64");

const envelopeOf = (from: string, type: string, content: Json): Json => ({ from, id: wamid(from), timestamp: unixNow(), type, ...content });

export const textMessage = (from: string, body: string): Json => envelopeOf(from, "text", { text: { body } });

export function mediaMessage(from: string, type: "image" | "video" | "audio" | "document" | "sticker", media: { id: string; mime_type?: string; caption?: string; filename?: string; voice?: boolean; animated?: boolean }): Json {
  const defaults: Record<string, string> = { image: "image/jpeg", video: "video/mp4", audio: "audio/ogg; codecs=opus", document: "application/pdf", sticker: "image/webp" };
  return envelopeOf(from, type, { [type]: { mime_type: defaults[type], sha256: sha256Base64(), ...media } });
}

export const imageMessage = (from: string, id: string, caption?: string): Json => mediaMessage(from, "image", caption === undefined ? { id } : { id, caption });

export const locationMessage = (from: string, latitude: number, longitude: number, place: { name?: string; address?: string } = {}): Json =>
  envelopeOf(from, "location", { location: { latitude, longitude, ...place } });

/** A shared contact card; `waId: null` leaves out wa_id, as Meta does when the number is not on WhatsApp. */
export function contactsMessage(from: string, phone: string, options: { name?: string; waId?: string | null } = {}): Json {
  const name = options.name ?? "Jordan Lee";
  const waId = options.waId === undefined ? phone.replace(/\D/g, "") : options.waId;
  const [first, ...rest] = name.split(" ");
  return envelopeOf(from, "contacts", {
    contacts: [{ name: { formatted_name: name, first_name: first, ...(rest.length ? { last_name: rest.join(" ") } : {}) }, phones: [{ phone, type: "CELL", ...(waId ? { wa_id: waId } : {}) }] }],
  });
}

export const buttonReplyMessage = (from: string, id: string, title: string): Json =>
  envelopeOf(from, "interactive", { interactive: { type: "button_reply", button_reply: { id, title } } });

export const listReplyMessage = (from: string, id: string, title: string, description = ""): Json =>
  envelopeOf(from, "interactive", { interactive: { type: "list_reply", list_reply: { id, title, description } } });

/** A template's quick-reply button press. */
export const quickReplyMessage = (from: string, payload: string, text: string): Json => envelopeOf(from, "button", { button: { payload, text } });

/** What a chat opened from a click-to-WhatsApp ad carries on its first message. */
export const withReferral = (message: Json, referral: { source_url?: string; source_id?: string; source_type?: "ad" | "post"; headline?: string }): Json => ({
  ...message,
  referral: { source_type: "ad", media_type: "image", body: "", headline: "", ctwa_clid: randomBytes(12).toString("base64url"), ...referral },
});

export const unsupportedMessage = (from: string): Json =>
  envelopeOf(from, "unsupported", {
    errors: [{ code: 131051, title: "Message type unknown", message: "Message type unknown", error_data: { details: "Message type is currently not supported." } }],
  });

/** One value.statuses[] entry. */
export function statusUpdate(id: string, recipientId: string, status: "sent" | "delivered" | "read" | "failed", error?: StatusError): Json {
  const base: Json = { id, status, timestamp: unixNow(), recipient_id: recipientId };
  if (status === "failed") {
    const e = error ?? STATUS_ERRORS.undeliverable;
    base.errors = [{ code: e.code, title: e.title, message: e.title, error_data: { details: e.details }, href: "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/" }];
  } else if (status !== "read") {
    base.conversation = { id: randomBytes(16).toString("hex"), origin: { type: "service" } };
    base.pricing = { billable: true, pricing_model: "CBP", category: "service" };
  }
  return base;
}

// ---- Graph API error bodies ----

const fbtraceId = (): string => randomBytes(17).toString("base64url").slice(0, 23);

function graphError(status: number, code: number, message: string, extra: { type?: string; subcode?: number; details?: string } = {}): FakeResponse {
  return {
    status,
    body: {
      error: {
        message,
        type: extra.type ?? "OAuthException",
        code,
        ...(extra.subcode === undefined ? {} : { error_subcode: extra.subcode }),
        ...(extra.details === undefined ? {} : { error_data: { messaging_product: "whatsapp", details: extra.details } }),
        fbtrace_id: fbtraceId(),
      },
    },
  };
}

const invalidToken = (): FakeResponse => graphError(401, 190, "Invalid OAuth access token - Cannot parse access token");
const unknownObject = (method: string, id: string): FakeResponse =>
  graphError(
    400,
    100,
    `Unsupported ${method.toLowerCase()} request. Object with ID '${id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api`,
    { type: "GraphMethodException", subcode: 33 },
  );
const invalidParameter = (details: string): FakeResponse => graphError(400, 131009, "(#131009) Parameter value is not valid", { details });
const missingParameter = (name: string): FakeResponse => graphError(400, 100, `(#100) The parameter ${name} is required.`);
const throughputHit = (): FakeResponse => graphError(400, 130429, "(#130429) Rate limit hit", { details: "Cloud API message throughput has been reached." });
const pairRateHit = (): FakeResponse =>
  graphError(400, 131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit", {
    details: "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.",
  });

/**
 * JSON as Meta serializes webhooks: non-ASCII as \uXXXX and "/" as "\/". The signature covers these bytes, so a
 * receiver that re-serializes the parsed body before checking it fails here as it would in production.
 */
const metaJson = (value: unknown): string =>
  JSON.stringify(value).replace(/[\u007f-\uffff]|\//g, (c) => (c === "/" ? "\\/" : "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0")));

const asObject = (v: unknown): Json | undefined => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const length = (s: string): number => [...s].length;

/** What Meta checks in a /messages body before accepting it; undefined when it is fine. */
function validateMessage(type: string, body: Json, media: Map<string, WhatsAppMedia>): FakeResponse | undefined {
  const content = asObject(body[type]);
  if (!content) return missingParameter(type);
  if (type === "text") {
    if (typeof content.body !== "string" || !content.body) return missingParameter("text['body']");
    if (length(content.body) > 4096) return invalidParameter("Text body length invalid. Max length: 4096");
    return undefined;
  }
  if (MEDIA_TYPES.has(type)) {
    const hasLink = typeof content.link === "string";
    const hasId = typeof content.id === "string";
    if (hasLink === hasId) return graphError(400, 100, `(#100) Param ${type} must contain exactly one of link or id`);
    if (hasId && !media.has(content.id as string)) return graphError(400, 100, `(#100) Param ${type}['id'] is not a valid whatsapp business account media attachment ID`);
    if (hasLink && !/^https?:\/\/\S+$/i.test(content.link as string)) return graphError(400, 100, `(#100) Param ${type}['link'] is not a valid URI`);
    if (content.caption !== undefined && !CAPTIONED.has(type)) return graphError(400, 100, `(#100) Param ${type}['caption'] is not a valid parameter`);
    if (typeof content.caption === "string" && length(content.caption) > 1024) return invalidParameter("Media caption length invalid. Max length: 1024");
    return undefined;
  }
  if (type === "interactive" && content.type === "button") {
    const text = asObject(content.body)?.text;
    if (typeof text !== "string" || !text) return missingParameter("interactive['body']['text']");
    if (length(text) > 1024) return invalidParameter("Body text length invalid. Max length: 1024");
    const buttons = asObject(content.action)?.buttons;
    if (!Array.isArray(buttons) || buttons.length < 1 || buttons.length > 3) return invalidParameter("Buttons count invalid. Min: 1, Max: 3");
    const ids = new Set<string>();
    const titles = new Set<string>();
    for (const button of buttons) {
      const reply = asObject(asObject(button)?.reply);
      const id = reply?.id;
      const title = reply?.title;
      if (asObject(button)?.type !== "reply") return invalidParameter("Button type invalid. Expected: reply");
      if (typeof id !== "string" || !id || id.length > 256) return invalidParameter("Button id length invalid. Min length: 1, Max length: 256");
      if (typeof title !== "string" || !title || length(title) > 20) return invalidParameter("Button title length invalid. Min length: 1, Max length: 20");
      if (ids.has(id)) return invalidParameter("Button id is duplicate");
      if (titles.has(title)) return invalidParameter("Button title is duplicate");
      ids.add(id);
      titles.add(title);
    }
  }
  return undefined;
}

interface Bucket {
  tokens: number;
  last: number;
}

function take(buckets: Map<string, Bucket>, key: string, limit: RateLimit, now: number): boolean {
  let bucket = buckets.get(key);
  if (!bucket) {
    bucket = { tokens: limit.burst, last: now };
    buckets.set(key, bucket);
  }
  bucket.tokens = Math.min(limit.burst, bucket.tokens + ((now - bucket.last) / 1000) * limit.ratePerSec);
  bucket.last = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

const GRAPH_PATH = /^\/v\d+\.\d+\/([^/]+)(\/messages)?\/?$/;
const MEDIA_DOWNLOAD_PATH = "/whatsapp_business/attachments/";

let numberCounter = 0;

export class WhatsAppFake {
  readonly sent: WhatsAppSent[] = [];
  readonly limitHits: WhatsAppLimitHit[] = [];
  /** Webhook posts the fake made on its own (statuses) that did not get a 2xx, for tests to assert there are none. */
  readonly webhookFailures: Array<{ url: string; status?: number; error?: string }> = [];
  autoStatuses: boolean;

  private readonly numbers = new Map<string, WhatsAppNumber>();
  private readonly tokens = new Set<string>();
  private readonly media = new Map<string, WhatsAppMedia>();
  private readonly undeliverableWaIds = new Set<string>();
  private readonly numberBuckets = new Map<string, Bucket>();
  private readonly pairBuckets = new Map<string, Bucket>();
  private readonly pending = new Set<Promise<void>>();
  private readonly perNumber: RateLimit;
  private readonly perRecipient: RateLimit;
  private readonly statusDelayMs: number;

  private constructor(
    readonly server: FakeServer,
    options: WhatsAppFakeOptions,
  ) {
    this.perNumber = options.perNumber ?? DEFAULT_PER_NUMBER;
    this.perRecipient = options.perRecipient ?? DEFAULT_PER_RECIPIENT;
    this.autoStatuses = options.autoStatuses ?? false;
    this.statusDelayMs = options.statusDelayMs ?? 5;
  }

  static async start(options: WhatsAppFakeOptions = {}): Promise<WhatsAppFake> {
    let fake: WhatsAppFake | undefined = undefined;
    const server = await FakeServer.start((call) => {
      if (!fake) throw new Error("The WhatsApp fake is still starting");
      return fake.handle(call);
    });
    fake = new WhatsAppFake(server, options);
    return fake;
  }

  /** What the adapter takes as apiBaseUrl (the Graph API root, without the version). */
  get baseUrl(): string {
    return this.server.baseUrl;
  }

  /** Registers a business phone number with its token, app secret and verify token; unspecified ones are generated. */
  addNumber(options: Partial<Omit<WhatsAppNumber, "webhookUrl">> = {}): WhatsAppNumber {
    const n = ++numberCounter;
    const number: WhatsAppNumber = {
      phoneNumberId: String(106_540_352_240_000 + n),
      wabaId: String(102_290_129_340_000 + n),
      displayPhoneNumber: `+1 555-010-${String(1000 + (n % 9000)).padStart(4, "0")}`,
      verifiedName: `Test Business ${n}`,
      accessToken: "EAAG" + randomBytes(60).toString("base64url"),
      appSecret: randomBytes(16).toString("hex"),
      verifyToken: "verify-" + randomBytes(8).toString("hex"),
      ...options,
    };
    this.numbers.set(number.phoneNumberId, number);
    this.tokens.add(number.accessToken);
    return number;
  }

  /** Where the number's webhooks go (Meta: the callback URL of the app's webhook configuration). */
  setWebhook(phoneNumberId: string, url: string): void {
    this.number(phoneNumberId).webhookUrl = url;
  }

  /** Sends to this user are accepted with a wamid, then fail asynchronously with 131026 on the webhook. */
  undeliverable(waId: string): void {
    this.undeliverableWaIds.add(waId.replace(/\D/g, ""));
  }

  /** A media object the number received or uploaded; GET /<version>/<id> resolves it to a download URL. */
  addMedia(phoneNumberId: string, options: { id?: string; mimeType?: string; content?: string } = {}): WhatsAppMedia {
    this.number(phoneNumberId);
    const id = options.id ?? graphId();
    const media: WhatsAppMedia = {
      id,
      phoneNumberId,
      mimeType: options.mimeType ?? "image/jpeg",
      content: options.content ?? `media ${id}`,
      url: `${this.baseUrl}${MEDIA_DOWNLOAD_PATH}?mid=${id}&ext=${Math.floor(Date.now() / 1000) + 300}&hash=${randomBytes(8).toString("base64url")}`,
    };
    this.media.set(id, media);
    return media;
  }

  sentTo(phoneNumberId: string, to: string): WhatsAppSent[] {
    return this.sent.filter((s) => s.phoneNumberId === phoneNumberId && s.to === to);
  }

  /** The exact notification body Meta would post for this number: one entry, one "messages" change. */
  notificationBody(phoneNumberId: string, parts: { contacts?: Json[]; messages?: Json[]; statuses?: Json[] }): string {
    const number = this.number(phoneNumberId);
    const value: Json = { messaging_product: "whatsapp", metadata: { display_phone_number: number.displayPhoneNumber.replace(/\D/g, ""), phone_number_id: number.phoneNumberId } };
    if (parts.contacts) value.contacts = parts.contacts;
    if (parts.messages) value.messages = parts.messages;
    if (parts.statuses) value.statuses = parts.statuses;
    return metaJson({ object: "whatsapp_business_account", entry: [{ id: number.wabaId, changes: [{ value, field: "messages" }] }] });
  }

  /** The X-Hub-Signature-256 value Meta would send with `body` (signed with `secret`, default the number's app secret). */
  signature(phoneNumberId: string, body: string, secret = this.number(phoneNumberId).appSecret): string {
    return "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
  }

  /** Posts an inbound message to the number's webhook, wrapped and signed as Meta does. */
  deliverMessage(phoneNumberId: string, message: Json, options: DeliverOptions = {}): Promise<{ status: number; text: string }> {
    const from = typeof message.from === "string" ? message.from : "";
    const body =
      options.rawBody ??
      this.notificationBody(phoneNumberId, {
        contacts: from ? [{ profile: { name: options.profileName ?? "WhatsApp User" }, wa_id: from }] : [],
        messages: [message],
      });
    return this.postSigned(phoneNumberId, body, options);
  }

  /** Posts one delivery status (see statusUpdate) to the number's webhook. */
  deliverStatus(phoneNumberId: string, status: Json, options: DeliverOptions = {}): Promise<{ status: number; text: string }> {
    return this.postSigned(phoneNumberId, options.rawBody ?? this.notificationBody(phoneNumberId, { statuses: [status] }), options);
  }

  /** Meta's webhook verification: GET url?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…. */
  async verifyChallenge(url: string, verifyToken: string, options: { mode?: string; challenge?: string } = {}): Promise<{ status: number; text: string; challenge: string }> {
    const challenge = options.challenge ?? String(Math.floor(Math.random() * 1e9));
    const target = new URL(url);
    target.searchParams.set("hub.mode", options.mode ?? "subscribe");
    target.searchParams.set("hub.challenge", challenge);
    target.searchParams.set("hub.verify_token", verifyToken);
    const res = await fetch(target);
    return { status: res.status, text: await res.text(), challenge };
  }

  /** Resolves once every status webhook the fake scheduled has been posted. */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  async close(): Promise<void> {
    await this.settle();
    await this.server.close();
  }

  private number(phoneNumberId: string): WhatsAppNumber {
    const number = this.numbers.get(phoneNumberId);
    if (!number) throw new Error(`The WhatsApp fake has no phone number ${phoneNumberId}; call addNumber first`);
    return number;
  }

  private postSigned(phoneNumberId: string, body: string, options: DeliverOptions): Promise<{ status: number; text: string }> {
    const number = this.number(phoneNumberId);
    if (!number.webhookUrl) throw new Error(`No webhook set for WhatsApp number ${phoneNumberId}; call setWebhook first`);
    const headers: Record<string, string> = { "user-agent": "facebookexternalua" };
    const signature = options.signature === undefined ? this.signature(phoneNumberId, body, options.signWith ?? number.appSecret) : options.signature;
    if (signature !== null) headers["x-hub-signature-256"] = signature;
    return postWebhook(number.webhookUrl, body, headers);
  }

  /** Posts statuses for an accepted send later, off the request path, recording failures instead of throwing. */
  private scheduleStatuses(phoneNumberId: string, statuses: Json[]): void {
    const url = this.numbers.get(phoneNumberId)?.webhookUrl;
    if (!url) return;
    const run = (async () => {
      await new Promise((resolve) => setTimeout(resolve, this.statusDelayMs));
      for (const status of statuses) {
        try {
          const res = await this.deliverStatus(phoneNumberId, status);
          if (res.status < 200 || res.status >= 300) this.webhookFailures.push({ url, status: res.status });
        } catch (err) {
          this.webhookFailures.push({ url, error: (err as Error).message });
        }
      }
    })();
    this.pending.add(run);
    void run.finally(() => this.pending.delete(run));
  }

  private handle(call: RecordedCall): FakeResponse {
    if (call.path === MEDIA_DOWNLOAD_PATH && call.method === "GET") return this.download(call);
    const match = GRAPH_PATH.exec(call.path);
    if (!match) return graphError(400, 2500, `Unknown path components: ${call.path}`);
    const bearer = /^Bearer\s+(\S+)$/i.exec(call.headers.authorization ?? "")?.[1];
    const token = bearer ?? call.query.access_token;
    if (!token || !this.tokens.has(token)) return invalidToken();
    const id = match[1] as string;
    if (match[2]) {
      const number = this.numbers.get(id);
      if (call.method !== "POST" || !number || number.accessToken !== token) return unknownObject(call.method, id);
      return this.acceptMessage(number, call);
    }
    if (call.method !== "GET") return unknownObject(call.method, id);
    const number = this.numbers.get(id);
    if (number && number.accessToken === token) return { status: 200, body: this.numberFields(number, call.query.fields) };
    const media = this.media.get(id);
    if (media && this.numbers.get(media.phoneNumberId)?.accessToken === token) {
      if (call.query.phone_number_id && call.query.phone_number_id !== media.phoneNumberId) {
        return graphError(400, 100, "(#100) Param phone_number_id does not match the phone number the media belongs to");
      }
      return {
        status: 200,
        body: { messaging_product: "whatsapp", url: media.url, mime_type: media.mimeType, sha256: sha256Base64(), file_size: String(Buffer.byteLength(media.content)), id: media.id },
      };
    }
    return unknownObject(call.method, id);
  }

  private numberFields(number: WhatsAppNumber, fields: string | undefined): Json {
    const all: Json = {
      display_phone_number: number.displayPhoneNumber,
      verified_name: number.verifiedName,
      quality_rating: "GREEN",
      code_verification_status: "VERIFIED",
      platform_type: "CLOUD_API",
      throughput: { level: "STANDARD" },
    };
    const wanted = fields ? fields.split(",").map((f) => f.trim()) : ["verified_name", "code_verification_status", "display_phone_number", "quality_rating"];
    const out: Json = {};
    for (const field of wanted) if (field in all) out[field] = all[field];
    out.id = number.phoneNumberId;
    return out;
  }

  private acceptMessage(number: WhatsAppNumber, call: RecordedCall): FakeResponse {
    const body = asObject(call.body);
    if (!body || body.messaging_product !== "whatsapp") return missingParameter("messaging_product");
    if (body.recipient_type !== undefined && body.recipient_type !== "individual") return graphError(400, 100, "(#100) Param recipient_type must be one of {INDIVIDUAL}");
    const to = typeof body.to === "string" ? body.to : "";
    const waId = to.replace(/\D/g, "");
    if (!waId) return missingParameter("to");
    const type = typeof body.type === "string" ? body.type : "text";
    if (!SEND_TYPES.has(type)) {
      return graphError(400, 100, `(#100) Param type must be one of {AUDIO, CONTACTS, DOCUMENT, IMAGE, INTERACTIVE, LOCATION, REACTION, STICKER, TEMPLATE, TEXT, VIDEO} - got "${type}".`);
    }
    const invalid = validateMessage(type, body, this.media);
    if (invalid) return invalid;

    const now = Date.now();
    if (!take(this.numberBuckets, number.phoneNumberId, this.perNumber, now)) {
      this.limitHits.push({ phoneNumberId: number.phoneNumberId, to, code: 130429, at: now });
      return throughputHit();
    }
    if (!take(this.pairBuckets, `${number.phoneNumberId}:${waId}`, this.perRecipient, now)) {
      this.limitHits.push({ phoneNumberId: number.phoneNumberId, to, code: 131056, at: now });
      return pairRateHit();
    }

    const id = wamid(waId);
    this.sent.push({ phoneNumberId: number.phoneNumberId, to, type, body, wamid: id, at: now });
    if (this.undeliverableWaIds.has(waId)) {
      this.scheduleStatuses(number.phoneNumberId, [statusUpdate(id, waId, "failed", STATUS_ERRORS.undeliverable)]);
    } else if (this.autoStatuses) {
      this.scheduleStatuses(number.phoneNumberId, [statusUpdate(id, waId, "sent"), statusUpdate(id, waId, "delivered")]);
    }
    return { status: 200, body: { messaging_product: "whatsapp", contacts: [{ input: to, wa_id: waId }], messages: [{ id }] } };
  }

  private download(call: RecordedCall): FakeResponse {
    const media = this.media.get(call.query.mid ?? "");
    const token = /^Bearer\s+(\S+)$/i.exec(call.headers.authorization ?? "")?.[1];
    if (!media) return { status: 404, body: "Not Found" };
    if (!token || this.numbers.get(media.phoneNumberId)?.accessToken !== token) return invalidToken();
    return { status: 200, body: media.content, headers: { "content-type": media.mimeType } };
  }
}
