import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MessageKind } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { createHmac } from "node:crypto";
import { equalSecret } from "../../crypto/secret-box";
import {
  emptyOutcome,
  WebhookRejected,
  type NormalizedInbound,
  type ProviderStatusReport,
  type WebhookOutcome,
} from "../provider";

/**
 * The WhatsApp Cloud API webhook: the GET verification handshake Meta performs when the webhook is configured in the
 * app dashboard, the X-Hub-Signature-256 check, and the "messages" field payloads (inbound messages and statuses of
 * the messages we sent).
 */

/** Prefix of an attachment URL that names a WhatsApp media id: the real URL needs a Bearer-authenticated lookup. */
export const MEDIA_REF_PREFIX = "wa-media:";

/**
 * Delivery errors that mean this user can never get our messages, so retrying or writing again is pointless.
 * 131047 (the 24-hour window passed) is deliberately absent: the user can write again and reopen the window.
 */
const PERMANENT_STATUS_ERRORS = new Set([131026]);

type Json = Record<string, unknown>;

const asObject = (v: unknown): Json | undefined => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const asString = (v: unknown): string => (typeof v === "string" ? v : typeof v === "number" ? String(v) : "");


/** Answers Meta's subscription check: echo hub.challenge only to someone who knows our verify token. */
export function answerChallenge(verifyToken: string | undefined, query: Record<string, string | undefined>): WebhookOutcome {
  if (!verifyToken) throw new WebhookRejected(403, "This WhatsApp channel has no verify token configured; reconnect the channel");
  if (query["hub.mode"] !== "subscribe") throw new WebhookRejected(403, `Unexpected hub.mode "${query["hub.mode"] ?? ""}": only "subscribe" is answered`);
  if (!equalSecret(query["hub.verify_token"] ?? "", verifyToken)) {
    throw new WebhookRejected(403, "The verify token does not match the one configured for this WhatsApp channel");
  }
  const challenge = query["hub.challenge"];
  if (!challenge) throw new WebhookRejected(400, "The verification request has no hub.challenge to echo");
  return emptyOutcome({ status: 200, body: challenge, contentType: "text/plain" });
}

/**
 * Checks X-Hub-Signature-256 = "sha256=" + hex HMAC-SHA256(app secret, exact body bytes).
 * A missing header is 401 (the sender did not authenticate at all); a present but wrong one is 403 (forged or
 * tampered, or the channel holds a different app secret).
 */
export function verifySignature(appSecret: string | undefined, header: string | undefined, rawBody: Buffer): void {
  if (!header) throw new WebhookRejected(401, "The WhatsApp webhook has no X-Hub-Signature-256 header");
  if (!appSecret) throw new WebhookRejected(403, "This WhatsApp channel has no app secret configured, so the webhook cannot be verified; reconnect the channel");
  const expected = "sha256=" + createHmac("sha256", appSecret).update(rawBody).digest("hex");
  // Lower-casing is not secret-dependent; Meta sends lower-case hex, but the check should not hinge on letter case.
  if (!equalSecret(header.trim().toLowerCase(), expected)) {
    throw new WebhookRejected(403, "The X-Hub-Signature-256 of the WhatsApp webhook does not match the app secret of this channel");
  }
}

interface Profile {
  firstName: string;
  lastName: string;
}

/** WhatsApp gives one display name; the first word is the first name, the rest (possibly several words) the last. */
function splitName(name: string): Profile | undefined {
  const trimmed = name.trim();
  if (!trimmed) return undefined;
  const space = trimmed.search(/\s/);
  if (space < 0) return { firstName: trimmed, lastName: "" };
  return { firstName: trimmed.slice(0, space), lastName: trimmed.slice(space).trim() };
}

function dateFromUnixSeconds(value: unknown): Date {
  const seconds = Number(asString(value));
  // A missing or broken timestamp should not lose the message; the arrival time is the best stand-in.
  return Number.isFinite(seconds) && seconds > 0 ? new Date(seconds * 1000) : new Date();
}

const MEDIA_KINDS: Record<string, MessageKind> = {
  image: MessageKind.IMAGE,
  video: MessageKind.VIDEO,
  audio: MessageKind.AUDIO,
  document: MessageKind.DOCUMENT,
  // Stickers are webp images; the flow runtime has no sticker kind.
  sticker: MessageKind.IMAGE,
};

/** The content part of one inbound message, or the name of a kind we do not handle. */
type Content = Omit<NormalizedInbound, "providerMessageId" | "senderId" | "sender" | "sentAt" | "startPayload">;

function contentOf(message: Json): Content | string {
  const type = asString(message.type);
  const mediaKind = MEDIA_KINDS[type];
  if (mediaKind !== undefined) {
    const media = asObject(message[type]);
    const mediaId = asString(media?.id);
    if (!media || !mediaId) return `message:${type} without media id`;
    return {
      kind: mediaKind,
      text: asString(media.caption),
      attachments: [{ kind: mediaKind, url: MEDIA_REF_PREFIX + mediaId, mimeType: asString(media.mime_type), fileName: asString(media.filename) }],
    };
  }
  switch (type) {
    case "text":
      return { kind: MessageKind.TEXT, text: asString(asObject(message.text)?.body) };
    case "location": {
      const location = asObject(message.location);
      const latitude = Number(location?.latitude);
      const longitude = Number(location?.longitude);
      if (!Number.isFinite(latitude) || !Number.isFinite(longitude)) return "message:location without coordinates";
      return { kind: MessageKind.LOCATION, location: { latitude, longitude } };
    }
    case "contacts": {
      const phones = asArray(asObject(asArray(message.contacts)[0])?.phones).map(asObject);
      // wa_id is the number as WhatsApp knows it (digits only, reachable); the display phone is what the card says.
      const sharedPhone = phones.map((p) => asString(p?.wa_id)).find(Boolean) ?? phones.map((p) => asString(p?.phone)).find(Boolean) ?? "";
      return { kind: MessageKind.CONTACT, sharedPhone };
    }
    case "interactive": {
      const interactive = asObject(message.interactive);
      const replyType = asString(interactive?.type);
      if (replyType !== "button_reply" && replyType !== "list_reply") return `message:interactive.${replyType || "unknown"}`;
      const reply = asObject(interactive?.[replyType]);
      return { kind: MessageKind.BUTTON, buttonPayload: asString(reply?.id), text: asString(reply?.title) };
    }
    case "button": {
      // A quick-reply button of a template message.
      const button = asObject(message.button);
      return { kind: MessageKind.BUTTON, buttonPayload: asString(button?.payload), text: asString(button?.text) };
    }
    default:
      return `message:${type || "untyped"}`;
  }
}

function normalizeMessage(message: Json, profiles: Map<string, Profile>): NormalizedInbound | string {
  const providerMessageId = asString(message.id);
  const senderId = asString(message.from);
  if (!providerMessageId || !senderId) return "message without id or sender";
  const content = contentOf(message);
  if (typeof content === "string") return content;
  const normalized: NormalizedInbound = { ...content, providerMessageId, senderId, sentAt: timestampFromDate(dateFromUnixSeconds(message.timestamp)) };
  const profile = profiles.get(senderId);
  if (profile) normalized.sender = profile;
  // A click-to-WhatsApp ad opens the chat with a referral; it plays the role a /start payload plays in Telegram.
  const referral = asObject(message.referral);
  if (referral) normalized.startPayload = asString(referral.source_url) || asString(referral.source_id);
  return normalized;
}

const STATUS_STATES = new Set<ProviderStatusReport["state"]>(["sent", "delivered", "read", "failed"]);

function normalizeStatus(status: Json): ProviderStatusReport | string {
  const state = asString(status.status) as ProviderStatusReport["state"];
  if (!STATUS_STATES.has(state)) return `status:${state || "unknown"}`;
  const providerMessageId = asString(status.id);
  if (!providerMessageId) return "status without id";
  const report: ProviderStatusReport = { providerMessageId, recipientId: asString(status.recipient_id), state, at: dateFromUnixSeconds(status.timestamp) };
  const error = asObject(asArray(status.errors)[0]);
  if (error) {
    const code = Number(error.code);
    const title = asString(error.title) || asString(error.message);
    const details = asString(asObject(error.error_data)?.details);
    report.error = `${asString(error.code)} ${title}${details ? `: ${details}` : ""}`.trim();
    report.permanent = PERMANENT_STATUS_ERRORS.has(code);
  } else if (state === "failed") {
    report.error = "WhatsApp reported the message as failed without an error";
    report.permanent = false;
  }
  return report;
}

/** Parses a signed notification for the account whose phone number id is `phoneNumberId`. */
export function parseNotification(phoneNumberId: string, rawBody: Buffer): WebhookOutcome {
  let parsed: unknown;
  try {
    parsed = JSON.parse(rawBody.toString("utf8"));
  } catch {
    throw new WebhookRejected(400, "The WhatsApp webhook body is not valid JSON");
  }
  const root = asObject(parsed);
  if (!root) throw new WebhookRejected(400, "The WhatsApp webhook body is not a JSON object");
  const outcome = emptyOutcome();
  if (root.object !== "whatsapp_business_account") {
    outcome.ignored.push(`object:${asString(root.object) || "missing"}`);
    return outcome;
  }
  for (const entry of asArray(root.entry)) {
    for (const change of asArray(asObject(entry)?.changes)) {
      const field = asString(asObject(change)?.field);
      const value = asObject(asObject(change)?.value);
      if (field !== "messages" || !value) {
        outcome.ignored.push(field || "change without field");
        continue;
      }
      // One Meta app can serve several numbers behind one URL; a number that is not this channel's is not ours to publish.
      if (asString(asObject(value.metadata)?.phone_number_id) !== phoneNumberId) {
        outcome.ignored.push("foreign phone_number_id");
        continue;
      }
      const profiles = new Map<string, Profile>();
      for (const contact of asArray(value.contacts).map(asObject)) {
        const profile = splitName(asString(asObject(contact?.profile)?.name));
        const waId = asString(contact?.wa_id);
        if (profile && waId) profiles.set(waId, profile);
      }
      for (const message of asArray(value.messages)) {
        const normalized = normalizeMessage(asObject(message) ?? {}, profiles);
        if (typeof normalized === "string") outcome.ignored.push(normalized);
        else outcome.messages.push(normalized);
      }
      for (const status of asArray(value.statuses)) {
        const report = normalizeStatus(asObject(status) ?? {});
        if (typeof report === "string") outcome.ignored.push(report);
        else outcome.statuses.push(report);
      }
      // Errors about the number or the app itself (value.errors) carry nothing to publish, but the log should show them.
      for (const error of asArray(value.errors).map(asObject)) outcome.ignored.push(`error:${asString(error?.code) || "unknown"}`);
    }
  }
  return outcome;
}
