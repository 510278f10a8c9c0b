import { randomBytes } from "node:crypto";
import { Agent, request } from "undici";
import { FakeServer, type FakeResponse, type RecordedCall } from "./fake-server";

/**
 * A local Telegram Bot API: the real URL layout (/bot<token>/<method>, /file/bot<token>/<path>), the real
 * {ok, result} / {ok:false, error_code, description, parameters} envelopes with HTTP status = error_code, the
 * real error descriptions, token-bucket flood limits answering the real 429, and webhook delivery with the
 * X-Telegram-Bot-Api-Secret-Token header. Deviations from the real API, all for running on loopback:
 * setWebhook accepts http:// URLs on any port, media URLs are accepted without being fetched, and
 * deliverUpdate posts whatever update it is given (allowed_updates is stored but not applied).
 */

export interface TelegramUser {
  id: number;
  is_bot: boolean;
  first_name: string;
  last_name?: string;
  username?: string;
  language_code?: string;
}

export interface TelegramChat {
  id: number;
  type: "private" | "group" | "supergroup" | "channel";
  first_name?: string;
  last_name?: string;
  username?: string;
  title?: string;
}

export interface TelegramFile {
  file_id: string;
  file_unique_id: string;
  file_size?: number;
  file_name?: string;
  mime_type?: string;
  width?: number;
  height?: number;
  duration?: number;
}

export interface TelegramInlineKeyboard {
  inline_keyboard: Array<Array<{ text: string; callback_data?: string; url?: string }>>;
}

export interface TelegramMessage {
  message_id: number;
  from?: TelegramUser;
  chat: TelegramChat;
  date: number;
  text?: string;
  caption?: string;
  photo?: TelegramFile[];
  video?: TelegramFile;
  audio?: TelegramFile;
  voice?: TelegramFile;
  document?: TelegramFile;
  contact?: { phone_number: string; first_name: string; last_name?: string; user_id?: number };
  location?: { latitude: number; longitude: number };
  reply_markup?: TelegramInlineKeyboard;
  [field: string]: unknown;
}

export interface TelegramCallbackQuery {
  id: string;
  from: TelegramUser;
  message?: TelegramMessage;
  chat_instance: string;
  data?: string;
}

export interface TelegramChatMemberUpdated {
  chat: TelegramChat;
  from: TelegramUser;
  date: number;
  old_chat_member: { user: TelegramUser; status: string; until_date?: number };
  new_chat_member: { user: TelegramUser; status: string; until_date?: number };
}

export interface TelegramUpdate {
  /** Assigned by deliverUpdate when missing, increasing per bot, as Telegram does. */
  update_id?: number;
  message?: TelegramMessage;
  callback_query?: TelegramCallbackQuery;
  my_chat_member?: TelegramChatMemberUpdated;
  [field: string]: unknown;
}

/** A token bucket: `burst` calls at once, then `ratePerSec`. A non-finite ratePerSec switches the limit off (benchmarks). */
export interface TelegramLimit {
  ratePerSec: number;
  burst: number;
}

export interface TelegramFakeOptions {
  /** All sends of one bot; Telegram's broadcast limit is about 30 messages per second. */
  perBot?: TelegramLimit;
  /** Sends to one chat; Telegram allows about one message per second to a chat, with short bursts. */
  perChat?: TelegramLimit;
}

export interface TelegramBotInfo {
  token: string;
  id: number;
  username: string;
}

/** One message the fake accepted from a send method. */
export interface TelegramSent {
  token: string;
  chatId: string;
  method: string;
  text?: string;
  caption?: string;
  /** The photo / video / audio / document parameter as given: a URL or a file id. */
  media?: string;
  replyMarkup?: unknown;
  messageId: number;
  at: number;
}

interface StoredFile {
  fileId: string;
  uniqueId: string;
  size: number;
  path: string;
}

interface BotState {
  info: TelegramBotInfo;
  webhook?: { url: string; secretToken: string; allowedUpdates?: unknown };
  blocked: Set<string>;
  missing: Set<string>;
  chats: Map<string, TelegramChat>;
  files: Map<string, StoredFile>;
  openCallbacks: Set<string>;
  nextUpdateId: number;
  nextMessageId: number;
  nextFileNo: number;
  bucket: TokenBucket;
  chatBuckets: Map<string, TokenBucket>;
}

type Params = Record<string, unknown>;
type MethodHandler = (bot: BotState, params: Params) => FakeResponse;

const API_PATH = /^\/bot([^/]+)\/([^/]+)$/;
const FILE_PATH = /^\/file\/bot([^/]+)\/(.+)$/;
const SECRET_TOKEN_SHAPE = /^[A-Za-z0-9_-]{1,256}$/;
const CHAT_ID_SHAPE = /^-?\d+$/;
/** getFile refuses files above 20 MB: bots cannot download them. */
const DOWNLOAD_LIMIT = 20 * 1024 * 1024;
const TEXT_LIMIT = 4096;
const CAPTION_LIMIT = 1024;
const MEDIA_FIELDS = ["photo", "video", "audio", "voice", "document", "video_note", "animation", "sticker"] as const;
const FILE_FOLDERS: Record<string, string> = {
  photo: "photos/file_{n}.jpg",
  video: "videos/file_{n}.mp4",
  video_note: "video_notes/file_{n}.mp4",
  animation: "animations/file_{n}.mp4",
  audio: "music/file_{n}.mp3",
  voice: "voice/file_{n}.oga",
  document: "documents/file_{n}",
  sticker: "stickers/file_{n}.webp",
};

class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly limit: TelegramLimit,
    now: number,
  ) {
    this.tokens = limit.burst;
    this.at = now;
  }

  /** Milliseconds until one token is free; 0 means a call may go now. */
  waitMs(now: number): number {
    if (!Number.isFinite(this.limit.ratePerSec)) return 0;
    this.tokens = Math.min(this.limit.burst, this.tokens + ((now - this.at) / 1000) * this.limit.ratePerSec);
    this.at = now;
    return this.tokens >= 1 ? 0 : ((1 - this.tokens) / this.limit.ratePerSec) * 1000;
  }

  take(): void {
    if (Number.isFinite(this.limit.ratePerSec)) this.tokens -= 1;
  }
}

function ok(result: unknown, description?: string): FakeResponse {
  return { status: 200, body: description === undefined ? { ok: true, result } : { ok: true, result, description } };
}

function fail(code: number, description: string, parameters?: Record<string, unknown>): FakeResponse {
  return { status: code, body: parameters ? { ok: false, error_code: code, description, parameters } : { ok: false, error_code: code, description } };
}

const notFound = (): FakeResponse => fail(404, "Not Found");
const badRequest = (what: string): FakeResponse => fail(400, `Bad Request: ${what}`);

/** Form-encoded calls carry arrays and objects as JSON strings; JSON calls may carry either. */
function jsonParam(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return Symbol.for("unparseable");
  }
}

function stringParam(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  return undefined;
}

/** What Telegram checks in an inline keyboard before sending; returns its error description or the parsed markup. */
function checkReplyMarkup(value: unknown): { markup?: unknown } | { error: string } {
  if (value === undefined) return {};
  const markup = jsonParam(value);
  if (typeof markup !== "object" || markup === null) return { error: "can't parse reply keyboard markup JSON object" };
  const keyboard = (markup as { inline_keyboard?: unknown }).inline_keyboard;
  if (keyboard === undefined) return { markup };
  if (!Array.isArray(keyboard) || !keyboard.every(Array.isArray)) return { error: "can't parse inline keyboard button: field \"inline_keyboard\" must be an Array of Arrays" };
  for (const row of keyboard as unknown[][]) {
    for (const button of row as Array<{ text?: unknown; callback_data?: unknown; url?: unknown }>) {
      if (typeof button?.text !== "string") return { error: "can't parse inline keyboard button: Field \"text\" must be of type String" };
      if (button.callback_data !== undefined) {
        const bytes = typeof button.callback_data === "string" ? Buffer.byteLength(button.callback_data) : 0;
        if (bytes < 1 || bytes > 64) return { error: "BUTTON_DATA_INVALID" };
      } else if (typeof button.url !== "string") {
        return { error: "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard" };
      }
    }
  }
  return { markup };
}

// --- update builders: plain objects shaped like the updates Telegram posts ---------------------------------------

/** Stands for the bot in built updates; deliverUpdate swaps in the real bot that receives them. */
const BUILDER_BOT: TelegramUser = { id: 7000000000, is_bot: true, first_name: "Test bot", username: "test_bot" };
let builderSeq = 0;

function nowSec(): number {
  return Math.floor(Date.now() / 1000);
}

function user(chatId: number, from?: Partial<TelegramUser>): TelegramUser {
  return { id: chatId, is_bot: false, first_name: "Anna", last_name: "Petrova", username: "anna_petrova", language_code: "ru", ...from };
}

function privateChat(chatId: number, sender: TelegramUser): TelegramChat {
  const chat: TelegramChat = { id: chatId, first_name: sender.first_name, type: "private" };
  if (sender.last_name !== undefined) chat.last_name = sender.last_name;
  if (sender.username !== undefined) chat.username = sender.username;
  return chat;
}

function message(chatId: number, content: Partial<TelegramMessage>, from?: Partial<TelegramUser>): TelegramUpdate {
  const sender = user(chatId, from);
  return { message: { message_id: ++builderSeq, from: sender, chat: privateChat(chatId, sender), date: nowSec(), ...content } };
}

/** Shaped like real file ids (base64url, a type-specific prefix), unique within the test run. */
function fileId(prefix: string): string {
  return `${prefix}AAxkBAAI${(++builderSeq).toString(36).padStart(6, "0")}ZmFrZQ`;
}

function uniqueIdOf(id: string): string {
  return `AQAD${id.slice(-12)}`;
}

export interface MediaUpdateOptions {
  caption?: string;
  fileId?: string;
  fileSize?: number;
  from?: Partial<TelegramUser>;
}

export function textUpdate(chatId: number, text: string, from?: Partial<TelegramUser>): TelegramUpdate {
  return message(chatId, { text }, from);
}

/** What Telegram posts when a user opens t.me/<bot>?start=<payload> and presses Start (or types /start). */
export function startUpdate(chatId: number, payload?: string, from?: Partial<TelegramUser>): TelegramUpdate {
  const text = payload ? `/start ${payload}` : "/start";
  return message(chatId, { text, entities: [{ offset: 0, length: 6, type: "bot_command" }] }, from);
}

/** A photo arrives in several sizes, smallest first. */
export function photoUpdate(chatId: number, options: MediaUpdateOptions = {}): TelegramUpdate {
  const id = options.fileId ?? fileId("AgACAgIAAx");
  const sizes: TelegramFile[] = [
    { file_id: `${id}_s`, file_unique_id: uniqueIdOf(`${id}_s`), file_size: 1_203, width: 90, height: 68 },
    { file_id: `${id}_m`, file_unique_id: uniqueIdOf(`${id}_m`), file_size: 14_876, width: 320, height: 240 },
    { file_id: id, file_unique_id: uniqueIdOf(id), file_size: options.fileSize ?? 81_519, width: 1280, height: 960 },
  ];
  return message(chatId, { photo: sizes, ...(options.caption !== undefined && { caption: options.caption }) }, options.from);
}

export function videoUpdate(chatId: number, options: MediaUpdateOptions = {}): TelegramUpdate {
  const id = options.fileId ?? fileId("BAACAgIAAx");
  const video: TelegramFile = { file_id: id, file_unique_id: uniqueIdOf(id), file_size: options.fileSize ?? 2_345_678, width: 720, height: 1280, duration: 12, mime_type: "video/mp4", file_name: "clip.mp4" };
  return message(chatId, { video, ...(options.caption !== undefined && { caption: options.caption }) }, options.from);
}

export function audioUpdate(chatId: number, options: MediaUpdateOptions = {}): TelegramUpdate {
  const id = options.fileId ?? fileId("CQACAgIAAx");
  const audio: TelegramFile = { file_id: id, file_unique_id: uniqueIdOf(id), file_size: options.fileSize ?? 4_012_345, duration: 183, mime_type: "audio/mpeg", file_name: "song.mp3" };
  return message(chatId, { audio, ...(options.caption !== undefined && { caption: options.caption }) }, options.from);
}

/** A voice note: OGG/Opus, no file name. */
export function voiceUpdate(chatId: number, options: MediaUpdateOptions & { durationSec?: number } = {}): TelegramUpdate {
  const id = options.fileId ?? fileId("AwACAgIAAx");
  const voice: TelegramFile = { file_id: id, file_unique_id: uniqueIdOf(id), file_size: options.fileSize ?? 9_876, duration: options.durationSec ?? 4, mime_type: "audio/ogg" };
  return message(chatId, { voice }, options.from);
}

export function documentUpdate(chatId: number, options: MediaUpdateOptions & { fileName?: string; mimeType?: string } = {}): TelegramUpdate {
  const id = options.fileId ?? fileId("BQACAgIAAx");
  const document: TelegramFile = {
    file_id: id,
    file_unique_id: uniqueIdOf(id),
    file_size: options.fileSize ?? 52_311,
    file_name: options.fileName ?? "invoice.pdf",
    mime_type: options.mimeType ?? "application/pdf",
  };
  return message(chatId, { document, ...(options.caption !== undefined && { caption: options.caption }) }, options.from);
}

/** The user shared their own phone with the "share contact" button. */
export function contactUpdate(chatId: number, phone: string, from?: Partial<TelegramUser>): TelegramUpdate {
  const sender = user(chatId, from);
  const contact = { phone_number: phone, first_name: sender.first_name, ...(sender.last_name !== undefined && { last_name: sender.last_name }), user_id: sender.id };
  return message(chatId, { contact }, from);
}

export function locationUpdate(chatId: number, latitude: number, longitude: number, from?: Partial<TelegramUser>): TelegramUpdate {
  return message(chatId, { location: { latitude, longitude } }, from);
}

/** The user pressed an inline button carrying `data` under a message the bot had sent. */
export function callbackUpdate(chatId: number, data: string, options: { label?: string; from?: Partial<TelegramUser> } = {}): TelegramUpdate {
  const sender = user(chatId, options.from);
  const label = options.label ?? `Button ${data}`;
  const keyboardMessage: TelegramMessage = {
    message_id: ++builderSeq,
    from: BUILDER_BOT,
    chat: privateChat(chatId, sender),
    date: nowSec() - 60,
    text: "Choose an option",
    reply_markup: { inline_keyboard: [[{ text: label, callback_data: data }]] },
  };
  return {
    callback_query: {
      id: `${Math.abs(chatId)}${String(++builderSeq).padStart(6, "0")}`,
      from: sender,
      message: keyboardMessage,
      chat_instance: `-${Math.abs(chatId) * 7 + 1}`,
      data,
    },
  };
}

/** The user blocked the bot (new status "kicked") or unblocked it ("member"). */
export function chatMemberUpdate(chatId: number, blocked: boolean, from?: Partial<TelegramUser>): TelegramUpdate {
  const sender = user(chatId, from);
  const kicked = { user: BUILDER_BOT, status: "kicked", until_date: 0 };
  const member = { user: BUILDER_BOT, status: "member" };
  return {
    my_chat_member: {
      chat: privateChat(chatId, sender),
      from: sender,
      date: nowSec(),
      old_chat_member: blocked ? member : kicked,
      new_chat_member: blocked ? kicked : member,
    },
  };
}

// --- the fake -----------------------------------------------------------------------------------------------------

export class TelegramFake {
  readonly sent: TelegramSent[] = [];
  /** 429s answered because of the fake's own flood limits (scripted answers are not counted). */
  limitHits = 0;
  private readonly bots = new Map<string, BotState>();
  private readonly methods: Record<string, MethodHandler>;
  /** Webhook posts go through a keep-alive pool: global fetch (postWebhook) tops out near 900 posts/s, a benchmark needs more. */
  private readonly webhookAgent = new Agent({ keepAliveTimeout: 30_000, connections: 128 });
  private nextBotId = 7000000001;

  private constructor(
    private readonly limits: Required<TelegramFakeOptions>,
    readonly server: FakeServer,
  ) {
    this.methods = {
      getme: (bot) => ok(this.botUser(bot, true)),
      setwebhook: (bot, p) => this.setWebhook(bot, p),
      deletewebhook: (bot) => {
        const had = bot.webhook !== undefined;
        delete bot.webhook;
        return ok(true, had ? "Webhook was deleted" : "Webhook is already deleted");
      },
      getwebhookinfo: (bot) => this.webhookInfo(bot),
      sendmessage: (bot, p) => this.sendCall(bot, "sendMessage", p),
      sendphoto: (bot, p) => this.sendCall(bot, "sendPhoto", p, "photo"),
      sendvideo: (bot, p) => this.sendCall(bot, "sendVideo", p, "video"),
      sendaudio: (bot, p) => this.sendCall(bot, "sendAudio", p, "audio"),
      senddocument: (bot, p) => this.sendCall(bot, "sendDocument", p, "document"),
      answercallbackquery: (bot, p) => {
        const id = stringParam(p.callback_query_id);
        if (!id || !bot.openCallbacks.delete(id)) return badRequest("query is too old and response timeout expired or query ID is invalid");
        return ok(true);
      },
      getfile: (bot, p) => this.getFile(bot, p),
    };
  }

  /** Defaults: perBot 30/s burst 30, perChat 1/s burst 3. Pass {ratePerSec: Infinity, burst: Infinity} to switch a limit off. */
  static async start(options: TelegramFakeOptions = {}): Promise<TelegramFake> {
    // The handler runs only for requests, which cannot arrive before start() has returned and `fake` exists.
    const server = await FakeServer.start((call) => fake.handle(call));
    const fake = new TelegramFake({ perBot: options.perBot ?? { ratePerSec: 30, burst: 30 }, perChat: options.perChat ?? { ratePerSec: 1, burst: 3 } }, server);
    return fake;
  }

  get baseUrl(): string {
    return this.server.baseUrl;
  }

  /** Registers a bot; only its token is accepted by the API (others get 401 Unauthorized). */
  addBot(options: { token?: string; id?: number; username?: string } = {}): TelegramBotInfo {
    const id = options.id ?? this.nextBotId++;
    const info: TelegramBotInfo = {
      id,
      username: options.username ?? `test_${id}_bot`,
      // Real tokens: "<bot id>:" and 35 characters of base64url starting with "AA".
      token: options.token ?? `${id}:AA${randomBytes(27).toString("base64url").slice(0, 33)}`,
    };
    const now = Date.now();
    this.bots.set(info.token, {
      info,
      blocked: new Set(),
      missing: new Set(),
      chats: new Map(),
      files: new Map(),
      openCallbacks: new Set(),
      nextUpdateId: 100_000_001,
      nextMessageId: 1,
      nextFileNo: 1,
      bucket: new TokenBucket(this.limits.perBot, now),
      chatBuckets: new Map(),
    });
    return info;
  }

  /** Sends to the chat fail with 403 "Forbidden: bot was blocked by the user" until unblockChat. */
  blockChat(token: string, chatId: string | number): void {
    this.bot(token).blocked.add(String(chatId));
  }

  unblockChat(token: string, chatId: string | number): void {
    this.bot(token).blocked.delete(String(chatId));
  }

  /** Sends to the chat fail with 400 "Bad Request: chat not found" (the user never started the bot, or deleted the account). */
  missingChat(token: string, chatId: string | number): void {
    this.bot(token).missing.add(String(chatId));
  }

  /** The webhook setWebhook registered, if any (deleteWebhook clears it). */
  webhookOf(token: string): { url: string; secretToken: string } | undefined {
    const hook = this.bot(token).webhook;
    return hook && { url: hook.url, secretToken: hook.secretToken };
  }

  sentTo(token: string, chatId: string | number): TelegramSent[] {
    const chat = String(chatId);
    return this.sent.filter((s) => s.token === token && s.chatId === chat);
  }

  /**
   * Posts an update to the bot's webhook as Telegram would: JSON body, the secret header (`secretToken` overrides
   * it; null leaves the header out), update_id assigned when missing. The files and callback queries it carries
   * become known to getFile and answerCallbackQuery.
   */
  async deliverUpdate(token: string, update: TelegramUpdate, options: { secretToken?: string | null } = {}): Promise<{ status: number; text: string; updateId: number }> {
    const bot = this.bot(token);
    const hook = bot.webhook;
    if (!hook) throw new Error(`Bot @${bot.info.username} has no webhook: nothing called setWebhook (or deleteWebhook removed it)`);
    const updateId = typeof update.update_id === "number" ? update.update_id : bot.nextUpdateId;
    bot.nextUpdateId = Math.max(bot.nextUpdateId, updateId + 1);
    this.learn(bot, update);
    const botUser = this.botUser(bot, false);
    const body = JSON.stringify({ ...update, update_id: updateId }, (_key, value: unknown) => (value === BUILDER_BOT ? botUser : value));
    const secret = options.secretToken === undefined ? hook.secretToken : options.secretToken;
    const headers: Record<string, string> = secret ? { "x-telegram-bot-api-secret-token": secret } : {};
    const answer = await request(hook.url, { method: "POST", body, headers: { "content-type": "application/json", ...headers }, dispatcher: this.webhookAgent });
    return { status: answer.statusCode, text: await answer.body.text(), updateId };
  }

  async close(): Promise<void> {
    await this.webhookAgent.close();
    await this.server.close();
  }

  private handle(call: RecordedCall): FakeResponse {
    const download = FILE_PATH.exec(call.path);
    if (download) return this.download(download[1] ?? "", download[2] ?? "");
    const match = API_PATH.exec(call.path);
    if (!match) return notFound();
    const bot = this.bots.get(decodeURIComponent(match[1] ?? ""));
    if (!bot) return fail(401, "Unauthorized");
    // Bot API method names are case-insensitive.
    const method = this.methods[(match[2] ?? "").toLowerCase()];
    if (!method) return notFound();
    const body = typeof call.body === "object" && call.body !== null ? (call.body as Params) : {};
    return method(bot, { ...call.query, ...body });
  }

  private bot(token: string): BotState {
    const bot = this.bots.get(token);
    if (!bot) throw new Error(`No bot with token ${token}: call addBot first`);
    return bot;
  }

  private botUser(bot: BotState, full: boolean): TelegramUser & Record<string, unknown> {
    const base = { id: bot.info.id, is_bot: true, first_name: "Test bot", username: bot.info.username };
    if (!full) return base;
    return { ...base, can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false, can_connect_to_business: false, has_main_web_app: false };
  }

  private setWebhook(bot: BotState, params: Params): FakeResponse {
    const url = stringParam(params.url) ?? "";
    if (url === "") {
      const had = bot.webhook !== undefined;
      delete bot.webhook;
      return ok(true, had ? "Webhook was deleted" : "Webhook is already deleted");
    }
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return badRequest("bad webhook: An HTTPS URL must be provided for webhook");
    }
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return badRequest("bad webhook: An HTTPS URL must be provided for webhook");
    const secretToken = stringParam(params.secret_token) ?? "";
    if (secretToken !== "" && !SECRET_TOKEN_SHAPE.test(secretToken)) return badRequest("secret token contains unallowed characters");
    const allowedUpdates = params.allowed_updates === undefined ? undefined : jsonParam(params.allowed_updates);
    if (allowedUpdates !== undefined && !Array.isArray(allowedUpdates)) return badRequest("can't parse allowed updates: JSON array expected");
    const same = bot.webhook?.url === url && bot.webhook.secretToken === secretToken;
    bot.webhook = { url, secretToken, allowedUpdates };
    return ok(true, same ? "Webhook is already set" : "Webhook was set");
  }

  private webhookInfo(bot: BotState): FakeResponse {
    const hook = bot.webhook;
    if (!hook) return ok({ url: "", has_custom_certificate: false, pending_update_count: 0 });
    const info: Record<string, unknown> = { url: hook.url, has_custom_certificate: false, pending_update_count: 0, max_connections: 40, ip_address: "127.0.0.1" };
    if (hook.allowedUpdates !== undefined) info.allowed_updates = hook.allowedUpdates;
    return ok(info);
  }

  private sendCall(bot: BotState, method: string, params: Params, mediaField?: "photo" | "video" | "audio" | "document"): FakeResponse {
    const chatId = stringParam(params.chat_id);
    if (!chatId) return badRequest("chat_id is empty");

    const now = Date.now();
    let chatBucket = bot.chatBuckets.get(chatId);
    if (!chatBucket) bot.chatBuckets.set(chatId, (chatBucket = new TokenBucket(this.limits.perChat, now)));
    const waitMs = Math.max(bot.bucket.waitMs(now), chatBucket.waitMs(now));
    if (waitMs > 0) {
      this.limitHits++;
      const retryAfter = Math.max(1, Math.ceil(waitMs / 1000));
      return fail(429, `Too Many Requests: retry after ${retryAfter}`, { retry_after: retryAfter });
    }
    bot.bucket.take();
    chatBucket.take();

    if (!CHAT_ID_SHAPE.test(chatId) || bot.missing.has(chatId)) return badRequest("chat not found");
    if (bot.blocked.has(chatId)) return fail(403, "Forbidden: bot was blocked by the user");

    const checked = checkReplyMarkup(params.reply_markup);
    if ("error" in checked) return badRequest(checked.error);

    const text = stringParam(params.text);
    const caption = stringParam(params.caption);
    const result: TelegramMessage = { message_id: bot.nextMessageId++, from: this.botUser(bot, false), chat: this.chatOf(bot, chatId), date: Math.floor(now / 1000) };
    let media: string | undefined;
    if (mediaField) {
      media = stringParam(params[mediaField]);
      if (!media) return badRequest(`there is no ${mediaField} in the request`);
      if (!/^https?:\/\//.test(media) && !bot.files.has(media)) return badRequest("wrong file identifier/HTTP URL specified");
      if (caption !== undefined && caption.length > CAPTION_LIMIT) return badRequest("message caption is too long");
      Object.assign(result, this.storedMedia(bot, mediaField, media));
      if (caption) result.caption = caption;
    } else {
      if (!text || text.trim() === "") return badRequest("message text is empty");
      if (text.length > TEXT_LIMIT) return badRequest("message is too long");
      result.text = text;
    }
    if (checked.markup !== undefined) result.reply_markup = checked.markup as TelegramInlineKeyboard;

    const record: TelegramSent = { token: bot.info.token, chatId, method, messageId: result.message_id, at: now };
    if (text !== undefined && !mediaField) record.text = text;
    if (caption !== undefined && mediaField) record.caption = caption;
    if (media !== undefined) record.media = media;
    if (checked.markup !== undefined) record.replyMarkup = checked.markup;
    this.sent.push(record);
    return ok(result);
  }

  private chatOf(bot: BotState, chatId: string): TelegramChat {
    return bot.chats.get(chatId) ?? { id: Number(chatId), first_name: "Subscriber", type: "private" };
  }

  /** The file fields of a sent message: a URL becomes a new file, a known file id is reused as Telegram does. */
  private storedMedia(bot: BotState, field: "photo" | "video" | "audio" | "document", media: string): Partial<TelegramMessage> {
    const known = bot.files.get(media);
    const file = known ?? this.storeFile(bot, field, `${field.slice(0, 2).toUpperCase()}ACAgIAAxkDAAI${bot.info.id.toString(36)}_${bot.nextFileNo}`, 65_432);
    const info: TelegramFile = { file_id: file.fileId, file_unique_id: file.uniqueId, file_size: file.size };
    if (field === "photo") return { photo: [{ ...info, width: 1280, height: 960 }] };
    const name = /^https?:\/\//.test(media) ? decodeURIComponent(new URL(media).pathname.split("/").pop() ?? "") : "";
    return { [field]: name ? { ...info, file_name: name } : info };
  }

  private storeFile(bot: BotState, field: string, fileId: string, size: number, fileName?: string): StoredFile {
    const n = bot.nextFileNo++;
    const extension = field === "document" && fileName?.includes(".") ? fileName.slice(fileName.lastIndexOf(".")) : "";
    const path = (FILE_FOLDERS[field] ?? "documents/file_{n}").replace("{n}", String(n)) + extension;
    const file: StoredFile = { fileId, uniqueId: uniqueIdOf(fileId), size, path };
    bot.files.set(fileId, file);
    return file;
  }

  /** Remembers what a delivered update tells Telegram's side: its files, open callback queries and chats. */
  private learn(bot: BotState, update: TelegramUpdate): void {
    const query = update.callback_query;
    if (query) bot.openCallbacks.add(query.id);
    const msg = update.message ?? query?.message;
    if (!msg) return;
    bot.chats.set(String(msg.chat.id), msg.chat);
    for (const field of MEDIA_FIELDS) {
      const value = msg[field];
      const files = (Array.isArray(value) ? value : value ? [value] : []) as TelegramFile[];
      for (const f of files) if (!bot.files.has(f.file_id)) this.storeFile(bot, field, f.file_id, f.file_size ?? 0, f.file_name);
    }
  }

  private getFile(bot: BotState, params: Params): FakeResponse {
    const file = bot.files.get(stringParam(params.file_id) ?? "");
    if (!file) return badRequest("invalid file_id");
    if (file.size > DOWNLOAD_LIMIT) return badRequest("file is too big");
    return ok({ file_id: file.fileId, file_unique_id: file.uniqueId, file_size: file.size, file_path: file.path });
  }

  private download(token: string, path: string): FakeResponse {
    const bot = this.bots.get(decodeURIComponent(token));
    const file = bot && [...bot.files.values()].find((f) => f.path === path);
    if (!file) return notFound();
    return { status: 200, body: `fake bytes of ${file.fileId}`, headers: { "content-type": "application/octet-stream" } };
  }
}
