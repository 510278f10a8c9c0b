import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ChannelSchema, ChannelState, LoggedMessageSchema, MessageDirection, ResendJobSchema, ResendJobState } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { DeliveryState, MessageKind } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { messengerOf, webhookPath } from "../accounts/messengers";
import { originOf } from "../outbound/status-events";
import type { ResendJobDoc } from "../resend/resend-jobs";
import { stateOfRank, type ChannelDoc, type MessageDoc } from "../store/models";


/** A channel as any API shows it: never a secret. */
export const channelToProto = (doc: ChannelDoc) =>
  create(ChannelSchema, {
    id: doc._id,
    messenger: messengerOf(doc.messenger),
    name: doc.name,
    state: doc.state === "connected" ? ChannelState.CONNECTED : ChannelState.DISCONNECTED,
    webhookPath: webhookPath(doc.messenger, doc._id),
    accountLabel: doc.accountLabel,
    widgetKey: doc.widgetKey,
    allowedOrigins: doc.allowedOrigins ?? [],
    createdAt: timestampFromDate(doc.createdAt),
    disconnectedAt: doc.disconnectedAt ? timestampFromDate(doc.disconnectedAt) : undefined,
  });

const STATES: Record<string, DeliveryState> = {
  queued: DeliveryState.QUEUED,
  sent: DeliveryState.SENT,
  delivered: DeliveryState.DELIVERED,
  read: DeliveryState.READ,
  failed: DeliveryState.FAILED,
};

const kindOf = (name: string) => MessageKind[name.toUpperCase() as keyof typeof MessageKind] ?? MessageKind.UNSPECIFIED;

export const messageToProto = (doc: MessageDoc) =>
  create(LoggedMessageSchema, {
    id: doc._id,
    direction: doc.direction === "in" ? MessageDirection.INBOUND : MessageDirection.OUTBOUND,
    channelId: doc.channelId,
    messenger: messengerOf(doc.messenger),
    peerId: doc.peerId,
    contactId: doc.contactId,
    kind: kindOf(doc.kind),
    text: doc.text,
    attachments: doc.attachments.map((a) => ({ kind: kindOf(a.kind), url: a.url, mimeType: a.mimeType, fileName: a.fileName, sizeBytes: BigInt(a.sizeBytes ?? 0) })),
    buttons: doc.buttons,
    origin: originOf(doc.origin),
    operatorId: doc.operatorId,
    state: doc.direction === "out" ? STATES[stateOfRank(doc.stateRank)] : DeliveryState.UNSPECIFIED,
    error: doc.error,
    providerMessageId: doc.providerMessageId,
    createdAt: timestampFromDate(doc.createdAt),
    stateChangedAt: timestampFromDate(doc.stateChangedAt ?? doc.createdAt),
  });

export const resendJobToProto = (job: ResendJobDoc) =>
  create(ResendJobSchema, {
    id: job._id,
    state: job.state === "done" ? ResendJobState.DONE : job.state === "failed" ? ResendJobState.FAILED : ResendJobState.RUNNING,
    messenger: messengerOf(job.messenger),
    channelId: job.channelId,
    failedFrom: job.failedFrom ? timestampFromDate(job.failedFrom) : undefined,
    failedTo: job.failedTo ? timestampFromDate(job.failedTo) : undefined,
    intervalMs: job.intervalMs,
    total: BigInt(job.total),
    done: BigInt(job.done),
    resent: BigInt(job.resent),
    error: job.error,
    createdAt: timestampFromDate(job.createdAt),
    finishedAt: job.finishedAt ? timestampFromDate(job.finishedAt) : undefined,
  });
