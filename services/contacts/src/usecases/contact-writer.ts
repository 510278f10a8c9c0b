import { insertManyIgnoringDuplicates } from "@chatcrm/mongo";
import { randomUUID } from "node:crypto";
import type { ContactRef } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { RpcError, Status } from "@chatcrm/grpc";
import type { EventPublisher } from "@chatcrm/kafka";
import type { Logger } from "@chatcrm/logging";
import { contactChanged, publishContactEvents } from "../events/contact-events";
import type { ContactDoc, OutboxEntry, TimelineInput } from "../store/contact-document";
import type { OutboxHintDoc } from "../store/support-models";
import type { ContactStore } from "./contact-store";

/** What a command decided to change: new field values, the proto names of the changed fields, timeline lines. */
export interface Change {
  set: Partial<ContactDoc>;
  changedFields: string[];
  timeline: Omit<TimelineInput, "actor">[];
}

const MAX_CONFLICT_RETRIES = 8;

/**
 * Command writes on one contact: read, decide, compare-and-set on `rev`, so concurrent commands never lose each
 * other's changes. The change event and its timeline lines are written into the contact's own outbox in the
 * same single-document update, then published and cleared; if the process dies in between, the relay
 * publishes them later. So an accepted command never loses its event, though an event may be published twice
 * (same event id; consumers deduplicate).
 */
export class ContactWriter {
  constructor(
    private readonly store: ContactStore,
    private readonly publisher: EventPublisher,
    private readonly logger: Logger,
  ) {}

  /** `known`: the card as just read (a batch read them together); a conflict reads it again. */
  async mutate(projectId: string, ref: ContactRef | undefined, actor: string, decide: (doc: ContactDoc) => Change | null, known?: ContactDoc): Promise<ContactDoc> {
    for (let attempt = 1; ; attempt++) {
      const doc = attempt === 1 && known ? known : await this.store.get(projectId, ref);
      const change = decide(doc);
      if (!change || change.changedFields.length === 0) return doc;
      const now = new Date();
      const entry: OutboxEntry = {
        eventId: randomUUID(),
        kind: "updated",
        changedFields: change.changedFields,
        at: now,
        timeline: change.timeline.map((t) => ({ ...t, actor })),
      };
      const outbox = [...(doc.outbox ?? []), entry];
      const set = { ...change.set, updatedAt: now, outbox };
      // Before the update, so a crash right after it still leaves the relay a pointer to this card.
      await this.store.support.outboxHints.collection.updateOne({ _id: doc._id as never }, { $set: { projectId, at: now } }, { upsert: true });
      const result = await this.store.contacts.collection.updateOne({ _id: doc._id as never, rev: doc.rev }, { $set: set, $inc: { rev: 1 } });
      if (result.matchedCount === 1) {
        const after: ContactDoc = { ...doc, ...set, rev: doc.rev + 1 };
        await this.flush(after).catch((err: unknown) => this.logger.warn({ err, contactId: doc._id }, "contact event left in the outbox for the relay"));
        return { ...after, outbox: [] };
      }
      if (attempt >= MAX_CONFLICT_RETRIES) throw new RpcError(Status.ABORTED, "the contact is being changed by many writers at once; try again");
    }
  }

  /** Publishes a contact's outbox (timeline first, then events) and clears it unless another write came since. */
  async flush(doc: ContactDoc): Promise<void> {
    const pending = doc.outbox ?? [];
    if (pending.length === 0) return;
    await insertManyIgnoringDuplicates(
      this.store.support.timeline.collection,
      pending.flatMap((e) => e.timeline.map((t, i) => ({ ...t, _id: `${e.eventId}:${i}`, projectId: doc.projectId, contactId: doc._id, at: e.at }))),
    );
    await publishContactEvents(
      this.publisher,
      pending.map((e) => contactChanged(doc, e.kind, e.eventId, e.changedFields, e.at)),
    );
    const published = new Set(pending.map((e) => e.eventId));
    // Another write may have appended to the outbox meanwhile: keep what it added, drop what went out.
    for (let current: ContactDoc | null = doc; current; ) {
      const rest = (current.outbox ?? []).filter((e) => !published.has(e.eventId));
      const res = await this.store.contacts.collection.updateOne({ _id: current._id as never, rev: current.rev }, { $set: { outbox: rest }, $inc: { rev: 1 } });
      if (res.matchedCount === 1) {
        // Only a hint no later writer has renewed: theirs still points at entries of their own.
        if (rest.length === 0) await this.store.support.outboxHints.collection.deleteOne({ _id: doc._id as never, at: { $lte: latest(pending) } });
        return;
      }
      current = await this.store.byId(doc.projectId, doc._id);
    }
  }

  /** Publishes outboxes left behind for longer than `olderThanMs` (by a crash or a Kafka outage); returns how many. */
  async relay(olderThanMs: number): Promise<number> {
    const hints = this.store.support.outboxHints.collection;
    const stuck = (await hints.find({ at: { $lte: new Date(Date.now() - olderThanMs) } }).limit(500).toArray()) as unknown as OutboxHintDoc[];
    let flushed = 0;
    for (const hint of stuck) {
      const doc = await this.store.byId(hint.projectId, hint._id);
      if (doc?.outbox?.length) {
        await this.flush(doc);
        flushed++;
      } else await hints.deleteOne({ _id: hint._id as never, at: hint.at });
    }
    return flushed;
  }
}

const latest = (entries: OutboxEntry[]) => new Date(Math.max(...entries.map((e) => e.at.getTime())));
