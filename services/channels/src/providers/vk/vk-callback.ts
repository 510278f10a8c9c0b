import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MessageKind } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { createHash } from "node:crypto";
import { equalSecret } from "../../crypto/secret-box";
import { emptyOutcome, WebhookRejected, type AccountView, type NormalizedInbound, type WebhookOutcome, type WebhookRequest } from "../provider";

/**
 * VK Callback API: one event per POST, {type, group_id, event_id, v, object, secret}. VK repeats an event until it
 * gets the literal text "ok", so every accepted event (handled or not) is answered with exactly that.
 */

type Json = Record<string, unknown>;
type NormalizedAttachment = NonNullable<NormalizedInbound["attachments"]>[number];

const OK_REPLY = { status: 200, body: "ok", contentType: "text/plain" } as const;

/** The payload VK's own "Start" button sends; it is not one of our buttons, so the message stays a text message. */
const START_COMMAND = '{"command":"start"}';

/** VK's photo size letters from smallest to largest, for old photos whose sizes carry no dimensions. */
const PHOTO_SIZE_ORDER = "smxopqryzw";

const DOC_MIME_TYPES: Record<string, string> = {
  pdf: "application/pdf",
  txt: "text/plain",
  zip: "application/zip",
  doc: "application/msword",
  docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  xls: "application/vnd.ms-excel",
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  png: "image/png",
  gif: "image/gif",
  mp3: "audio/mpeg",
  mp4: "video/mp4",
};


const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === "string" ? v : typeof v === "number" ? String(v) : "");
const num = (v: unknown): number => (typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN);

function parseEnvelope(rawBody: Buffer): Json {
  let body: unknown;
  try {
    body = JSON.parse(rawBody.toString("utf8"));
  } catch {
    throw new WebhookRejected(400, "The request body is not JSON, so it is not a VK Callback API event");
  }
  if (!isObject(body) || typeof body.type !== "string") throw new WebhookRejected(400, "The request body is not a VK Callback API event (no type)");
  return body;
}

export function handleVkCallback(account: AccountView, request: WebhookRequest): WebhookOutcome {
  const body = parseEnvelope(request.rawBody);
  const groupId = str(body.group_id);
  if (groupId !== account.settings.groupId) {
    throw new WebhookRejected(403, `This event is for VK community ${groupId || "(none)"}, but this channel is connected to community ${account.settings.groupId}`);
  }
  const type = body.type as string;

  if (type === "confirmation") {
    // VK includes the secret key in the confirmation too once one is set; a confirmation without it is still
    // answered, since the code is shown in the community settings to the same people who set the secret.
    if (body.secret !== undefined && !equalSecret(body.secret, account.secrets.secret)) {
      throw new WebhookRejected(403, "The confirmation request carries a different secret key than this channel's");
    }
    const code = account.secrets.confirmationCode;
    if (!code) throw new WebhookRejected(403, "This channel has no confirmation code: reconnect it with the code from the community's Callback API settings");
    return emptyOutcome({ status: 200, body: code, contentType: "text/plain" });
  }

  if (body.secret === undefined) {
    throw new WebhookRejected(403, "The event carries no secret key: set this channel's secret key in the community's Callback API settings");
  }
  if (!equalSecret(body.secret, account.secrets.secret)) {
    throw new WebhookRejected(403, "The event's secret key does not match this channel's secret key");
  }

  const outcome = emptyOutcome(OK_REPLY);
  const object = isObject(body.object) ? body.object : {};
  switch (type) {
    case "message_new": {
      const message = messageOf(object);
      if (message) outcome.messages.push(normalizeMessage(message));
      else outcome.ignored.push("message_new without a message");
      break;
    }
    case "message_deny":
    case "message_allow": {
      const userId = str(object.user_id);
      if (!userId) {
        outcome.ignored.push(`${type} without a user_id`);
        break;
      }
      outcome.subscriberStatuses.push({
        subscriberId: userId,
        blocked: type === "message_deny",
        // event_id is VK's name for this delivery and stays the same on its retries; a hash of the body is the
        // stand-in for callback servers on API versions that did not send one.
        providerEventId: str(body.event_id) || createHash("sha256").update(request.rawBody).digest("hex"),
        at: new Date(),
      });
      break;
    }
    default:
      outcome.ignored.push(type);
  }
  return outcome;
}

/** API 5.103+ wraps the message as object.message (beside client_info); older versions sent the message itself. */
function messageOf(object: Json): Json | undefined {
  if (isObject(object.message)) return object.message;
  if (object.peer_id !== undefined || object.from_id !== undefined) return object;
  return undefined;
}

function normalizeMessage(message: Json): NormalizedInbound {
  const peerId = str(message.peer_id) || str(message.from_id);
  const id = num(message.id);
  const text = str(message.text);
  const attachments = (Array.isArray(message.attachments) ? message.attachments : []).map(attachmentOf).filter((a): a is NormalizedAttachment => a !== undefined);
  const normalized: NormalizedInbound = {
    senderId: peerId,
    // In group chats a community bot sees id 0 and only the per-chat conversation_message_id names the message.
    providerMessageId: id > 0 ? String(id) : `${peerId}_${str(message.conversation_message_id)}`,
    kind: MessageKind.TEXT,
    text,
    attachments,
  };
  const date = num(message.date);
  if (Number.isFinite(date)) normalized.sentAt = timestampFromDate(new Date(date * 1000));

  const payload = str(message.payload);
  const location = locationOf(message.geo);
  if (payload && payload !== START_COMMAND) {
    normalized.kind = MessageKind.BUTTON;
    normalized.buttonPayload = buttonPayloadOf(payload);
  } else if (location) {
    normalized.kind = MessageKind.LOCATION;
    normalized.location = location;
  } else if (attachments[0]) {
    normalized.kind = attachments[0].kind ?? MessageKind.TEXT;
  }

  // ref/ref_source come from a vk.me/<community>?ref=…&ref_source=… link, on the first message after it is
  // followed. Both are the link author's tags, so both are kept, query-style, for the UTM parser.
  const ref = str(message.ref);
  if (ref) {
    const refSource = str(message.ref_source);
    normalized.startPayload = refSource ? `${ref}&ref_source=${encodeURIComponent(refSource)}` : ref;
  }
  return normalized;
}

/** Our keyboard buttons carry {"p": "<the button's payload>"}; anything else (a keyboard built elsewhere) is passed on as is. */
function buttonPayloadOf(payload: string): string {
  try {
    const parsed: unknown = JSON.parse(payload);
    if (isObject(parsed) && typeof parsed.p === "string" && Object.keys(parsed).length === 1) return parsed.p;
  } catch {
    // Not JSON: VK lets clients put any string there.
  }
  return payload;
}

function locationOf(geo: unknown): { latitude: number; longitude: number } | undefined {
  if (!isObject(geo) || !isObject(geo.coordinates)) return undefined;
  const latitude = num(geo.coordinates.latitude);
  const longitude = num(geo.coordinates.longitude);
  return Number.isFinite(latitude) && Number.isFinite(longitude) ? { latitude, longitude } : undefined;
}

function attachmentOf(raw: unknown): NormalizedAttachment | undefined {
  if (!isObject(raw) || typeof raw.type !== "string") return undefined;
  const item = raw[raw.type];
  if (!isObject(item)) return undefined;
  switch (raw.type) {
    case "photo": {
      const url = largestPhotoUrl(item);
      return url ? { kind: MessageKind.IMAGE, url, mimeType: "image/jpeg" } : undefined;
    }
    case "doc": {
      const url = str(item.url);
      if (!url) return undefined;
      const size = num(item.size);
      return {
        kind: MessageKind.DOCUMENT,
        url,
        mimeType: DOC_MIME_TYPES[str(item.ext).toLowerCase()] ?? "",
        fileName: str(item.title),
        sizeBytes: Number.isSafeInteger(size) ? BigInt(size) : 0n,
      };
    }
    case "audio_message": {
      const mp3 = str(item.link_mp3);
      const ogg = str(item.link_ogg);
      if (mp3) return { kind: MessageKind.AUDIO, url: mp3, mimeType: "audio/mpeg" };
      return ogg ? { kind: MessageKind.AUDIO, url: ogg, mimeType: "audio/ogg" } : undefined;
    }
    case "video": {
      // VK gives no file URL for a video in a message, only its page, named by owner and id.
      const ownerId = str(item.owner_id);
      const id = str(item.id);
      return ownerId && id ? { kind: MessageKind.VIDEO, url: `https://vk.com/video${ownerId}_${id}` } : undefined;
    }
    case "sticker": {
      const url = largestImageUrl(item.images) ?? largestImageUrl(item.images_with_background);
      return url ? { kind: MessageKind.IMAGE, url, mimeType: "image/png" } : undefined;
    }
    case "graffiti": {
      const url = str(item.url);
      return url ? { kind: MessageKind.IMAGE, url } : undefined;
    }
    default:
      // Wall posts, links, polls, gifts, music: nothing a flow can treat as a file; the text still arrives.
      return undefined;
  }
}

function largestPhotoUrl(photo: Json): string | undefined {
  const candidates = Array.isArray(photo.sizes) ? [...photo.sizes] : [];
  if (isObject(photo.orig_photo)) candidates.push(photo.orig_photo);
  let best: { url: string; area: number; rank: number } | undefined;
  for (const size of candidates) {
    if (!isObject(size)) continue;
    const url = str(size.url);
    if (!url) continue;
    const area = (num(size.width) || 0) * (num(size.height) || 0);
    const rank = PHOTO_SIZE_ORDER.indexOf(str(size.type));
    if (!best || area > best.area || (area === best.area && rank > best.rank)) best = { url, area, rank };
  }
  return best?.url;
}

function largestImageUrl(images: unknown): string | undefined {
  if (!Array.isArray(images)) return undefined;
  let best: { url: string; width: number } | undefined;
  for (const image of images) {
    if (!isObject(image) || !str(image.url)) continue;
    const width = num(image.width) || 0;
    if (!best || width > best.width) best = { url: str(image.url), width };
  }
  return best?.url;
}
