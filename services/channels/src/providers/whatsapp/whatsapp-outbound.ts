import { MessageKind, type Attachment } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import type { HttpAnswer } from "../http-call";
import type { OutboundMessage, SendResult } from "../provider";
import { MEDIA_REF_PREFIX } from "./whatsapp-webhook";

/**
 * Turns one outbound message into the Cloud API /messages request bodies it takes, and Graph API errors into
 * SendResult kinds. WhatsApp has no "album with text and keyboard" message, so one message can take several calls.
 */

/** Cloud API limits (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages). */
const MAX_REPLY_BUTTONS = 3;
const MAX_BUTTON_TITLE = 20;
const MAX_BUTTON_ID = 256;
const MAX_TEXT = 4096;
const MAX_INTERACTIVE_BODY = 1024;
const MAX_CAPTION = 1024;

export type GraphRequestBody = Record<string, unknown>;

const MEDIA_TYPES: Partial<Record<MessageKind, "image" | "video" | "audio" | "document">> = {
  [MessageKind.IMAGE]: "image",
  [MessageKind.VIDEO]: "video",
  [MessageKind.AUDIO]: "audio",
  [MessageKind.DOCUMENT]: "document",
  // An attachment of unknown kind still reaches the user as a file.
  [MessageKind.UNSPECIFIED]: "document",
};

/** Audio is the one media type WhatsApp sends without a caption. */
const CAPTIONED = new Set(["image", "video", "document"]);

function mediaBody(attachment: Attachment, index: number): { type: string; media: Record<string, string> } | string {
  const type = MEDIA_TYPES[attachment.kind];
  if (!type) return `Attachment ${index + 1} is a ${MessageKind[attachment.kind]?.toLowerCase() ?? "kind"} attachment, which WhatsApp cannot send as a file`;
  if (!attachment.url) return `Attachment ${index + 1} has no URL`;
  // A media id received on this number can be sent again by id; anything else WhatsApp downloads from the link.
  const media: Record<string, string> = attachment.url.startsWith(MEDIA_REF_PREFIX)
    ? { id: attachment.url.slice(MEDIA_REF_PREFIX.length) }
    : { link: attachment.url };
  if (!media.id && !/^https?:\/\//i.test(attachment.url)) return `Attachment ${index + 1} has URL "${attachment.url}", but WhatsApp downloads attachments only over http(s)`;
  if (type === "document" && attachment.fileName) media.filename = attachment.fileName;
  return { type, media };
}

/** The request bodies for `message`, in sending order, or why WhatsApp cannot take the message. */
export function buildRequests(message: OutboundMessage): { bodies: GraphRequestBody[] } | { rejected: string } {
  const envelope = { messaging_product: "whatsapp", recipient_type: "individual", to: message.recipientId };
  const replyButtons = message.buttons.filter((b) => !b.url);
  const linkButtons = message.buttons.filter((b) => b.url);

  if (replyButtons.length > MAX_REPLY_BUTTONS) {
    return { rejected: `WhatsApp allows at most ${MAX_REPLY_BUTTONS} reply buttons under a message; this one has ${replyButtons.length}` };
  }
  const ids = new Set<string>();
  for (const button of replyButtons) {
    if (!button.text) return { rejected: "A WhatsApp reply button needs a title" };
    if ([...button.text].length > MAX_BUTTON_TITLE) {
      return { rejected: `WhatsApp button titles are limited to ${MAX_BUTTON_TITLE} characters; "${button.text}" has ${[...button.text].length}` };
    }
    if (!button.payload) return { rejected: `The button "${button.text}" has neither a payload nor a URL` };
    if (button.payload.length > MAX_BUTTON_ID) return { rejected: `WhatsApp button payloads are limited to ${MAX_BUTTON_ID} characters; the payload of "${button.text}" is longer` };
    if (ids.has(button.payload)) return { rejected: `Two buttons share the payload "${button.payload}"; WhatsApp needs a distinct payload per button` };
    ids.add(button.payload);
  }

  // WhatsApp has no URL buttons outside templates, so links go into the text where the user can tap them.
  const linkLines = linkButtons.map((b) => (b.text ? `${b.text}: ${b.url}` : b.url));
  let text = [message.text, linkLines.join("\n")].filter(Boolean).join("\n\n");
  if (!text && message.attachments.length === 0) return { rejected: "The message is empty: it has no text and no attachments" };
  if (replyButtons.length > 0 && !text) return { rejected: "WhatsApp shows reply buttons only under a text; the message has buttons but no text" };

  const bodies: GraphRequestBody[] = [];
  for (const [index, attachment] of message.attachments.entries()) {
    const built = mediaBody(attachment, index);
    if (typeof built === "string") return { rejected: built };
    // The text rides as the first attachment's caption unless it must stay with the buttons or does not fit.
    if (index === 0 && text && replyButtons.length === 0 && CAPTIONED.has(built.type) && [...text].length <= MAX_CAPTION) {
      built.media.caption = text;
      text = "";
    }
    bodies.push({ ...envelope, type: built.type, [built.type]: built.media });
  }

  if (replyButtons.length > 0) {
    if ([...text].length > MAX_INTERACTIVE_BODY) {
      return { rejected: `WhatsApp limits the text above reply buttons to ${MAX_INTERACTIVE_BODY} characters; this one has ${[...text].length}` };
    }
    bodies.push({
      ...envelope,
      type: "interactive",
      interactive: {
        type: "button",
        body: { text },
        action: { buttons: replyButtons.map((b) => ({ type: "reply", reply: { id: b.payload, title: b.text } })) },
      },
    });
  } else if (text) {
    if ([...text].length > MAX_TEXT) return { rejected: `WhatsApp limits a text message to ${MAX_TEXT} characters; this one has ${[...text].length}` };
    bodies.push({ ...envelope, type: "text", text: { body: text, preview_url: false } });
  }
  return { bodies };
}

/** The parts of a Graph API error body ({error:{message, type, code, error_subcode, error_data:{details}, fbtrace_id}}). */
export interface GraphError {
  code?: number;
  subcode?: number;
  message: string;
  details?: string;
}

export function readGraphError(answer: HttpAnswer): GraphError {
  const error = (answer.json as { error?: Record<string, unknown> } | undefined)?.error;
  if (typeof error !== "object" || error === null) {
    return { message: `HTTP ${answer.status}${answer.text ? `: ${answer.text.slice(0, 200)}` : ""}` };
  }
  const code = Number(error.code);
  const subcode = Number(error.error_subcode);
  const details = (error.error_data as { details?: unknown } | undefined)?.details;
  return {
    code: Number.isFinite(code) ? code : undefined,
    subcode: Number.isFinite(subcode) ? subcode : undefined,
    message: typeof error.message === "string" ? error.message : `HTTP ${answer.status}`,
    details: typeof details === "string" && details ? details : undefined,
  };
}

/** The error as operators see it: the code, Meta's message and its details. */
export function describeGraphError(error: GraphError): string {
  const code = error.code === undefined ? "" : ` ${error.code}`;
  return `WhatsApp error${code}: ${error.message}${error.details ? ` (${error.details})` : ""}`;
}

export const isTokenError = (status: number, error: GraphError): boolean => error.code === 190 || status === 401;

/**
 * Throughput (4, 80007, 130429), pair rate (131056) and spam rate (131048) limits pass with time. The Cloud API
 * names no retry delay, so the dispatcher's backoff decides.
 */
const RATE_LIMIT_CODES = new Set([4, 80007, 130429, 131048, 131056]);
/** The recipient cannot get our messages (not on WhatsApp, has not accepted the terms, blocked the business). */
const PERMANENT_CODES = new Set([131026]);
/** Meta's side failed (unknown error, temporary unavailability, "service unavailable"): worth another try. */
const TRANSIENT_CODES = new Set([1, 2, 131000, 131016]);

export function classifySendFailure(answer: HttpAnswer): Exclude<SendResult, { ok: true }> {
  const error = readGraphError(answer);
  const text = describeGraphError(error);
  if (isTokenError(answer.status, error)) return { ok: false, kind: "rejected", error: `WhatsApp refused the access token: reconnect the channel (${text})` };
  if (answer.status === 429 || (error.code !== undefined && RATE_LIMIT_CODES.has(error.code))) return { ok: false, kind: "rate_limited", error: text };
  if (error.code !== undefined && PERMANENT_CODES.has(error.code)) return { ok: false, kind: "permanent", error: text };
  if (answer.status >= 500 || (error.code !== undefined && TRANSIENT_CODES.has(error.code))) return { ok: false, kind: "transient", error: text };
  return { ok: false, kind: "rejected", error: text };
}
