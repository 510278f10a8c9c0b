import { Schema, type Connection, type Model } from "mongoose";
import type { TimelineInput } from "./contact-document";

/**
 * A subscriber's channel identity → their contact. _id is "<project>|<channel>|<messenger id>", so the inbound
 * hot path finds a contact with _id lookups only (FerretDB pushes nothing else down). A deleted contact leaves its
 * identity behind with deletedAt, so a late message sent before the deletion does not bring it back, and a
 * blacklisted one keeps the subscriber out for good.
 */
export interface IdentityDoc {
  _id: string;
  projectId: string;
  contactId: string;
  deletedAt: Date | null;
  blacklisted: boolean;
}

/** "<project>|<client id>" → contact, for GetContact by client id without a scan. */
export interface ClientIdDoc {
  _id: string;
  contactId: string;
}

/** The next client id of a project. */
export interface CounterDoc {
  _id: string;
  seq: number;
}

/** A deleted contact whose deletion event may not be published yet; also answers "was this contact deleted?". */
export interface TombstoneDoc {
  _id: string;
  projectId: string;
  clientId: number;
  identityId: string;
  blacklisted: boolean;
  deletedAt: Date;
  published: boolean;
  actor: string;
}

export interface TimelineDoc extends TimelineInput {
  _id: string;
  projectId: string;
  contactId: string;
  at: Date;
}

export interface SavedFilterDoc {
  _id: string;
  projectId: string;
  name: string;
  /** The filter as protobuf JSON, so it is read back through the same validation as a request. */
  filter: unknown;
  createdAt: Date;
}

/**
 * "This contact may have unpublished outbox entries": written before a command's update, removed once its outbox
 * is empty. The relay reads this small collection instead of scanning the contacts for outboxes.
 */
export interface OutboxHintDoc {
  _id: string;
  projectId: string;
  at: Date;
}

export interface AuditDoc {
  _id: string;
  projectId: string;
  actor: string;
  action: string;
  details: unknown;
  at: Date;
}

export const identityId = (projectId: string, channelId: string, messengerUserId: string) => `${projectId}|${channelId}|${messengerUserId}`;
export const clientIdKey = (projectId: string, clientId: number) => `${projectId}|${clientId}`;

export interface SupportModels {
  identities: Model<IdentityDoc>;
  clientIds: Model<ClientIdDoc>;
  counters: Model<CounterDoc>;
  tombstones: Model<TombstoneDoc>;
  timeline: Model<TimelineDoc>;
  savedFilters: Model<SavedFilterDoc>;
  audit: Model<AuditDoc>;
  outboxHints: Model<OutboxHintDoc>;
}

export function supportModels(connection: Connection): SupportModels {
  const opts = { versionKey: false as const };
  const tombstones = new Schema<TombstoneDoc>(
    { _id: String, projectId: String, clientId: Number, identityId: String, blacklisted: Boolean, deletedAt: Date, published: Boolean, actor: String },
    { ...opts, collection: "deleted_contacts" },
  );
  // The relay finishes deletions whose event was not published.
  tombstones.index({ published: 1, deletedAt: 1 });

  const timeline = new Schema<TimelineDoc>(
    { _id: String, projectId: String, contactId: String, kind: String, subject: String, oldValue: String, newValue: String, actor: String, at: Date },
    { ...opts, collection: "timeline" },
  );
  // ListTimeline: one contact's entries, newest first, keyset on _id.
  timeline.index({ projectId: 1, contactId: 1, at: -1, _id: -1 });

  const savedFilters = new Schema<SavedFilterDoc>({ _id: String, projectId: String, name: String, filter: Schema.Types.Mixed, createdAt: Date }, { ...opts, collection: "saved_filters" });
  // ListSavedFilters by name; names are unique per project.
  savedFilters.index({ projectId: 1, name: 1 }, { unique: true });

  const audit = new Schema<AuditDoc>({ _id: String, projectId: String, actor: String, action: String, details: Schema.Types.Mixed, at: Date }, { ...opts, collection: "audit_log" });
  // An auditor reads a project's entries newest first.
  audit.index({ projectId: 1, at: -1 });

  const outboxHints = new Schema<OutboxHintDoc>({ _id: String, projectId: String, at: Date }, { ...opts, collection: "outbox_pending" });
  // The relay takes the hints older than its cut-off.
  outboxHints.index({ at: 1 });

  return {
    outboxHints: connection.model<OutboxHintDoc>("OutboxHint", outboxHints),
    identities: connection.model<IdentityDoc>(
      "Identity",
      new Schema<IdentityDoc>({ _id: String, projectId: String, contactId: String, deletedAt: Date, blacklisted: Boolean }, { ...opts, collection: "identities" }),
    ),
    clientIds: connection.model<ClientIdDoc>("ClientId", new Schema<ClientIdDoc>({ _id: String, contactId: String }, { ...opts, collection: "client_ids" })),
    counters: connection.model<CounterDoc>("Counter", new Schema<CounterDoc>({ _id: String, seq: Number }, { ...opts, collection: "counters" })),
    tombstones: connection.model<TombstoneDoc>("Tombstone", tombstones),
    timeline: connection.model<TimelineDoc>("TimelineEntry", timeline),
    savedFilters: connection.model<SavedFilterDoc>("SavedFilter", savedFilters),
    audit: connection.model<AuditDoc>("AuditEntry", audit),
  };
}
