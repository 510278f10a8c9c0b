import { Schema, type Connection, type Model } from "mongoose";

/**
 * A connected messenger account. Secrets (tokens, passwords, signing keys) are one sealed string (crypto/secret-box)
 * and leave this service only as what the adapter needs for a call; settings are the public rest.
 */
export interface ChannelDoc {
  _id: string;
  projectId: string;
  /** The Messenger enum's name in lower case: telegram, whatsapp, vk, email, web. */
  messenger: string;
  name: string;
  state: "connected" | "disconnected";
  settings: Record<string, string>;
  sealedSecrets: string;
  accountLabel: string;
  /** Web widget channels: the key a site embeds, which names the channel (see widget/widget-key). */
  widgetKey: string;
  allowedOrigins: string[];
  createdAt: Date;
  disconnectedAt: Date | null;
}

export type StateName = "queued" | "sent" | "delivered" | "read" | "failed";

/**
 * One message of a chat, in either direction. Inbound: _id = our message id. Outbound: _id = the send command id.
 * The state only moves forward (stateRank, written with $max), because statuses arrive out of order: a "read" from
 * a webhook may be written before the dispatcher's "sent".
 */
export interface MessageDoc {
  _id: string;
  projectId: string;
  channelId: string;
  messenger: string;
  peerId: string;
  contactId: string;
  direction: "in" | "out";
  kind: string;
  text: string;
  subject: string;
  attachments: { kind: string; url: string; mimeType: string; fileName: string; sizeBytes: number }[];
  buttons: { text: string; payload: string; url: string }[];
  origin: string;
  operatorId: string;
  stateRank: number;
  error: string;
  providerMessageId: string;
  createdAt: Date;
  stateChangedAt: Date;
}

export const STATE_RANK: Record<StateName, number> = { queued: 1, sent: 2, delivered: 3, read: 4, failed: 5 };
export const stateOfRank = (rank: number): StateName => (Object.entries(STATE_RANK).find(([, r]) => r === rank)?.[0] as StateName | undefined) ?? "queued";

/**
 * The last bot message of a chat (flows and mass actions, not operators): what "resend failed" (seed 002) works on.
 * _id = "<project>|<channel>|<peer>".
 */
export interface LastBotMessageDoc {
  _id: string;
  projectId: string;
  channelId: string;
  messenger: string;
  peerId: string;
  commandId: string;
  sentAt: Date;
  failed: boolean;
}

/** A provider's message id → our command, for delivery reports that name only the provider's id (WhatsApp). */
export interface ProviderRefDoc {
  _id: string;
  projectId: string;
  commandId: string;
  peerId: string;
  contactId: string;
  origin: string;
  operatorId: string;
  createdAt: Date;
}

/** An accepted webhook event that Kafka did not take at once; the relay publishes it (nothing accepted is lost). */
export interface PendingEventDoc {
  _id: string;
  projectId: string;
  topic: string;
  key: string;
  value: Buffer;
  createdAt: Date;
  /** Set when Kafka refused the event for good (too large); the relay leaves it for a person. */
  parkedError?: string | null;
}

/** An operator send's idempotency key → the command it produced. _id = "<project>|<key>". */
export interface SendRequestDoc {
  _id: string;
  commandId: string;
  recipientId: string;
  createdAt: Date;
}

export interface ChannelModels {
  channels: Model<ChannelDoc>;
  messages: Model<MessageDoc>;
  lastBotMessages: Model<LastBotMessageDoc>;
  providerRefs: Model<ProviderRefDoc>;
  pendingEvents: Model<PendingEventDoc>;
  sendRequests: Model<SendRequestDoc>;
}

export const chatKey = (projectId: string, channelId: string, peerId: string) => `${projectId}|${channelId}|${peerId}`;
export const providerRefKey = (channelId: string, providerMessageId: string) => `${channelId}|${providerMessageId}`;

export function channelModels(connection: Connection): ChannelModels {
  const opts = { versionKey: false as const };
  const channels = new Schema<ChannelDoc>(
    {
      _id: String,
      projectId: String,
      messenger: String,
      name: String,
      state: String,
      settings: Schema.Types.Mixed,
      sealedSecrets: String,
      accountLabel: String,
      widgetKey: String,
      allowedOrigins: [String],
      createdAt: Date,
      disconnectedAt: Date,
    },
    { ...opts, collection: "channels", minimize: false },
  );
  // ListChannels: a project's channels in creation order.
  channels.index({ projectId: 1, createdAt: 1 });

  const messages = new Schema<MessageDoc>(
    {
      _id: String,
      projectId: String,
      channelId: String,
      messenger: String,
      peerId: String,
      contactId: String,
      direction: String,
      kind: String,
      text: String,
      subject: String,
      attachments: [{ _id: false, kind: String, url: String, mimeType: String, fileName: String, sizeBytes: Number }],
      buttons: [{ _id: false, text: String, payload: String, url: String }],
      origin: String,
      operatorId: String,
      stateRank: Number,
      error: String,
      providerMessageId: String,
      createdAt: Date,
      stateChangedAt: Date,
    },
    { ...opts, collection: "messages" },
  );
  // ListMessages: one chat newest first, keyset on (createdAt, _id).
  messages.index({ projectId: 1, channelId: 1, peerId: 1, createdAt: -1, _id: -1 });

  const lastBot = new Schema<LastBotMessageDoc>(
    { _id: String, projectId: String, channelId: String, messenger: String, peerId: String, commandId: String, sentAt: Date, failed: Boolean },
    { ...opts, collection: "last_bot_messages" },
  );
  // StartResendFailed: a project's failed chats by messenger and time; the job walks them in _id order.
  lastBot.index({ projectId: 1, failed: 1, messenger: 1, sentAt: 1 });

  const providerRefs = new Schema<ProviderRefDoc>(
    { _id: String, projectId: String, commandId: String, peerId: String, contactId: String, origin: String, operatorId: String, createdAt: Date },
    { ...opts, collection: "provider_refs" },
  );
  const pending = new Schema<PendingEventDoc>({ _id: String, projectId: String, topic: String, key: String, value: Buffer, createdAt: Date, parkedError: String }, { ...opts, collection: "pending_events" });
  // The relay takes the oldest first.
  pending.index({ createdAt: 1 });
  const sendRequests = new Schema<SendRequestDoc>({ _id: String, commandId: String, recipientId: String, createdAt: Date }, { ...opts, collection: "send_requests" });

  return {
    channels: connection.model<ChannelDoc>("Channel", channels),
    messages: connection.model<MessageDoc>("LoggedMessage", messages),
    lastBotMessages: connection.model<LastBotMessageDoc>("LastBotMessage", lastBot),
    providerRefs: connection.model<ProviderRefDoc>("ProviderRef", providerRefs),
    pendingEvents: connection.model<PendingEventDoc>("PendingEvent", pending),
    sendRequests: connection.model<SendRequestDoc>("SendRequest", sendRequests),
  };
}
