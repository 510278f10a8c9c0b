import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MessageKind } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import type { NormalizedInbound, SubscriberStatusReport } from "../provider";

/**
 * Telegram updates as far as we read them, and their translation into normalized inbound messages.
 * The body comes from the network: every field is optional here and checked before use.
 */

export interface TgUser {
  id?: number;
  is_bot?: boolean;
  first_name?: string;
  last_name?: string;
  username?: string;
  language_code?: string;
}

interface TgChat {
  id?: number;
  type?: string;
}

interface TgFile {
  file_id?: string;
  file_size?: number;
  file_name?: string;
  mime_type?: string;
  width?: number;
  height?: number;
}

interface TgInlineButton {
  text?: string;
  callback_data?: string;
}

interface TgMessage {
  message_id?: number;
  from?: TgUser;
  chat?: TgChat;
  date?: number;
  text?: string;
  caption?: string;
  photo?: TgFile[];
  video?: TgFile;
  video_note?: TgFile;
  audio?: TgFile;
  voice?: TgFile;
  document?: TgFile;
  contact?: { phone_number?: string };
  location?: { latitude?: number; longitude?: number };
  reply_markup?: { inline_keyboard?: TgInlineButton[][] };
  [field: string]: unknown;
}

export interface TgCallbackQuery {
  id?: string;
  from?: TgUser;
  message?: TgMessage;
  data?: string;
}

interface TgChatMemberUpdated {
  chat?: TgChat;
  from?: TgUser;
  date?: number;
  new_chat_member?: { status?: string };
}

export interface TgUpdate {
  update_id?: unknown;
  message?: TgMessage;
  callback_query?: TgCallbackQuery;
  my_chat_member?: TgChatMemberUpdated;
  [field: string]: unknown;
}

/** What one update amounts to; `ignored` names what we do not handle so it is logged, not retried. */
export type ParsedUpdate =
  | { message: NormalizedInbound; callbackQueryId?: string }
  | { subscriberStatus: SubscriberStatusReport }
  | { ignored: string };

/** Fields of a message that describe it rather than carry its content; the first other field names an unhandled kind. */
const MESSAGE_METADATA = new Set([
  "message_id",
  "message_thread_id",
  "from",
  "sender_chat",
  "sender_boost_count",
  "sender_business_bot",
  "business_connection_id",
  "chat",
  "date",
  "edit_date",
  "forward_origin",
  "forward_from",
  "forward_from_chat",
  "forward_from_message_id",
  "forward_signature",
  "forward_sender_name",
  "forward_date",
  "is_topic_message",
  "is_automatic_forward",
  "is_from_offline",
  "reply_to_message",
  "external_reply",
  "quote",
  "reply_to_story",
  "via_bot",
  "has_protected_content",
  "media_group_id",
  "author_signature",
  "entities",
  "caption_entities",
  "link_preview_options",
  "show_caption_above_media",
  "has_media_spoiler",
  "effect_id",
  "reply_markup",
]);

/** "/start", "/start payload" and "/start@our_bot payload" (a group); the payload is the deep-link parameter. */
const START_COMMAND = /^\/start(?:@\w+)?(?:\s+([\s\S]*))?$/;

function senderProfile(user: TgUser | undefined): NormalizedInbound["sender"] {
  if (!user) return undefined;
  return {
    firstName: user.first_name ?? "",
    lastName: user.last_name ?? "",
    username: user.username ?? "",
    language: user.language_code ?? "",
    profileUrl: user.username ? `https://t.me/${user.username}` : "",
  };
}

function toDate(unixSeconds: number | undefined): Date {
  return typeof unixSeconds === "number" ? new Date(unixSeconds * 1000) : new Date();
}

/**
 * Telegram names files by id; the download URL would contain the bot token, which must not travel in events,
 * so the attachment carries a reference that TelegramAdapter.fileDownloadUrl resolves when someone needs the bytes.
 */
function attachment(kind: MessageKind, file: TgFile, defaultMime = ""): NonNullable<NormalizedInbound["attachments"]>[number] {
  return {
    kind,
    url: `tg-file:${file.file_id ?? ""}`,
    mimeType: file.mime_type ?? defaultMime,
    fileName: file.file_name ?? "",
    sizeBytes: typeof file.file_size === "number" ? BigInt(file.file_size) : 0n,
  };
}

function largestPhoto(sizes: TgFile[]): TgFile | undefined {
  let best: TgFile | undefined;
  for (const size of sizes) {
    const area = (size.width ?? 0) * (size.height ?? 0);
    if (!best || area > (best.width ?? 0) * (best.height ?? 0)) best = size;
  }
  return best;
}

/** The message's content as kind + fields, or the name of the content we do not handle. */
function messageContent(message: TgMessage): Partial<NormalizedInbound> | string {
  const caption = message.caption ?? "";
  if (typeof message.text === "string") {
    const start = START_COMMAND.exec(message.text);
    return start ? { kind: MessageKind.TEXT, text: message.text, startPayload: (start[1] ?? "").trim() } : { kind: MessageKind.TEXT, text: message.text };
  }
  const photo = Array.isArray(message.photo) ? largestPhoto(message.photo) : undefined;
  // Telegram re-encodes every photo as JPEG and does not say so in the update.
  if (photo) return { kind: MessageKind.IMAGE, text: caption, attachments: [attachment(MessageKind.IMAGE, photo, "image/jpeg")] };
  if (message.video) return { kind: MessageKind.VIDEO, text: caption, attachments: [attachment(MessageKind.VIDEO, message.video)] };
  if (message.video_note) return { kind: MessageKind.VIDEO, text: "", attachments: [attachment(MessageKind.VIDEO, message.video_note, "video/mp4")] };
  if (message.audio) return { kind: MessageKind.AUDIO, text: caption, attachments: [attachment(MessageKind.AUDIO, message.audio)] };
  if (message.voice) return { kind: MessageKind.AUDIO, text: caption, attachments: [attachment(MessageKind.AUDIO, message.voice, "audio/ogg")] };
  if (message.document) return { kind: MessageKind.DOCUMENT, text: caption, attachments: [attachment(MessageKind.DOCUMENT, message.document)] };
  if (message.contact?.phone_number) return { kind: MessageKind.CONTACT, text: "", sharedPhone: message.contact.phone_number };
  // A venue carries its location too, so it arrives here as a location.
  const { latitude, longitude } = message.location ?? {};
  if (typeof latitude === "number" && typeof longitude === "number") return { kind: MessageKind.LOCATION, text: "", location: { latitude, longitude } };
  const field = Object.keys(message).find((key) => !MESSAGE_METADATA.has(key));
  return `message.${field ?? "empty"}`;
}

function fromMessage(updateId: string, message: TgMessage): ParsedUpdate {
  const chatId = message.chat?.id ?? message.from?.id;
  if (chatId === undefined) return { ignored: "message.without_chat" };
  const content = messageContent(message);
  if (typeof content === "string") return { ignored: content };
  return {
    message: {
      ...content,
      providerMessageId: updateId,
      senderId: String(chatId),
      sender: senderProfile(message.from),
      sentAt: timestampFromDate(toDate(message.date)),
    },
  };
}

function pressedButtonLabel(query: TgCallbackQuery): string {
  for (const row of query.message?.reply_markup?.inline_keyboard ?? []) {
    for (const button of row) if (button.callback_data === query.data && typeof button.text === "string") return button.text;
  }
  return "";
}

function fromCallbackQuery(updateId: string, query: TgCallbackQuery): ParsedUpdate {
  // Game buttons carry game_short_name instead of data; we never send them.
  if (typeof query.data !== "string") return { ignored: "callback_query.game_short_name" };
  const chatId = query.message?.chat?.id ?? query.from?.id;
  if (chatId === undefined) return { ignored: "callback_query.without_chat" };
  return {
    message: {
      kind: MessageKind.BUTTON,
      text: pressedButtonLabel(query),
      buttonPayload: query.data,
      providerMessageId: updateId,
      senderId: String(chatId),
      // `from` is who pressed; the message's own `from` is the bot that sent the keyboard.
      sender: senderProfile(query.from),
      // A callback query has no date of its own: it happened just now.
      sentAt: timestampFromDate(new Date()),
    },
    callbackQueryId: query.id,
  };
}

function fromChatMember(updateId: string, change: TgChatMemberUpdated): ParsedUpdate {
  const status = change.new_chat_member?.status;
  const chatId = change.chat?.id;
  if (chatId === undefined || (status !== "kicked" && status !== "member")) return { ignored: `my_chat_member.${status ?? "unknown"}` };
  return { subscriberStatus: { subscriberId: String(chatId), blocked: status === "kicked", providerEventId: updateId, at: toDate(change.date) } };
}

/** An update already known to be a JSON object with a numeric update_id. */
export function parseUpdate(update: TgUpdate & { update_id: number }): ParsedUpdate {
  const updateId = String(update.update_id);
  if (update.message) return fromMessage(updateId, update.message);
  if (update.callback_query) return fromCallbackQuery(updateId, update.callback_query);
  if (update.my_chat_member) return fromChatMember(updateId, update.my_chat_member);
  return { ignored: Object.keys(update).find((key) => key !== "update_id") ?? "empty_update" };
}
