import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Attachment, Button, InboundMessageSchema, Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";

/**
 * What every messenger adapter does, so the webhook server, the dispatcher and the channel registry never branch
 * on the messenger. An adapter is stateless: the account (with decrypted secrets) is passed in on every call.
 */

/** A connected account as adapters see it: public settings and decrypted secrets, both flat string maps. */
export interface AccountView {
  id: string;
  projectId: string;
  messenger: Messenger;
  settings: Record<string, string>;
  secrets: Record<string, string>;
}

/** A webhook request as the provider sent it: verification needs the exact bytes. Header names are lower-case. */
export interface WebhookRequest {
  method: "GET" | "POST";
  headers: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  rawBody: Buffer;
}

/** One normalized inbound message before the service stamps it with its ids, project and channel. */
export type NormalizedInbound = Omit<MessageInitShape<typeof InboundMessageSchema>, "messageId" | "projectId" | "channelId" | "messenger"> & {
  /** The provider's id for the message; with the channel it names the message, so a redelivery is recognised. */
  providerMessageId: string;
  senderId: string;
};

/** A delivery report from the provider about a message we sent (WhatsApp statuses). */
export interface ProviderStatusReport {
  providerMessageId: string;
  recipientId: string;
  state: "sent" | "delivered" | "read" | "failed";
  error?: string;
  /** The failure cannot be helped by retrying (the user blocked us, the number is not on WhatsApp). */
  permanent?: boolean;
  at: Date;
}

/** The subscriber blocked or unblocked the bot. */
export interface SubscriberStatusReport {
  subscriberId: string;
  blocked: boolean;
  /** Names the change, so a redelivered webhook is recognised (Telegram: the update id). */
  providerEventId: string;
  at: Date;
}

/** What a webhook request amounted to; the service publishes it and then answers the provider with `reply`. */
export interface WebhookOutcome {
  reply: { status: number; body?: string | Record<string, unknown>; contentType?: string };
  messages: NormalizedInbound[];
  statuses: ProviderStatusReport[];
  subscriberStatuses: SubscriberStatusReport[];
  /** Update kinds we do not handle: acknowledged and logged, never failed (the provider would retry forever). */
  ignored: string[];
}

export const emptyOutcome = (reply: WebhookOutcome["reply"] = { status: 200, body: "ok" }): WebhookOutcome => ({
  reply,
  messages: [],
  statuses: [],
  subscriberStatuses: [],
  ignored: [],
});

/** A refused webhook: bad or missing signature / secret (401/403), malformed body (400). Nothing is published. */
export class WebhookRejected extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404,
    message: string,
  ) {
    super(message);
    this.name = "WebhookRejected";
  }
}

/** One message to send, as the dispatcher hands it to an adapter. */
export interface OutboundMessage {
  commandId: string;
  recipientId: string;
  text: string;
  attachments: Attachment[];
  buttons: Button[];
  subject: string;
}

/**
 * How a send ended. `rate_limited` and `transient` are retried by the dispatcher (after `retryAfterMs` when the
 * provider names it, else with capped exponential backoff); `permanent` is not, and unsubscribes the contact when
 * it concerns the recipient (blocked, chat not found); `rejected` is a bad message (too long, bad URL): failed,
 * not retried, the contact stays subscribed.
 */
export type SendResult =
  | { ok: true; providerMessageId: string }
  | { ok: false; kind: "rate_limited"; retryAfterMs?: number; error: string }
  | { ok: false; kind: "transient"; error: string }
  | { ok: false; kind: "permanent"; error: string }
  | { ok: false; kind: "rejected"; error: string };

/** Raised by connect() when the credentials are refused or incomplete; becomes INVALID_ARGUMENT naming the field. */
export class ChannelSetupError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "ChannelSetupError";
  }
}

export interface ConnectInput {
  channelId: string;
  settings: Record<string, string>;
  secrets: Record<string, string>;
  /** The absolute URL the provider must post updates to. */
  webhookUrl: string;
}

export interface ConnectResult {
  settings: Record<string, string>;
  secrets: Record<string, string>;
  /** The account as the provider names it (the bot's @username, the sender address…). */
  accountLabel: string;
}

export interface ProviderAdapter {
  readonly messenger: Messenger;
  /** Checks the credentials with the provider and registers the webhook where the provider has an API for it. */
  connect(input: ConnectInput): Promise<ConnectResult>;
  /** Removes what connect() registered with the provider; best effort (the token may already be revoked). */
  disconnect(account: AccountView): Promise<void>;
  /** Verifies and parses one webhook request; throws WebhookRejected for a request that must not be accepted. */
  handleWebhook(account: AccountView, request: WebhookRequest): WebhookOutcome | Promise<WebhookOutcome>;
  send(account: AccountView, message: OutboundMessage): Promise<SendResult>;
  /**
   * For messengers whose inbound media are references, not URLs (a Telegram file id, a WhatsApp media id): whether
   * an attachment URL is such a reference, and where it is downloaded with which headers (which may hold secrets).
   * The service serves these through its signed media links, so no token ever reaches a browser.
   */
  isMediaRef?(url: string): boolean;
  resolveMedia?(account: AccountView, ref: string): Promise<{ url: string; headers: Record<string, string> }>;
}
