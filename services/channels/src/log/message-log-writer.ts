import { timestampDate } from "@bufbuild/protobuf/wkt";
import { DeliveryState, MessageKind, MessageOrigin, type Attachment, type Button, type DeliveryStatus, type InboundMessage, type SendMessageCommand } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import type { BatchContext, ConsumedEvent, Topics } from "@chatcrm/kafka";
import { bulkWriteInSlices, insertManyIgnoringDuplicates, isDuplicateKey } from "@chatcrm/mongo";
import type { mongo } from "mongoose";
import { nameOfMessenger } from "../accounts/messengers";
import { originName } from "../outbound/status-events";
import { chatKey, STATE_RANK, type ChannelModels, type LastBotMessageDoc, type MessageDoc, type StateName } from "../store/models";

const STATE_NAMES: Partial<Record<DeliveryState, StateName>> = {
  [DeliveryState.QUEUED]: "queued",
  [DeliveryState.SENT]: "sent",
  [DeliveryState.DELIVERED]: "delivered",
  [DeliveryState.READ]: "read",
  [DeliveryState.FAILED]: "failed",
};

const attachmentsOf = (list: Attachment[]) => list.map((a) => ({ kind: MessageKind[a.kind]?.toLowerCase() ?? "document", url: a.url, mimeType: a.mimeType, fileName: a.fileName, sizeBytes: Number(a.sizeBytes) }));
const buttonsOf = (list: Button[]) => list.map((b) => ({ text: b.text, payload: b.payload, url: b.url }));
const isBotOrigin = (origin: MessageOrigin) => origin === MessageOrigin.FLOW || origin === MessageOrigin.MASS_ACTION;

/**
 * Writes the message log (the card's history tab) from the service's own topics, in bulk and off the hot paths:
 * inbound messages, send commands (the outbound message as queued) and delivery statuses. Every write is keyed by
 * the message or command id and monotonic in state, so a batch redone after a crash changes nothing twice, and a
 * status that overtakes its command still lands.
 */
export class MessageLogWriter {
  constructor(private readonly models: ChannelModels) {}

  inbound = async (events: ConsumedEvent<typeof Topics.inboundMessages.schema>[]): Promise<void> => {
    await insertManyIgnoringDuplicates(this.models.messages.collection, events.map((e) => inboundDoc(e.value)));
  };

  commands = async (events: ConsumedEvent<typeof Topics.sendCommands.schema>[], context: BatchContext): Promise<void> => {
    const now = new Date();
    const messageOps: mongo.AnyBulkWriteOperation<MessageDoc>[] = [];
    for (const { value: c } of events) {
      messageOps.push({
        updateOne: {
          filter: { _id: c.commandId },
          update: {
            $set: { ...outboundFields(c), kind: kindOf(c), text: c.text, subject: c.subject, attachments: attachmentsOf(c.attachments), buttons: buttonsOf(c.buttons), origin: originName(c.origin), operatorId: c.operatorId },
            $max: { stateRank: STATE_RANK.queued },
            $min: { createdAt: now },
            $setOnInsert: { messenger: "", error: "", providerMessageId: "", stateChangedAt: now },
          },
          upsert: true,
        },
      });
    }
    await upsertAll(this.models.messages.collection, messageOps, context);
  };

  statuses = async (events: ConsumedEvent<typeof Topics.deliveryStatuses.schema>[], context: BatchContext): Promise<void> => {
    const messageOps: mongo.AnyBulkWriteOperation<MessageDoc>[] = [];
    const lastBotOps: mongo.AnyBulkWriteOperation<LastBotMessageDoc>[] = [];
    for (const { value: s } of events) {
      const state = STATE_NAMES[s.state];
      if (!state || !s.commandId) continue;
      const at = s.at ? timestampDate(s.at) : new Date();
      const set: Partial<MessageDoc> = {};
      if (state === "failed") set.error = s.error;
      if (s.providerMessageId) set.providerMessageId = s.providerMessageId;
      const messenger = nameOfMessenger(s.messenger);
      if (messenger) set.messenger = messenger;
      messageOps.push({
        updateOne: {
          filter: { _id: s.commandId },
          update: {
            $set: set,
            $max: { stateRank: STATE_RANK[state], stateChangedAt: at },
            $min: { createdAt: at },
            $setOnInsert: { ...statusOnlyFields(s), kind: "text", text: s.excerpt, subject: "", attachments: [], buttons: [], origin: originName(s.origin), operatorId: s.operatorId },
          },
          upsert: true,
        },
      });
      if (isBotOrigin(s.origin)) lastBotOps.push(...lastBotUpdate(s, state, at, messenger ?? ""));
    }
    await upsertAll(this.models.messages.collection, messageOps, context);
    await bulkWriteInSlices(this.models.lastBotMessages.collection, lastBotOps, { isStopping: context.isStopping, ignoreDuplicates: true });
  };
}

/**
 * "Resend failed" needs each chat's last bot message and whether it failed, driven by the statuses alone (they are
 * ordered per chat, and carry the messenger; a command and its status read from two topics are not ordered with
 * each other). The dispatcher's final status (SENT, or FAILED before the provider took the message) makes the
 * command the chat's latest if it is not older than the one recorded; a provider's later report of a failure
 * (WhatsApp's asynchronous "failed") marks the chat failed only if that command is still the latest.
 */
function lastBotUpdate(s: DeliveryStatus, state: StateName, at: Date, messenger: string): mongo.AnyBulkWriteOperation<LastBotMessageDoc>[] {
  const _id = chatKey(s.projectId, s.channelId, s.recipientId);
  if (state === "failed" && s.providerMessageId) return [{ updateOne: { filter: { _id, commandId: s.commandId }, update: { $set: { failed: true } } } }];
  if (state !== "sent" && state !== "failed") return [];
  return [
    {
      updateOne: {
        filter: { _id, sentAt: { $lte: at } },
        update: { $set: { projectId: s.projectId, channelId: s.channelId, peerId: s.recipientId, messenger, commandId: s.commandId, sentAt: at, failed: state === "failed" } },
        upsert: true,
      },
    },
  ];
}

/**
 * The command and its statuses arrive on different topics, handled at the same time, and both upsert the same
 * message: one of two concurrent upserts can lose the insert race with a duplicate-key error (MongoDB retries some
 * of these itself, FerretDB none). The document exists by then, and every operation here is idempotent, so the
 * slice is simply applied again.
 */
async function upsertAll<T extends mongo.Document>(collection: mongo.Collection, ops: mongo.AnyBulkWriteOperation<T>[], context: BatchContext): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await bulkWriteInSlices(collection, ops, { isStopping: context.isStopping });
    } catch (err) {
      if (!isDuplicateKey(err) || attempt >= 3) throw err;
    }
  }
}

function kindOf(c: SendMessageCommand): string {
  const first = c.attachments[0];
  return first ? (MessageKind[first.kind]?.toLowerCase() ?? "document") : "text";
}

const outboundFields = (c: SendMessageCommand) => ({ projectId: c.projectId, channelId: c.channelId, peerId: c.recipientId, contactId: c.contactId, direction: "out" as const });

const statusOnlyFields = (s: DeliveryStatus) => ({ projectId: s.projectId, channelId: s.channelId, peerId: s.recipientId, contactId: s.contactId, direction: "out" as const });

function inboundDoc(m: InboundMessage): MessageDoc & Record<string, unknown> {
  const at = m.sentAt ? timestampDate(m.sentAt) : new Date();
  return {
    _id: m.messageId,
    projectId: m.projectId,
    channelId: m.channelId,
    messenger: nameOfMessenger(m.messenger) ?? "",
    peerId: m.senderId,
    contactId: "",
    direction: "in",
    kind: MessageKind[m.kind]?.toLowerCase() ?? "text",
    text: m.text || m.buttonPayload || m.sharedPhone,
    subject: m.subject,
    attachments: attachmentsOf(m.attachments),
    buttons: [],
    origin: "",
    operatorId: "",
    stateRank: 0,
    error: "",
    providerMessageId: m.providerMessageId,
    createdAt: at,
    stateChangedAt: at,
  };
}
