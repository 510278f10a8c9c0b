import { createHash } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MessageKind } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { simpleParser } from "mailparser";
import addressparser from "nodemailer/lib/addressparser";
import { WebhookRejected, type NormalizedInbound } from "../provider";
import { htmlToText, trimQuotedReply } from "./email-text";

/**
 * The JSON body of the email webhook: one received message, already parsed by the mail provider. Providers post
 * their own formats (Mailgun routes, SendGrid Inbound Parse, Postmark inbound…); a small relay maps them to this
 * shape, so the service knows one format besides raw MIME. Send it with content-type application/json.
 *
 * - from: the sender, "Jane Doe <jane@example.com>" or { address, name }. Required.
 * - to: the address(es) it was sent to; informational.
 * - subject, text, html: the subject line and the bodies; text is preferred, html is flattened when text is absent.
 * - message_id: the Message-ID header, with or without angle brackets; names the message for deduplication.
 * - in_reply_to: the In-Reply-To header; informational.
 * - date: the Date header (RFC 5322 or ISO 8601).
 * - attachments: files the relay stored, each reachable at `url` (http or https).
 */
export interface InboundEmailJson {
  from: string | { address: string; name?: string };
  to?: string | string[];
  subject?: string;
  text?: string;
  html?: string;
  message_id?: string;
  in_reply_to?: string;
  date?: string;
  attachments?: Array<{ filename?: string; content_type?: string; size?: number; url: string }>;
}

/** Deliberately loose: it tells an address from a typo, it does not implement RFC 5322; international domains pass. */
const ADDRESS = /^[^\s@<>()[\]\\,;:"]+@[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?)+$/u;

export function isEmailAddress(value: string): boolean {
  return value.length <= 254 && ADDRESS.test(value);
}

interface Sender {
  address: string;
  name: string;
}

interface Collected {
  sender: Sender;
  subject: string;
  text: string;
  html: string;
  messageId: string;
  date: Date | undefined;
  attachments: Array<{ fileName: string; mimeType: string; size: number; url: string }>;
}

/** "Doe, Jane" is how directories write "Jane Doe"; otherwise the first word is the first name. */
function splitName(display: string, address: string): { firstName: string; lastName: string } {
  const name = display.replace(/^["']|["']$/g, "").trim();
  if (!name || name.toLowerCase() === address) return { firstName: "", lastName: "" };
  const comma = name.match(/^([^,]+),\s*(.+)$/);
  if (comma) return { firstName: comma[2] ?? "", lastName: comma[1] ?? "" };
  const [first = "", ...rest] = name.split(/\s+/);
  return { firstName: first, lastName: rest.join(" ") };
}

const stripBrackets = (id: string) => id.trim().replace(/^<|>$/g, "").trim();

function validDate(value: Date | undefined): Date | undefined {
  return value && !Number.isNaN(value.getTime()) ? value : undefined;
}

function attachmentKind(mimeType: string): MessageKind {
  return mimeType.toLowerCase().startsWith("image/") ? MessageKind.IMAGE : MessageKind.DOCUMENT;
}

const FORWARD_SUBJECT = /^\s*(fwd?|fw|tr|wg|пересл)\s*:/i;

function normalize(mail: Collected, rawBody: Buffer): NormalizedInbound {
  const body = mail.text.trim() ? mail.text : mail.html ? htmlToText(mail.html) : "";
  // In a forward the quoted message is the point (a customer passing on an invoice or a complaint): keep it whole.
  const text = FORWARD_SUBJECT.test(mail.subject) ? body.replace(/\r\n?/g, "\n").trim() : trimQuotedReply(body);
  const attachments = mail.attachments.map((a) => ({
    kind: attachmentKind(a.mimeType),
    url: a.url,
    mimeType: a.mimeType,
    fileName: a.fileName,
    sizeBytes: BigInt(a.size),
  }));
  let kind = MessageKind.TEXT;
  if (!text && attachments.length > 0) kind = attachments.every((a) => a.kind === MessageKind.IMAGE) ? MessageKind.IMAGE : MessageKind.DOCUMENT;
  const address = mail.sender.address.toLowerCase();
  return {
    senderId: address,
    // A redelivered message has the same Message-ID; one without it is named by its exact bytes instead.
    providerMessageId: mail.messageId || createHash("sha256").update(rawBody).digest("hex"),
    sender: splitName(mail.sender.name, address),
    kind,
    text,
    subject: mail.subject,
    attachments,
    ...(mail.date ? { sentAt: timestampFromDate(mail.date) } : {}),
  };
}

function requireSender(sender: Sender | undefined): Sender {
  if (!sender || !isEmailAddress(sender.address)) {
    throw new WebhookRejected(400, "the message has no valid sender: the From address is missing or malformed");
  }
  return sender;
}

/** A raw RFC 5322 message, as a mail server or a provider's "raw MIME" forwarding posts it. */
export async function parseMimeEmail(rawBody: Buffer): Promise<NormalizedInbound> {
  if (rawBody.length === 0) throw new WebhookRejected(400, "the body is empty: expected a raw MIME message");
  let parsed;
  try {
    // Our own HTML flattening handles quotes; mailparser's conversions would only cost time.
    parsed = await simpleParser(rawBody, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true, skipTextLinks: true });
  } catch (err) {
    throw new WebhookRejected(400, `the body is not a MIME message: ${(err as Error).message}`);
  }
  const from = parsed.from?.value.find((a) => a.address);
  return normalize(
    {
      sender: requireSender(from?.address ? { address: from.address, name: from.name } : undefined),
      subject: parsed.subject ?? "",
      text: parsed.text ?? "",
      html: parsed.html || "",
      messageId: parsed.messageId ? stripBrackets(parsed.messageId) : "",
      date: validDate(parsed.date),
      // We do not store the binary parts; the operator sees that a file came and what it was.
      attachments: parsed.attachments.map((a) => ({ fileName: a.filename ?? "", mimeType: a.contentType, size: a.size, url: "" })),
    },
    rawBody,
  );
}

function optionalString(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (value === undefined || value === null) return "";
  if (typeof value !== "string") throw new WebhookRejected(400, `"${field}" must be a string`);
  return value;
}

function jsonSender(from: unknown): Sender | undefined {
  if (typeof from === "string") {
    const first = addressparser(from, { flatten: true })[0];
    return first?.address ? { address: first.address, name: first.name } : undefined;
  }
  if (from && typeof from === "object") {
    const { address, name } = from as Record<string, unknown>;
    if (typeof address !== "string") return undefined;
    return { address: address.trim(), name: typeof name === "string" ? name : "" };
  }
  return undefined;
}

function jsonAttachments(value: unknown): Collected["attachments"] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new WebhookRejected(400, '"attachments" must be an array');
  return value.map((item: unknown, i) => {
    const a = (item && typeof item === "object" ? item : {}) as Record<string, unknown>;
    if (typeof a.url !== "string" || !/^https?:\/\//i.test(a.url)) {
      throw new WebhookRejected(400, `"attachments[${i}].url" must be an http(s) URL`);
    }
    if (a.size !== undefined && (typeof a.size !== "number" || !Number.isSafeInteger(a.size) || a.size < 0)) {
      throw new WebhookRejected(400, `"attachments[${i}].size" must be a non-negative integer`);
    }
    return {
      fileName: typeof a.filename === "string" ? a.filename : "",
      mimeType: typeof a.content_type === "string" ? a.content_type : "",
      size: typeof a.size === "number" ? a.size : 0,
      url: a.url,
    };
  });
}

/** A message in our documented JSON shape (InboundEmailJson). */
export function parseJsonEmail(rawBody: Buffer): NormalizedInbound {
  let body: unknown;
  try {
    body = JSON.parse(rawBody.toString("utf8"));
  } catch (err) {
    throw new WebhookRejected(400, `the body is not valid JSON: ${(err as Error).message}`);
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) throw new WebhookRejected(400, "the body must be a JSON object describing one message");
  const fields = body as Record<string, unknown>;
  const date = optionalString(fields, "date");
  return normalize(
    {
      sender: requireSender(jsonSender(fields.from)),
      subject: optionalString(fields, "subject"),
      text: optionalString(fields, "text"),
      html: optionalString(fields, "html"),
      messageId: stripBrackets(optionalString(fields, "message_id")),
      // A sender's broken Date header is no reason to lose the message.
      date: date ? validDate(new Date(date)) : undefined,
      attachments: jsonAttachments(fields.attachments),
    },
    rawBody,
  );
}
