import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ContactStatus, type ContactSchema, type FunnelPositionSchema, type UtmSchema } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import type { ContactSnapshotSchema } from "@chatcrm/contracts/chatcrm/contacts/v1/events_pb";
import { authorToProto, messengerFromName, statusFromName } from "../domain/enums";
import type { ContactDoc, FunnelDoc, UtmDoc } from "../store/contact-document";

const ts = (d: Date | null | undefined) => (d ? timestampFromDate(d) : undefined);
const utm = (u: UtmDoc | null | undefined): MessageInitShape<typeof UtmSchema> | undefined => (u ? { ...u } : undefined);
const funnel = (f: FunnelDoc): MessageInitShape<typeof FunnelPositionSchema> => ({ flowId: f.flowId, blockId: f.blockId, at: ts(f.at) });
const variables = (doc: ContactDoc) => Object.fromEntries((doc.variables ?? []).map((v) => [v.name, v.value]));

/** The card as the API shows it. */
export function toContactProto(doc: ContactDoc): MessageInitShape<typeof ContactSchema> {
  return {
    contactId: doc._id,
    clientId: BigInt(doc.clientId),
    messenger: messengerFromName(doc.messenger),
    channelId: doc.channelId,
    messengerUserId: doc.messengerUserId,
    firstName: doc.firstName,
    lastName: doc.lastName,
    displayName: doc.displayName,
    username: doc.username,
    avatarUrl: doc.avatarUrl,
    profileUrl: doc.profileUrl,
    phone: doc.phone,
    email: doc.email,
    language: doc.language,
    freeText: doc.freeText,
    firstInteractionAt: ts(doc.firstInteractionAt),
    lastInteractionAt: ts(doc.lastInteractionAt),
    createdAt: ts(doc.createdAt),
    updatedAt: ts(doc.updatedAt),
    status: statusFromName(doc.status) || ContactStatus.SUBSCRIBED,
    variables: variables(doc),
    firstUtm: utm(doc.firstUtm),
    lastUtm: utm(doc.lastUtm),
    tags: doc.tags,
    lists: doc.lists,
    operatorId: doc.operatorId,
    funnel: doc.funnel ? funnel(doc.funnel) : undefined,
    funnelHistory: (doc.funnelHistory ?? []).map(funnel),
    dealStage: doc.dealStage,
    unread: doc.unread,
    unreadCount: doc.unreadCount,
    pinned: doc.pinned,
    lastMessage: doc.lastMessage ? { operatorId: doc.lastMessage.operatorId, excerpt: doc.lastMessage.excerpt, hasAttachment: doc.lastMessage.hasAttachment, failed: doc.lastMessage.failed, error: doc.lastMessage.error, author: authorToProto(doc.lastMessage.author), at: ts(doc.lastMessage.at) } : undefined,
    linkedContactIds: doc.linkedContactIds,
    clientWrote: !!doc.lastInboundAt,
  };
}

/** What flow-runtime and other consumers get with every event, without asking for the card. */
export function toSnapshot(doc: ContactDoc): MessageInitShape<typeof ContactSnapshotSchema> {
  return {
    contactId: doc._id,
    clientId: BigInt(doc.clientId),
    firstName: doc.firstName,
    lastName: doc.lastName,
    phone: doc.phone,
    email: doc.email,
    tags: doc.tags,
    lists: doc.lists,
    variables: variables(doc),
    messenger: messengerFromName(doc.messenger),
    channelId: doc.channelId,
    messengerUserId: doc.messengerUserId,
    freeText: doc.freeText,
    username: doc.username,
    language: doc.language,
    operatorId: doc.operatorId,
  };
}
