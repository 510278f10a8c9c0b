import { createHash } from "node:crypto";
import { Coalescer } from "@chatcrm/kafka";
import { onlyDuplicateKeys, storedBytes } from "@chatcrm/mongo";
import { Schema, type Connection, type Model } from "mongoose";

/** What a session waits for; "" while it runs through blocks within one step. */
export type WaitKind = "" | "answer" | "delay" | "integration";

/** One contact's run through one flow version. */
export interface SessionRecord {
  id: string;
  flowId: string;
  version: number;
  blockId: string;
  wait: WaitKind;
  /** When the wait ends (ms since the epoch); 0 for none. */
  deadlineMs: number;
  /** The timer the wait is on; a timer that fires for any other id is stale and ignored. */
  timerId: string;
  /** The integration request the wait is on; a result for any other id is ignored. */
  requestId: string;
  invalidAnswers: number;
  startedAt: Date;
}

/** Something a step decided to do outside this document, executed after the document is saved (an outbox). */
export interface EffectRecord {
  id: string;
  kind: "contacts" | "send" | "integration" | "timer" | "salesPlan" | "funnel";
  /** contacts: the ContactsService method (or "markUnread"). */
  method?: string;
  /** The request as protobuf binary (contacts, send, integration). */
  payload?: Uint8Array;
  /** send: the record's Kafka key, so the stored bytes are published as they are (absent in older revisions). */
  key?: string;
  /** timer: when, for which session, why. */
  dueAtMs?: number;
  sessionId?: string;
  purpose?: number;
  /** salesPlan: the plan's name. */
  plan?: string;
  /** funnel: the block a session came to rest on, and when. */
  flowId?: string;
  blockId?: string;
  atMs?: number;
}

/**
 * Everything the runtime knows about one contact: its sessions, the ids of the events it applied lately (so a
 * redelivered event changes nothing) and the effects of its last steps until they are done (an outbox).
 */
export interface ContactState {
  /** `<projectId>:<contactId>`. */
  key: string;
  projectId: string;
  contactId: string;
  /** The stored revision this state is (0: never stored). */
  rev: number;
  sessions: SessionRecord[];
  /** Marks (see `eventMark`) of the events applied lately, oldest first. */
  recent: string[];
  pending: EffectRecord[];
  updatedAt: Date;
}

/**
 * One stored revision of a contact's state. Revisions are only ever inserted (`_id` = key#rev), never updated: an
 * insert is the one write FerretDB does without reading the collection, and the unique `_id` makes it a
 * compare-and-set (a second writer of the same revision gets a duplicate key and retries on fresh state). The
 * newest revision is the state; older ones are deleted once they are older than the retention.
 *
 * Only what a query filters on is a field; the rest is one JSON blob (`body`). FerretDB's cost per document grows
 * with its fields (it converts each one, on every insert and on every document a query scans): the blob halved
 * an insert's cost and cut a scan's to a third in a probe against the harness. Documents written before the blob
 * (sessions, recent and pending as fields) are still read.
 */
export interface StateRevisionDoc {
  _id: string;
  key: string;
  projectId: string;
  contactId: string;
  rev: number;
  hasPending: boolean;
  updatedAt: Date;
  body?: Uint8Array;
  sessions?: SessionRecord[];
  recent?: string[];
  pending?: EffectRecord[];
}

/** The part of a state no query looks into, as stored in `body`. */
interface StateBody {
  sessions: (Omit<SessionRecord, "startedAt"> & { startedAt: string })[];
  recent: string[];
  pending: (Omit<EffectRecord, "payload"> & { payload?: string })[];
}

/** Event ids remembered per contact for deduplication; Kafka redelivers within a few batches, not hundreds. */
const RECENT_EVENTS = 16;

/** Revisions written by one insert at most. */
const MAX_INSERT = 2_000;
/** Contacts read by one query at most (FerretDB compares every document with every listed key). */
const MAX_LOAD = 2_000;

export function stateModel(connection: Connection) {
  const session = new Schema<SessionRecord>(
    { id: String, flowId: String, version: Number, blockId: String, wait: String, deadlineMs: Number, timerId: String, requestId: String, invalidAnswers: Number, startedAt: Date },
    { _id: false },
  );
  const effect = new Schema<EffectRecord>(
    { id: String, kind: String, method: String, payload: Buffer, dueAtMs: Number, sessionId: String, purpose: Number, plan: String, flowId: String, blockId: String, atMs: Number },
    { _id: false },
  );
  const schema = new Schema<StateRevisionDoc>(
    {
      _id: String,
      key: String,
      projectId: { type: String, required: true },
      contactId: String,
      rev: Number,
      hasPending: Boolean,
      updatedAt: Date,
      body: Buffer,
      // Read from revisions stored before `body`; never written now.
      sessions: [session],
      recent: [String],
      pending: [effect],
    },
    { versionKey: false },
  );
  // Loading a contact: its revisions, newest first.
  schema.index({ key: 1, rev: -1 });
  // The effect relay: revisions whose step's effects may not be done, walked in (updatedAt, _id) order.
  schema.index({ hasPending: 1, updatedAt: 1, _id: 1 });
  return connection.model<StateRevisionDoc>("ContactState", schema, "contact_states");
}

export const stateKey = (projectId: string, contactId: string) => `${projectId}:${contactId}`;
const revisionId = (key: string, rev: number) => `${key}#${rev}`;

export const emptyState = (projectId: string, contactId: string): ContactState => ({
  key: stateKey(projectId, contactId),
  projectId,
  contactId,
  rev: 0,
  sessions: [],
  recent: [],
  pending: [],
  updatedAt: new Date(),
});

/**
 * What a state remembers of an event id: 72 bits of its hash. Ids are long (channel, chat and message ids, UUIDs)
 * and sixteen of them were most of a stored state. A new event taken for one of the sixteen remembered (and so
 * dropped as a redelivery) has a chance of about 2^-68.
 */
export const eventMark = (eventId: string) => createHash("sha1").update(eventId).digest("base64url").slice(0, 12);

/** Whether the state has applied this event already (Kafka redelivered it). */
export const hasApplied = (state: ContactState, eventId: string) => state.recent.includes(eventMark(eventId));

/** The state after a step: the next revision, with the step's event remembered. */
export function nextState(state: ContactState, change: Pick<ContactState, "sessions" | "pending">, eventId: string | undefined): ContactState {
  const mark = eventId === undefined ? undefined : eventMark(eventId);
  const recent = mark ? [...state.recent.filter((m) => m !== mark), mark].slice(-RECENT_EVENTS) : state.recent;
  return { ...state, ...change, rev: state.rev + 1, recent, updatedAt: new Date() };
}

export interface StoreSettings {
  /** How long a superseded revision stays: a writer holding a state older than this could write past a newer one. */
  retentionMs: number;
}

/** A point in the relay's walk over revisions: (updatedAt, _id) of the last one it handled. */
export interface RelayPosition {
  at: Date;
  id: string;
}

/** What a revision says without its body. */
export interface RevisionHead {
  key: string;
  rev: number;
  hasPending: boolean;
  updatedAt: Date;
}

/** A stored revision that holds effects, as the relay sees it. */
export interface StrandedRevision {
  projectId: string;
  contactId: string;
  rev: number;
}

export class StateStore {
  /** When `compact` may run again (see there). */
  private compactAgainAt = 0;
  /** Superseded revisions and when they may go, oldest first. */
  private superseded: { id: string; after: number }[] = [];
  private readonly inserts = new Coalescer<ContactState, boolean>((states) => this.insert(states), MAX_INSERT);
  private readonly loads = new Coalescer<{ projectId: string; contactId: string }, ContactState>((contacts) => this.query(contacts), MAX_LOAD);

  constructor(
    private readonly model: Model<StateRevisionDoc>,
    private readonly settings: StoreSettings,
  ) {}

  async load(projectId: string, contactId: string): Promise<ContactState> {
    return (await this.loadMany([{ projectId, contactId }])).get(stateKey(projectId, contactId))!;
  }

  /**
   * The newest revision of each contact's state (an empty state for a contact never stored). Loads asked for at the
   * same moment (the partitions' batches, the relay) share one query: on FerretDB every query scans the collection.
   */
  async loadMany(contacts: { projectId: string; contactId: string }[]): Promise<Map<string, ContactState>> {
    const states = await Promise.all(contacts.map((c) => this.loads.add(c)));
    return new Map(states.map((s) => [s.key, s]));
  }

  /**
   * Each contact's newest stored revision without its body (none for a contact never stored): enough for the relay
   * to tell whether anything is left to do. Older revisions seen on the way are due for compaction. Once `stopping`
   * aborts no further query starts, and the answer is partial.
   */
  async heads(contacts: { projectId: string; contactId: string }[], stopping?: AbortSignal): Promise<Map<string, RevisionHead>> {
    const heads = new Map<string, RevisionHead>();
    for (let i = 0; i < contacts.length && !stopping?.aborted; i += MAX_LOAD) {
      const chunk = contacts.slice(i, i + MAX_LOAD);
      const projects = [...new Set(chunk.map((c) => c.projectId))];
      const keys = [...new Set(chunk.map((c) => stateKey(c.projectId, c.contactId)))];
      const docs = await this.model.find({ projectId: { $in: projects }, key: { $in: keys } }, { key: 1, rev: 1, hasPending: 1, updatedAt: 1 }).lean<RevisionHead[]>();
      const now = Date.now();
      for (const doc of docs.sort((a, b) => a.rev - b.rev)) {
        const older = heads.get(doc.key);
        if (older) this.supersede(revisionId(older.key, older.rev), now);
        heads.set(doc.key, { key: doc.key, rev: doc.rev, hasPending: doc.hasPending, updatedAt: doc.updatedAt });
      }
    }
    return heads;
  }

  /**
   * The newest revisions' heads first, then only those revisions whole: a contact's superseded revisions stay until
   * compaction deletes them, and when it falls behind (FerretDB, under load) reading them all with their bodies made
   * one load after a rebalance fetch hundreds of megabytes. A newest revision that does not read fails only the loads
   * of its own contact (the Coalescer rejects an Error's caller alone): the query is shared with other partitions'
   * batches, and their contacts must go on (the failing event ends in the dead-letter topic).
   */
  private async query(contacts: { projectId: string; contactId: string }[]): Promise<(ContactState | UnreadableState)[]> {
    const states = new Map<string, ContactState | UnreadableState>(contacts.map((c) => [stateKey(c.projectId, c.contactId), emptyState(c.projectId, c.contactId)]));
    const heads = [...(await this.heads(contacts)).values()];
    if (heads.length > 0) {
      const projects = [...new Set(contacts.map((c) => c.projectId))];
      const docs = await this.model.find({ projectId: { $in: projects }, _id: { $in: heads.map((h) => revisionId(h.key, h.rev)) } }).lean();
      const read = new Set<string>();
      for (const doc of docs) {
        states.set(doc.key, readRevisionOrWhyNot(doc));
        read.add(doc.key);
      }
      // Only a revision superseded longer than the retention is deleted, so a head read a moment ago is still there.
      for (const h of heads) if (!read.has(h.key)) states.set(h.key, new UnreadableState(h.key, h.rev, new Error("the revision vanished between two reads")));
    }
    return contacts.map((c) => states.get(stateKey(c.projectId, c.contactId))!);
  }

  /**
   * Stores each state as its revision; returns the keys whose revision someone else stored first (their state
   * in memory is stale: load it again and redo). Anything else that fails throws, and nothing is taken as stored.
   * Saves made at the same moment (the partitions' batches) share one insert.
   */
  async saveMany(states: ContactState[]): Promise<Set<string>> {
    const taken = await Promise.all(states.map((s) => this.inserts.add(s)));
    const conflicts = new Set(states.filter((_, i) => taken[i]).map((s) => s.key));
    const now = Date.now();
    for (const s of states) if (s.rev > 1 && !conflicts.has(s.key)) this.supersede(revisionId(s.key, s.rev - 1), now);
    return conflicts;
  }

  /** One insert for all; true for each revision that was already there. */
  private async insert(states: ContactState[]): Promise<boolean[]> {
    const docs = states.map(revisionDoc);
    try {
      await this.model.collection.insertMany(docs as never[], { ordered: false });
      return states.map(() => false);
    } catch (err) {
      if (!onlyDuplicateKeys(err)) throw err;
      const writeErrors = (err as { writeErrors?: { index: number }[] }).writeErrors ?? [];
      // Without per-document errors nobody knows which went in: all are redone from the store.
      if (writeErrors.length === 0) return states.map(() => true);
      const taken = new Set(writeErrors.map((w) => w.index));
      return states.map((_, i) => taken.has(i));
    }
  }

  private supersede(id: string, now: number) {
    this.superseded.push({ id, after: now + this.settings.retentionMs });
  }

  /**
   * Deletes up to `limit` superseded revisions past the retention (one query); returns how many. FerretDB answers
   * `$in` by scanning the collection and comparing every document with every listed id: a pass cost it 20-30 s of
   * CPU in the benchmark, back to back. So after a pass of d ms the next waits 9·d: compaction keeps the database
   * busy a tenth of the time at most (on MongoDB a pass takes milliseconds and this never bites).
   */
  async compact(limit: number): Promise<number> {
    const now = Date.now();
    if (now < this.compactAgainAt) return 0;
    let n = 0;
    while (n < this.superseded.length && n < limit && this.superseded[n]!.after <= now) n++;
    if (n === 0) return 0;
    const due = this.superseded.slice(0, n).map((s) => s.id);
    await this.model.collection.deleteMany({ _id: { $in: due as never[] } });
    this.superseded = this.superseded.slice(n);
    const end = Date.now();
    this.compactAgainAt = end + 9 * (end - now);
    return n;
  }

  /**
   * The revisions after `from`, oldest first, whose effects have waited longer than `olderThanMs`: maybe a step that
   * crashed before finishing them. Most are superseded (every revision is stored with its step's effects), so the
   * relay walks forward from where its last sweep ended (`last`) instead of reading the same oldest ones again.
   */
  async stranded(olderThanMs: number, from: RelayPosition, limit = 100_000): Promise<{ revisions: StrandedRevision[]; last: RelayPosition; more: boolean }> {
    const { at, id } = from;
    const docs = await this.model
      .find(
        { hasPending: true, $and: [{ updatedAt: { $lt: new Date(Date.now() - olderThanMs) } }, { $or: [{ updatedAt: { $gt: at } }, { updatedAt: at, _id: { $gt: id } }] }] },
        { projectId: 1, contactId: 1, rev: 1, updatedAt: 1 },
      )
      .sort({ updatedAt: 1, _id: 1 })
      .limit(limit)
      .lean();
    const last = docs.at(-1);
    return {
      revisions: docs.map((d) => ({ projectId: d.projectId, contactId: d.contactId, rev: d.rev })),
      last: last ? { at: last.updatedAt, id: last._id } : from,
      more: docs.length === limit,
    };
  }
}

function revisionDoc(s: ContactState): StateRevisionDoc {
  const body: StateBody = {
    sessions: s.sessions.map((x) => ({ ...x, startedAt: new Date(x.startedAt).toISOString() })),
    recent: s.recent,
    pending: s.pending.map((e) => ({ ...e, payload: e.payload === undefined ? undefined : Buffer.from(e.payload).toString("base64") })),
  };
  return {
    _id: revisionId(s.key, s.rev),
    key: s.key,
    projectId: s.projectId,
    contactId: s.contactId,
    rev: s.rev,
    hasPending: s.pending.length > 0,
    updatedAt: s.updatedAt,
    body: Buffer.from(JSON.stringify(body)),
  };
}

/** A stored revision that cannot be read back (a body that is not the JSON this code writes). */
export class UnreadableState extends Error {
  constructor(
    readonly key: string,
    readonly rev: number,
    cause: unknown,
  ) {
    super(`the stored state of contact ${key} (revision ${rev}) cannot be read: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

function readRevisionOrWhyNot(doc: StateRevisionDoc): ContactState | UnreadableState {
  try {
    return readRevision(doc);
  } catch (err) {
    return new UnreadableState(doc.key, doc.rev, err);
  }
}

function readRevision(doc: StateRevisionDoc): ContactState {
  const head = { key: doc.key, projectId: doc.projectId, contactId: doc.contactId, rev: doc.rev, updatedAt: doc.updatedAt };
  if (doc.body === undefined) {
    const recent = (doc.recent ?? []).map(eventMark);
    return { ...head, sessions: doc.sessions ?? [], recent, pending: (doc.pending ?? []).map((e) => ({ ...e, payload: e.payload === undefined ? undefined : storedBytes(e.payload) })) };
  }
  const body = JSON.parse(Buffer.from(storedBytes(doc.body)).toString("utf8")) as StateBody;
  return {
    ...head,
    sessions: body.sessions.map((x) => ({ ...x, startedAt: new Date(x.startedAt) })),
    recent: body.recent,
    pending: body.pending.map((e) => ({ ...e, payload: e.payload === undefined ? undefined : new Uint8Array(Buffer.from(e.payload, "base64")) })),
  };
}
