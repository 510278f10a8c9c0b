import { randomBytes } from "node:crypto";
import { FakeServer, postWebhook, type FakeResponse, type RecordedCall } from "./fake-server";

/**
 * A local VK: the API methods the adapter calls (POST /method/<name>, form-encoded, answers {response} or
 * {error:{error_code, error_msg, request_params}} with HTTP 200 as VK does), a per-token rate limit, and the Callback
 * API side — it posts real event envelopes (with the community's secret key) to a webhook URL.
 */

export const VK_FAKE_API_VERSION = "5.199";

export interface VkFakeGroup {
  groupId: number;
  name: string;
  screenName: string;
  accessToken: string;
  /** The Callback API secret key; undefined = none set, so events go out without one. */
  secret: string | undefined;
  confirmationCode: string;
}

export interface VkKeyboardButton {
  action: { type: string; label?: string; payload?: string; link?: string };
  color?: string;
}

export interface VkKeyboard {
  inline?: boolean;
  one_time?: boolean;
  buttons: VkKeyboardButton[][];
}

export interface VkSentMessage {
  groupId: number;
  peerId: string;
  randomId: number;
  message: string;
  keyboard?: VkKeyboard;
  messageId: number;
  at: number;
}

export interface VkRateLimit {
  ratePerSec: number;
  burst: number;
}

export interface VkFakeOptions {
  /** Calls per community token (every method counts, as on VK). Default 20/s with a burst of 20. */
  perToken?: VkRateLimit;
  /** The clock the rate limit refills by (ms); tests freeze it to make "the 21st immediate call" exact. */
  now?: () => number;
}

/** The `object` of a message_new event (API 5.103+). */
export interface VkMessageNewObject {
  message: Record<string, unknown> & { id: number; date: number; peer_id: number; from_id: number; text: string; attachments: unknown[] };
  client_info: Record<string, unknown>;
}

const ERRORS = {
  1: "Unknown error occurred",
  3: "Unknown method passed",
  5: "User authorization failed",
  6: "Too many requests per second",
  8: "Invalid request: v is required",
  9: "Flood control",
  10: "Internal server error",
  100: "One of the parameters specified was missing or invalid",
  901: "Can't send messages for users without permission",
  902: "Can't send messages to this user due to their privacy settings",
  911: "Keyboard format is invalid",
  914: "Message is too long",
  936: "Contact not found",
} as const;

export type VkErrorCode = keyof typeof ERRORS;

const MAX_MESSAGE_CHARS = 4096;
const KEYBOARD_LIMITS = { inline: { rows: 6, perRow: 5, total: 10 }, standard: { rows: 10, perRow: 5, total: 40 } };
const BUTTON_TYPES = new Set(["text", "open_link", "location", "vkpay", "open_app", "callback"]);

interface Bucket {
  tokens: number;
  last: number;
}

export class VkFake {
  readonly groups = new Map<number, VkFakeGroup>();
  readonly sent: VkSentMessage[] = [];
  /** Calls refused with error 6 by the per-token limit. */
  limitHits = 0;

  private readonly byToken = new Map<string, VkFakeGroup>();
  private readonly byRandomId = new Map<string, VkSentMessage>();
  private readonly buckets = new Map<string, Bucket>();
  /** "<groupId>:<peerId>" or "*:<peerId>" for every community. */
  private readonly denied = new Set<string>();
  private nextGroupId = 200_000_001;
  private nextMessageId = 1;
  private readonly limit: VkRateLimit;
  private readonly now: () => number;

  private constructor(
    readonly server: FakeServer,
    options: VkFakeOptions,
  ) {
    this.limit = options.perToken ?? { ratePerSec: 20, burst: 20 };
    this.now = options.now ?? Date.now;
  }

  static async start(options: VkFakeOptions = {}): Promise<VkFake> {
    // The handler needs the fake and the fake needs the started server: the handler looks it up when called.
    const holder: { fake?: VkFake } = {};
    const server = await FakeServer.start((call) => (holder.fake as VkFake).handle(call));
    holder.fake = new VkFake(server, options);
    return holder.fake;
  }

  get baseUrl(): string {
    return this.server.baseUrl;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  /** A community with a community token; everything not given is generated. */
  addGroup(options: { groupId?: number; accessToken?: string; secret?: string; confirmationCode?: string; name?: string } = {}): VkFakeGroup {
    const groupId = options.groupId ?? this.nextGroupId++;
    const group: VkFakeGroup = {
      groupId,
      name: options.name ?? `Community ${groupId}`,
      screenName: `club${groupId}`,
      accessToken: options.accessToken ?? `vk1.a.${randomBytes(24).toString("hex")}`,
      secret: "secret" in options ? options.secret : randomBytes(8).toString("hex"),
      confirmationCode: options.confirmationCode ?? randomBytes(4).toString("hex"),
    };
    this.groups.set(groupId, group);
    this.byToken.set(group.accessToken, group);
    return group;
  }

  /** The user turns off messages from a community (every community when groupId is omitted): sends get error 901. */
  denyUser(peerId: number | string, groupId?: number): void {
    this.denied.add(`${groupId ?? "*"}:${peerId}`);
  }

  allowUser(peerId: number | string, groupId?: number): void {
    this.denied.delete(`${groupId ?? "*"}:${peerId}`);
  }

  sentTo(groupId: number | string, peerId: number | string): VkSentMessage[] {
    const g = Number(groupId);
    const p = String(peerId);
    return this.sent.filter((m) => m.groupId === g && m.peerId === p);
  }

  /** Posts one Callback API event the way VK does; `secret` overrides the community's (null = leave it out). */
  async deliver(
    webhookUrl: string,
    groupId: number,
    type: string,
    object: unknown,
    options: { secret?: string | null; eventId?: string } = {},
  ): Promise<{ status: number; text: string; eventId: string }> {
    const group = this.requireGroup(groupId);
    const eventId = options.eventId ?? randomBytes(20).toString("hex");
    const secret = options.secret === undefined ? group.secret : options.secret;
    const envelope: Record<string, unknown> = { group_id: groupId, type, event_id: eventId, v: VK_FAKE_API_VERSION, object };
    if (secret !== null && secret !== undefined) envelope.secret = secret;
    const answer = await postWebhook(webhookUrl, JSON.stringify(envelope));
    return { ...answer, eventId };
  }

  /** The request VK sends when the server address is confirmed in the community settings; the answer must be the code. */
  confirm(webhookUrl: string, groupId: number): Promise<{ status: number; text: string }> {
    const group = this.requireGroup(groupId);
    const envelope: Record<string, unknown> = { type: "confirmation", group_id: groupId };
    if (group.secret !== undefined) envelope.secret = group.secret;
    return postWebhook(webhookUrl, JSON.stringify(envelope));
  }

  // ---- builders for event objects ----

  /** A message_new object from a user dialog (peer_id = from_id); `extra` is merged into the message. */
  messageNew(peerId: number | string, text: string, extra: Record<string, unknown> = {}): VkMessageNewObject {
    const peer = Number(peerId);
    const id = this.nextMessageId++;
    return {
      message: {
        date: Math.floor(Date.now() / 1000),
        from_id: peer,
        id,
        out: 0,
        version: 10_000_000 + id,
        attachments: [],
        conversation_message_id: id,
        fwd_messages: [],
        important: false,
        is_hidden: false,
        peer_id: peer,
        random_id: 0,
        text,
        ...extra,
      },
      client_info: {
        button_actions: ["text", "vkpay", "open_app", "location", "open_link", "callback", "intent_subscribe", "intent_unsubscribe"],
        keyboard: true,
        inline_keyboard: true,
        carousel: true,
        lang_id: 0,
      },
    };
  }

  photo(peerId: number | string, options: { text?: string; sizes?: Array<{ type: string; url: string; width: number; height: number }> } = {}): VkMessageNewObject {
    const id = 457_239_000 + this.nextMessageId;
    const base = `https://sun9-1.userapi.com/impg/photo${id}.jpg`;
    const sizes = options.sizes ?? [
      { type: "s", url: `${base}?size=75x56`, width: 75, height: 56 },
      { type: "x", url: `${base}?size=604x453`, width: 604, height: 453 },
      { type: "w", url: `${base}?size=1280x960`, width: 1280, height: 960 },
      { type: "m", url: `${base}?size=130x97`, width: 130, height: 97 },
    ];
    return this.messageNew(peerId, options.text ?? "", {
      attachments: [{ type: "photo", photo: { album_id: -3, date: Math.floor(Date.now() / 1000), id, owner_id: Number(peerId), access_key: "a1b2c3", sizes, text: "", has_tags: false } }],
    });
  }

  doc(peerId: number | string, options: { text?: string; title?: string; size?: number; ext?: string; url?: string } = {}): VkMessageNewObject {
    const id = 660_000_000 + this.nextMessageId;
    const ext = options.ext ?? "pdf";
    return this.messageNew(peerId, options.text ?? "", {
      attachments: [
        {
          type: "doc",
          doc: {
            id,
            owner_id: Number(peerId),
            title: options.title ?? `report.${ext}`,
            size: options.size ?? 48_213,
            ext,
            date: Math.floor(Date.now() / 1000),
            type: 1,
            url: options.url ?? `https://vk.com/doc${peerId}_${id}?hash=0f1e2d&dl=GQ4DA&api=1`,
            access_key: "d4e5f6",
          },
        },
      ],
    });
  }

  audioMessage(peerId: number | string, options: { duration?: number; linkMp3?: string; linkOgg?: string } = {}): VkMessageNewObject {
    const id = 670_000_000 + this.nextMessageId;
    return this.messageNew(peerId, "", {
      attachments: [
        {
          type: "audio_message",
          audio_message: {
            id,
            owner_id: Number(peerId),
            duration: options.duration ?? 3,
            waveform: [0, 7, 15, 31, 12, 3],
            link_ogg: options.linkOgg ?? `https://psv4.userapi.com/c1/u${peerId}/audiomsg/${id}.ogg`,
            link_mp3: options.linkMp3 ?? `https://psv4.userapi.com/c1/u${peerId}/audiomsg/${id}.mp3`,
            access_key: "a7b8c9",
          },
        },
      ],
    });
  }

  video(peerId: number | string, options: { ownerId?: number; id?: number; title?: string } = {}): VkMessageNewObject {
    const id = options.id ?? 456_239_000 + this.nextMessageId;
    return this.messageNew(peerId, "", {
      attachments: [{ type: "video", video: { id, owner_id: options.ownerId ?? Number(peerId), title: options.title ?? "clip", duration: 12, access_key: "v1", date: Math.floor(Date.now() / 1000) } }],
    });
  }

  sticker(peerId: number | string, stickerId = 9014): VkMessageNewObject {
    const image = (side: number) => ({ url: `https://vk.com/sticker/1-${stickerId}-${side}`, width: side, height: side });
    return this.messageNew(peerId, "", {
      attachments: [{ type: "sticker", sticker: { product_id: 279, sticker_id: stickerId, images: [image(64), image(512), image(128)], images_with_background: [image(64), image(512)] } }],
    });
  }

  geo(peerId: number | string, latitude: number, longitude: number): VkMessageNewObject {
    return this.messageNew(peerId, "", {
      geo: { type: "point", coordinates: { latitude, longitude }, place: { country: "Россия", city: "Москва", title: "Россия, Москва" } },
    });
  }

  /**
   * The user presses a keyboard button: VK sends the label as text and the button's `payload` string unchanged.
   * `payload` is the action.payload exactly as the keyboard carried it (see `sent[i].keyboard`); the label is looked
   * up in the keyboards sent to this peer when not given.
   */
  buttonPress(peerId: number | string, payload: string, label?: string): VkMessageNewObject {
    return this.messageNew(peerId, label ?? this.labelFor(String(peerId), payload), { payload });
  }

  messageDeny(userId: number): { user_id: number } {
    return { user_id: userId };
  }

  messageAllow(userId: number, key = ""): { user_id: number; key: string } {
    return { user_id: userId, key };
  }

  // ---- the API ----

  private handle(call: RecordedCall): FakeResponse {
    const match = /^\/method\/([A-Za-z]+\.[A-Za-z]+)$/.exec(call.path);
    if (!match) return { status: 404, body: "404 Not Found" };
    const method = match[1] as string;
    const form = call.headers["content-type"]?.includes("application/x-www-form-urlencoded") && call.body && typeof call.body === "object" ? (call.body as Record<string, string>) : {};
    const params: Record<string, string> = { ...call.query, ...form };
    const bearer = /^Bearer (.+)$/i.exec(call.headers.authorization ?? "")?.[1];
    const token = params.access_token ?? bearer;
    const requestParams = [
      { key: "method", value: method },
      { key: "oauth", value: "1" },
      ...Object.entries(params)
        .filter(([k]) => k !== "access_token")
        .map(([key, value]) => ({ key, value })),
    ];
    const error = (code: VkErrorCode, detail?: string): FakeResponse => ({
      status: 200,
      body: { error: { error_code: code, error_msg: detail ? `${ERRORS[code]}: ${detail}` : ERRORS[code], request_params: requestParams } },
    });

    if (!token) return error(5, "no access_token passed.");
    const group = this.byToken.get(token);
    if (!group) return error(5, "invalid access_token (4).");
    if (!params.v) return error(8);
    if (!this.takeToken(token)) {
      this.limitHits++;
      return error(6);
    }
    switch (method) {
      case "groups.getById":
        return this.groupsGetById(group, params, error);
      case "messages.send":
        return this.messagesSend(group, params, error);
      default:
        return error(3);
    }
  }

  private groupsGetById(group: VkFakeGroup, params: Record<string, string>, error: (code: VkErrorCode, detail?: string) => FakeResponse): FakeResponse {
    const asked = (params.group_ids ?? params.group_id ?? "").split(",").filter(Boolean);
    const found: VkFakeGroup[] = [];
    if (asked.length === 0) found.push(group);
    for (const ref of asked) {
      const id = Number(ref.replace(/^(club|public)/, ""));
      const other = this.groups.get(id) ?? [...this.groups.values()].find((g) => g.screenName === ref);
      if (!other) return error(100, "group_ids is invalid");
      found.push(other);
    }
    const describe = (g: VkFakeGroup) => ({
      id: g.groupId,
      name: g.name,
      screen_name: g.screenName,
      is_closed: 0,
      type: "group",
      photo_50: `https://sun9-2.userapi.com/club${g.groupId}/50.jpg`,
      photo_100: `https://sun9-2.userapi.com/club${g.groupId}/100.jpg`,
      photo_200: `https://sun9-2.userapi.com/club${g.groupId}/200.jpg`,
    });
    return { status: 200, body: { response: { groups: found.map(describe), profiles: [] } } };
  }

  private messagesSend(group: VkFakeGroup, params: Record<string, string>, error: (code: VkErrorCode, detail?: string) => FakeResponse): FakeResponse {
    const peerId = params.peer_id ?? params.user_id;
    if (!peerId || !/^-?\d+$/.test(peerId)) return error(100, "peer_id is undefined");
    if (params.random_id === undefined) return error(100, "random_id is a required parameter");
    const randomId = Number(params.random_id);
    if (!Number.isInteger(randomId) || randomId < -2_147_483_648 || randomId > 2_147_483_647) return error(100, "random_id not integer");
    const message = params.message ?? "";
    if (!message.trim() && !params.attachment) return error(100, "message is empty or invalid");
    if (message.length > MAX_MESSAGE_CHARS) return error(914);
    let keyboard: VkKeyboard | undefined;
    if (params.keyboard !== undefined) {
      keyboard = parseKeyboard(params.keyboard);
      if (!keyboard) return error(911);
    }
    if (this.denied.has(`*:${peerId}`) || this.denied.has(`${group.groupId}:${peerId}`)) return error(901);

    // VK keeps random_id per sender and peer: the repeat is not delivered again and gets the first message's id.
    const key = `${group.groupId}:${peerId}:${randomId}`;
    if (randomId !== 0) {
      const earlier = this.byRandomId.get(key);
      if (earlier) return { status: 200, body: { response: earlier.messageId } };
    }
    const sent: VkSentMessage = { groupId: group.groupId, peerId, randomId, message, messageId: this.nextMessageId++, at: Date.now() };
    if (keyboard) sent.keyboard = keyboard;
    this.sent.push(sent);
    if (randomId !== 0) this.byRandomId.set(key, sent);
    return { status: 200, body: { response: sent.messageId } };
  }

  private takeToken(token: string): boolean {
    const now = this.now();
    const bucket = this.buckets.get(token) ?? { tokens: this.limit.burst, last: now };
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + ((now - bucket.last) / 1000) * this.limit.ratePerSec);
    bucket.last = now;
    this.buckets.set(token, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  private labelFor(peerId: string, payload: string): string {
    for (let i = this.sent.length - 1; i >= 0; i--) {
      const sent = this.sent[i] as VkSentMessage;
      if (sent.peerId !== peerId || !sent.keyboard) continue;
      for (const row of sent.keyboard.buttons) for (const button of row) if (button.action.payload === payload) return button.action.label ?? "";
    }
    return "";
  }

  private requireGroup(groupId: number): VkFakeGroup {
    const group = this.groups.get(groupId);
    if (!group) throw new Error(`VkFake: no community ${groupId}; call addGroup() first`);
    return group;
  }
}

/** The keyboard as VK would accept it, or undefined where VK answers 911 "Keyboard format is invalid". */
function parseKeyboard(raw: string): VkKeyboard | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!parsed || typeof parsed !== "object" || !Array.isArray((parsed as VkKeyboard).buttons)) return undefined;
  const keyboard = parsed as VkKeyboard;
  const limits = keyboard.inline ? KEYBOARD_LIMITS.inline : KEYBOARD_LIMITS.standard;
  if (keyboard.buttons.length > limits.rows) return undefined;
  let total = 0;
  for (const row of keyboard.buttons) {
    if (!Array.isArray(row) || row.length > limits.perRow) return undefined;
    total += row.length;
    for (const button of row) {
      const action = button?.action;
      if (!action || !BUTTON_TYPES.has(action.type)) return undefined;
      if (action.payload !== undefined && (typeof action.payload !== "string" || action.payload.length > 255)) return undefined;
      if (action.type === "text" || action.type === "callback" || action.type === "open_link") {
        if (typeof action.label !== "string" || action.label.length === 0 || [...action.label].length > 40) return undefined;
      }
      if (action.type === "open_link" && (typeof action.link !== "string" || !/^https?:\/\//.test(action.link))) return undefined;
    }
  }
  return total <= limits.total ? keyboard : undefined;
}
