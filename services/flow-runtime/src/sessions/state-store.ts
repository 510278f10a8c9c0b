import { storedBytes } from "@chatcrm/mongo";
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
  kind: "contacts" | "send" | "integration" | "timer" | "salesPlan";
  /** contacts: the ContactsService method (or "markUnread"). */
  method?: string;
  /** The request as protobuf binary (contacts, send, integration). */
  payload?: Uint8Array;
  /** timer: when, for which session, why. */
  dueAtMs?: number;
  sessionId?: string;
  purpose?: number;
  /** salesPlan: the plan's name. */
  plan?: string;
}

/**
 * Everything the runtime knows about one contact: its sessions, the ids of the events it applied lately (so a
 * redelivered event changes nothing) and the effects of its last step until they are done. One document per
 * contact keeps a step atomic without transactions; `rev` makes concurrent writers (another replica) retry.
 */
export interface ContactStateDoc {
  _id: string;
  projectId: string;
  contactId: string;
  rev: number;
  sessions: SessionRecord[];
  recent: string[];
  pending: EffectRecord[];
  hasPending: boolean;
  updatedAt: Date;
}

export class StateConflict extends Error {}

/** Event ids remembered per contact for deduplication; Kafka redelivers within a few batches, not hundreds. */
const RECENT_EVENTS = 200;

export function stateModel(connection: Connection) {
  const session = new Schema<SessionRecord>(
    { id: String, flowId: String, version: Number, blockId: String, wait: String, deadlineMs: Number, timerId: String, requestId: String, invalidAnswers: Number, startedAt: Date },
    { _id: false },
  );
  const effect = new Schema<EffectRecord>({ id: String, kind: String, method: String, payload: Buffer, dueAtMs: Number, sessionId: String, purpose: Number, plan: String }, { _id: false });
  const schema = new Schema<ContactStateDoc>(
    {
      _id: String,
      projectId: { type: String, required: true },
      contactId: String,
      rev: Number,
      sessions: [session],
      recent: [String],
      pending: [effect],
      hasPending: Boolean,
      updatedAt: Date,
    },
    { versionKey: false },
  );
  // The effect relay: contacts whose last step's effects may not be done.
  schema.index({ hasPending: 1, updatedAt: 1 });
  return connection.model<ContactStateDoc>("ContactState", schema, "contact_states");
}

export const stateId = (projectId: string, contactId: string) => `${projectId}:${contactId}`;

export class StateStore {
  constructor(private readonly model: Model<ContactStateDoc>) {}

  async load(projectId: string, contactId: string): Promise<ContactStateDoc> {
    const doc = await this.model.findOne({ _id: stateId(projectId, contactId), projectId }).lean();
    return doc
      ? { ...doc, sessions: doc.sessions ?? [], recent: doc.recent ?? [], pending: (doc.pending ?? []).map((e) => ({ ...e, payload: e.payload === undefined ? undefined : storedBytes(e.payload) })) }
      : { _id: stateId(projectId, contactId), projectId, contactId, rev: 0, sessions: [], recent: [], pending: [], hasPending: false, updatedAt: new Date() };
  }

  /** Writes the document if nobody wrote it since it was loaded; throws StateConflict otherwise. */
  async save(doc: ContactStateDoc, eventId: string | undefined): Promise<ContactStateDoc> {
    const recent = eventId ? [...doc.recent.filter((id) => id !== eventId), eventId].slice(-RECENT_EVENTS) : doc.recent;
    const next: ContactStateDoc = { ...doc, rev: doc.rev + 1, recent, hasPending: doc.pending.length > 0, updatedAt: new Date() };
    if (doc.rev === 0) {
      try {
        await this.model.collection.insertOne(next as never);
      } catch (err) {
        if ((err as { code?: number }).code === 11000) throw new StateConflict();
        throw err;
      }
      return next;
    }
    const { _id, ...fields } = next;
    const res = await this.model.collection.updateOne({ _id: _id as never, rev: doc.rev }, { $set: fields });
    if (res.matchedCount === 0) throw new StateConflict();
    return next;
  }

  /** The effects are done: drops them unless someone wrote since (then they moved on and own what is there). */
  async clearPending(doc: ContactStateDoc): Promise<void> {
    await this.model.collection.updateOne({ _id: doc._id as never, rev: doc.rev }, { $set: { pending: [], hasPending: false, rev: doc.rev + 1, updatedAt: new Date() } });
  }

  /** Contacts whose effects have waited longer than `olderThanMs`: a step that crashed before finishing them. */
  async stranded(olderThanMs: number, limit = 200): Promise<{ projectId: string; contactId: string }[]> {
    return this.model
      .find({ hasPending: true, updatedAt: { $lt: new Date(Date.now() - olderThanMs) } }, { projectId: 1, contactId: 1 })
      .limit(limit)
      .lean();
  }
}
