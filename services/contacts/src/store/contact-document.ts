import { Schema, type Connection, type Model } from "mongoose";

export type StatusName = "subscribed" | "unsubscribed" | "blocked" | "paused";
export type AuthorName = "client" | "bot" | "operator" | "comment";

export interface UtmDoc {
  source: string;
  medium: string;
  campaign: string;
  content: string;
  term: string;
}

export interface FunnelDoc {
  flowId: string;
  blockId: string;
  at: Date;
}

export interface LastMessageDoc {
  author: AuthorName;
  operatorId: string;
  excerpt: string;
  hasAttachment: boolean;
  at: Date;
  failed: boolean;
  error: string;
  /** The send command of an outbound message, so its failure can be matched to it. */
  commandId: string;
}

/** A change event written in the same update as the change, published afterwards (see contact-writer.ts). */
export interface OutboxEntry {
  eventId: string;
  kind: "created" | "updated";
  changedFields: string[];
  at: Date;
  timeline: TimelineInput[];
}

export interface TimelineInput {
  kind: string;
  subject: string;
  oldValue: string;
  newValue: string;
  actor: string;
}

/** One subscriber in one channel, as stored. Field names are fixed; user-defined names only ever appear as values. */
export interface ContactDoc {
  _id: string;
  projectId: string;
  clientId: number;
  /** The client id as text, so "10" can match 110 and 210 as a substring (seed 002). */
  clientIdText: string;
  messenger: string;
  channelId: string;
  messengerUserId: string;
  firstName: string;
  lastName: string;
  displayName: string;
  username: string;
  avatarUrl: string;
  profileUrl: string;
  phone: string;
  email: string;
  language: string;
  freeText: string;
  firstInteractionAt: Date | null;
  lastInteractionAt: Date;
  lastInboundAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  status: StatusName;
  /** In the order they were first set; names may hold dots and spaces, so they are stored as values. */
  variables: { name: string; value: string }[];
  /** Derived from variables for indexable exact matches: the names, and "name<US>value" pairs. */
  varNames: string[];
  varPairs: string[];
  firstUtm: UtmDoc | null;
  lastUtm: UtmDoc | null;
  tags: string[];
  lists: string[];
  /** "" when the client is free, so the Free tab is an equality. */
  operatorId: string;
  funnel: FunnelDoc | null;
  /** Derived from funnel for an indexable equality. */
  funnelBlockId: string;
  funnelHistory: FunnelDoc[];
  dealStage: string;
  unread: boolean;
  unreadCount: number;
  pinned: boolean;
  lastMessage: LastMessageDoc | null;
  linkedContactIds: string[];
  /** The last inbound message ids applied, so a redelivered message is not counted twice. */
  recentInbound: string[];
  /** The last Limits.recentComments comment ids added, so a repeated AddComment adds its comment once. */
  recentCommentIds: string[];
  outbox: OutboxEntry[];
  /** Bumped by every write; command writes are compare-and-set on it. */
  rev: number;
}

export const VARIABLE_PAIR_SEPARATOR = "\u001f";
export const variablePair = (name: string, value: string) => `${name}${VARIABLE_PAIR_SEPARATOR}${value}`;

/** Derived fields that must be written together with `variables`. */
export function variableIndexFields(variables: ContactDoc["variables"]) {
  return { varNames: variables.map((v) => v.name), varPairs: variables.map((v) => variablePair(v.name, v.value)) };
}

const utm = { source: String, medium: String, campaign: String, content: String, term: String };
const funnel = { flowId: String, blockId: String, at: Date };

function contactSchema() {
  const schema = new Schema<ContactDoc>(
    {
      _id: String,
      projectId: { type: String, required: true },
      clientId: Number,
      clientIdText: String,
      messenger: String,
      channelId: String,
      messengerUserId: String,
      firstName: String,
      lastName: String,
      displayName: String,
      username: String,
      avatarUrl: String,
      profileUrl: String,
      phone: String,
      email: String,
      language: String,
      freeText: String,
      firstInteractionAt: Date,
      lastInteractionAt: Date,
      lastInboundAt: Date,
      createdAt: Date,
      updatedAt: Date,
      status: String,
      variables: [{ _id: false, name: String, value: String }],
      varNames: [String],
      varPairs: [String],
      firstUtm: { type: utm, _id: false },
      lastUtm: { type: utm, _id: false },
      tags: [String],
      lists: [String],
      operatorId: String,
      funnel: { type: funnel, _id: false },
      funnelBlockId: String,
      funnelHistory: [{ ...funnel, _id: false }],
      dealStage: String,
      unread: Boolean,
      unreadCount: Number,
      pinned: Boolean,
      lastMessage: { type: { author: String, operatorId: String, excerpt: String, hasAttachment: Boolean, at: Date, failed: Boolean, error: String, commandId: String }, _id: false },
      linkedContactIds: [String],
      recentInbound: [String],
      recentCommentIds: [String],
      outbox: [{ _id: false, eventId: String, kind: String, changedFields: [String], at: Date, timeline: [Schema.Types.Mixed] }],
      rev: Number,
    },
    { versionKey: false, collection: "contacts", minimize: false },
  );
  // Indexes for MongoDB: equality fields first, then the sort (pinned, key, _id), ranges last. FerretDB ignores
  // them (it sorts in memory) but they are created on both, so the same code runs everywhere.
  // GetContact by client id goes through client_ids (an _id lookup), by internal id through _id.
  // ListContacts, default sort: project, pinned first, latest interaction first, keyset on _id.
  schema.index({ projectId: 1, pinned: -1, lastInteractionAt: -1, _id: -1 });
  // ListContacts sorted by creation (seed 002), and "registered before/after" ranges under any sort.
  schema.index({ projectId: 1, pinned: -1, createdAt: -1, _id: -1 });
  // Filter by tag (include; the benchmark's compound filter) with the creation sort and range.
  schema.index({ projectId: 1, tags: 1, pinned: -1, createdAt: -1, _id: -1 });
  // Filter by list (seed 001 groups, seed 002 lists) with the creation sort.
  schema.index({ projectId: 1, lists: 1, pinned: -1, createdAt: -1, _id: -1 });
  // Filter by variable name + value (seed 002), exact.
  schema.index({ projectId: 1, varPairs: 1, pinned: -1, createdAt: -1, _id: -1 });
  // Filter by variable name only.
  schema.index({ projectId: 1, varNames: 1 });
  // Channel / messenger multi-selects with the default sort.
  schema.index({ projectId: 1, channelId: 1, pinned: -1, lastInteractionAt: -1, _id: -1 });
  schema.index({ projectId: 1, messenger: 1, pinned: -1, lastInteractionAt: -1, _id: -1 });
  // Tabs Mine / Others' / Free, the responsible-operator filter, and the operator's unread total.
  schema.index({ projectId: 1, operatorId: 1, unread: 1, pinned: -1, lastInteractionAt: -1 });
  // Unanswered tab / unanswered-only filter, and the admin's unread total.
  schema.index({ projectId: 1, unread: 1, pinned: -1, lastInteractionAt: -1, _id: -1 });
  // Funnel block filter, deal stage filter, status filter ("delete unsubscribed").
  schema.index({ projectId: 1, funnelBlockId: 1 });
  schema.index({ projectId: 1, dealStage: 1 });
  schema.index({ projectId: 1, status: 1 });
  // UTM filter (first touch source is the usual one).
  schema.index({ projectId: 1, "firstUtm.source": 1, "firstUtm.campaign": 1 });
  // StreamContacts and mass actions walk a selection in _id order.
  schema.index({ projectId: 1, _id: 1 });
  return schema;
}

export type ContactModel = Model<ContactDoc>;

export const contactModel = (connection: Connection): ContactModel => connection.model<ContactDoc>("Contact", contactSchema());

/**
 * A query on the contacts collection as the driver takes it (the service talks to the driver directly). The
 * driver's own Filter type assumes ObjectId ids; ours are strings, so queries are typed loosely here and built
 * only by filters/contact-query.ts and its neighbours.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ContactQuery = { [field: string]: any };
