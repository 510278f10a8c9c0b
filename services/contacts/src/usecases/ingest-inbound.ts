import { timestampDate } from "@bufbuild/protobuf/wkt";
import { MessageKind, type InboundMessage } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { Topics, type EventPublisher } from "@chatcrm/kafka";
import type { Logger } from "@chatcrm/logging";
import { messengerName } from "../domain/enums";
import { parseUtm } from "../domain/utm";
import { contactChanged, publishContactEvents } from "../events/contact-events";
import { toSnapshot } from "../rpc/contact-to-proto";
import type { ContactDoc, LastMessageDoc } from "../store/contact-document";
import { identityId, type IdentityDoc } from "../store/support-models";
import type { ContactStore } from "./contact-store";
import { derivedContactId, insertContact, newContactDoc, claimClientId } from "./new-contact";

const RECENT_INBOUND_KEPT = 20;
const PROFILE_FIELDS = ["firstName", "lastName", "username", "avatarUrl", "profileUrl", "language"] as const;
const PROTO_NAMES: Record<string, string> = {
  firstName: "first_name",
  lastName: "last_name",
  username: "username",
  avatarUrl: "avatar_url",
  profileUrl: "profile_url",
  language: "language",
  displayName: "display_name",
  lastUtm: "last_utm",
  status: "status",
};

const MAX_RECORD_ATTEMPTS = 8;

export type IngestOutcome = { contact: ContactDoc; firstTouch: boolean } | { ignored: string };

/**
 * The inbound hot path: find or create the subscriber's contact, record the message (last interaction, unread,
 * preview), then publish the contact-resolved message for flow-runtime and the contact event. Every database
 * access is an _id lookup. Kafka redelivers until this returns, so every step is safe to redo: the contact id is
 * derived from the message that created it, the message id is remembered on the card so unread is counted once,
 * and the events carry ids derived from the message.
 */
export class InboundIngest {
  constructor(
    private readonly store: ContactStore,
    private readonly publisher: EventPublisher,
    private readonly logger: Logger,
  ) {}

  async ingest(msg: InboundMessage): Promise<IngestOutcome> {
    const problem = checkInbound(msg);
    if (problem) throw new Error(`inbound message ${msg.messageId || "(no id)"} is unusable: ${problem}`);
    const at = msg.sentAt ? timestampDate(msg.sentAt) : new Date();
    const key = identityId(msg.projectId, msg.channelId, msg.senderId);
    const { identities } = this.store.support;
    let identity = (await identities.collection.findOne({ _id: key as never })) as IdentityDoc | null;

    if (identity?.blacklisted) return this.ignore(msg, "the subscriber is blacklisted");
    if (identity?.deletedAt) {
      // Sent before the contact was deleted, delivered after: it must not bring the contact back.
      if (at <= identity.deletedAt) return this.ignore(msg, "the message predates the contact's deletion");
      const fresh = derivedContactId(msg.projectId, msg.messageId);
      await identities.collection.updateOne({ _id: key as never, deletedAt: identity.deletedAt }, { $set: { contactId: fresh, deletedAt: null } });
      identity = (await identities.collection.findOne({ _id: key as never })) as IdentityDoc | null;
    } else if (!identity) {
      const candidate = derivedContactId(msg.projectId, msg.messageId);
      identity = (await identities.collection.findOneAndUpdate(
        { _id: key as never },
        { $setOnInsert: { projectId: msg.projectId, contactId: candidate, deletedAt: null, blacklisted: false } },
        { upsert: true, returnDocument: "after" },
      )) as IdentityDoc | null;
    }
    if (!identity || identity.deletedAt || identity.blacklisted) throw new Error(`the identity of ${key} changed while the message was handled`);

    const existing = await this.store.byId(msg.projectId, identity.contactId);
    const result = existing ? await this.record(existing, msg, at) : await this.create(identity.contactId, msg, at);
    await this.publish(msg, result.contact, result.firstTouch, result.changedFields);
    return { contact: result.contact, firstTouch: result.firstTouch };
  }

  private async create(contactId: string, msg: InboundMessage, at: Date) {
    const s = msg.sender;
    const doc = newContactDoc(
      {
        projectId: msg.projectId,
        contactId,
        messenger: messengerName(msg.messenger)!,
        channelId: msg.channelId,
        messengerUserId: msg.senderId,
        profile: { firstName: s?.firstName, lastName: s?.lastName, username: s?.username, avatarUrl: s?.avatarUrl, profileUrl: s?.profileUrl, language: s?.language, phone: msg.sharedPhone },
        at,
        utm: parseUtm(msg.startPayload),
      },
      await claimClientId(this.store.support, msg.projectId, contactId),
    );
    Object.assign(doc, { firstInteractionAt: at, lastInboundAt: at, unread: true, unreadCount: 1, lastMessage: preview(msg, at), recentInbound: [msg.messageId] });
    const { contact, created } = await insertContact(this.store.contacts, this.store.support, doc, "system");
    if (!created && !contact.recentInbound.includes(msg.messageId)) return this.record(contact, msg, at);
    return { contact, firstTouch: true, changedFields: [] as string[] };
  }

  /**
   * Applies one message to an existing card, once however often it is delivered. What it sets depends on the card
   * as read (status, profile), so the write is a compare-and-set on `rev`: a card changed meanwhile (or read from
   * before a write, which FerretDB on SQLite has done) is read again and the message applied to that.
   */
  private async record(card: ContactDoc, msg: InboundMessage, at: Date) {
    let doc: ContactDoc | null = card;
    for (let attempt = 1; doc; attempt++) {
      if (doc.recentInbound?.includes(msg.messageId)) return { contact: doc, firstTouch: false, changedFields: ["last_interaction_at", "unread", "last_message"] };
      const set = recordedFields(doc, msg, at);
      const result = await this.store.contacts.collection.updateOne(
        { _id: doc._id as never, rev: doc.rev },
        { $set: set, $inc: { unreadCount: 1, rev: 1 }, $push: { recentInbound: { $each: [msg.messageId], $slice: -RECENT_INBOUND_KEPT } } as never },
      );
      if (result.matchedCount === 1) {
        const contact: ContactDoc = { ...doc, ...set, unreadCount: (doc.unreadCount ?? 0) + 1, rev: doc.rev + 1, recentInbound: [...(doc.recentInbound ?? []), msg.messageId].slice(-RECENT_INBOUND_KEPT) };
        const changed = ["last_interaction_at", "unread", "unread_count", "last_message", ...Object.keys(set).flatMap((k) => (PROTO_NAMES[k] ? [PROTO_NAMES[k]] : []))];
        if (set.phone) changed.push("phone");
        return { contact, firstTouch: false, changedFields: changed };
      }
      if (attempt >= MAX_RECORD_ATTEMPTS) break;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
      doc = await this.store.byId(card.projectId, card._id);
    }
    // Kafka redelivers the message; the next try starts from the identity again (the card may have been deleted).
    throw new Error(`contact ${card._id} kept changing while message ${msg.messageId} was recorded`);
  }

  private async publish(msg: InboundMessage, contact: ContactDoc, firstTouch: boolean, changedFields: string[]) {
    const at = new Date();
    // Two topics, no order between them; both must be acknowledged before the inbound offset is committed.
    await Promise.all([
      this.publisher.publish(Topics.resolvedMessages, {
        key: contact._id,
        projectId: contact.projectId,
        eventId: `resolved:${msg.messageId}`,
        value: { message: msg, contact: toSnapshot(contact), firstTouch },
      }),
      publishContactEvents(this.publisher, [contactChanged(contact, firstTouch ? "created" : "updated", `inbound:${msg.messageId}`, changedFields, at)]),
    ]);
  }

  private ignore(msg: InboundMessage, why: string): IngestOutcome {
    this.logger.info({ messageId: msg.messageId, projectId: msg.projectId, channelId: msg.channelId }, `inbound message ignored: ${why}`);
    return { ignored: why };
  }
}

function checkInbound(msg: InboundMessage): string | undefined {
  if (!msg.messageId) return "message_id is empty";
  if (!msg.projectId) return "project_id is empty";
  if (!msg.channelId) return "channel_id is empty";
  if (!msg.senderId) return "sender_id is empty";
  if (!messengerName(msg.messenger)) return `messenger ${msg.messenger} is not known`;
  return undefined;
}

const MEDIA = new Set([MessageKind.IMAGE, MessageKind.VIDEO, MessageKind.AUDIO, MessageKind.DOCUMENT]);

/** What a message changes on an existing card besides the counters. */
function recordedFields(doc: ContactDoc, msg: InboundMessage, at: Date): Partial<ContactDoc> {
  const set: Partial<ContactDoc> = { lastInteractionAt: at, lastInboundAt: at, unread: true, lastMessage: preview(msg, at), updatedAt: new Date() };
  const s = msg.sender;
  for (const f of PROFILE_FIELDS) if (s?.[f] && s[f] !== doc[f]) set[f] = s[f];
  if (set.firstName !== undefined || set.lastName !== undefined) set.displayName = [set.firstName ?? doc.firstName, set.lastName ?? doc.lastName].filter(Boolean).join(" ");
  if (!doc.firstInteractionAt) set.firstInteractionAt = at;
  const utm = parseUtm(msg.startPayload);
  if (utm) set.lastUtm = utm;
  // Writing again means the bot can reach them again; a block by us or a pause stays until an operator lifts it.
  if (doc.status === "unsubscribed") set.status = "subscribed";
  if (msg.sharedPhone && !doc.phone) set.phone = msg.sharedPhone;
  return set;
}

function preview(msg: InboundMessage, at: Date): LastMessageDoc {
  return {
    author: "client",
    operatorId: "",
    excerpt: msg.text.slice(0, 200),
    hasAttachment: msg.attachments.length > 0 || MEDIA.has(msg.kind),
    at,
    failed: false,
    error: "",
    commandId: "",
  };
}
