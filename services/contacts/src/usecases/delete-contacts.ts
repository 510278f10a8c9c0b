import { bulkWriteInSlices } from "@chatcrm/mongo";
import type { EventPublisher } from "@chatcrm/kafka";
import { contactChanged, publishContactEvents } from "../events/contact-events";
import type { ContactDoc } from "../store/contact-document";
import { clientIdKey, identityId, type TombstoneDoc } from "../store/support-models";
import type { ContactStore } from "./contact-store";

/**
 * Irreversible deletion. The tombstone is written first and is the durable record of the intent; then the
 * identity is marked deleted (so late messages do not bring the contact back, and a blacklisted subscriber stays
 * out), the card, its client-id entry and its timeline go, the event is published and the tombstone marked done.
 * Every step is idempotent, so the relay finishes a deletion a crash interrupted by running it again.
 */
export class ContactDeleter {
  constructor(
    private readonly store: ContactStore,
    private readonly publisher: EventPublisher,
  ) {}

  async delete(docs: ContactDoc[], opts: { blacklist: boolean; actor: string }): Promise<void> {
    if (docs.length === 0) return;
    const now = new Date();
    const tombstones: TombstoneDoc[] = docs.map((d) => ({
      _id: d._id,
      projectId: d.projectId,
      clientId: d.clientId,
      identityId: identityId(d.projectId, d.channelId, d.messengerUserId),
      blacklisted: opts.blacklist,
      deletedAt: now,
      published: false,
      actor: opts.actor,
    }));
    await bulkWriteInSlices(
      this.store.support.tombstones.collection,
      tombstones.map((t) => ({ updateOne: { filter: { _id: t._id as never }, update: { $setOnInsert: t }, upsert: true } })),
    );
    await this.finish(tombstones);
  }

  async finish(tombstones: TombstoneDoc[]): Promise<void> {
    if (tombstones.length === 0) return;
    const { support, contacts } = this.store;
    await bulkWriteInSlices(
      support.identities.collection,
      tombstones.map((t) => ({
        updateOne: { filter: { _id: t.identityId as never }, update: { $set: { projectId: t.projectId, contactId: t._id, deletedAt: t.deletedAt, blacklisted: t.blacklisted } }, upsert: true },
      })),
    );
    await bulkWriteInSlices(contacts.collection, tombstones.map((t) => ({ deleteOne: { filter: { _id: t._id as never } } })));
    await bulkWriteInSlices(support.clientIds.collection, tombstones.map((t) => ({ deleteOne: { filter: { _id: clientIdKey(t.projectId, t.clientId) as never } } })));
    for (const projectId of new Set(tombstones.map((t) => t.projectId)))
      await support.timeline.collection.deleteMany({ projectId, contactId: { $in: tombstones.filter((t) => t.projectId === projectId).map((t) => t._id) } });
    await publishContactEvents(
      this.publisher,
      tombstones.map((t) => contactChanged({ _id: t._id, projectId: t.projectId }, "deleted", `deleted:${t._id}`, [], t.deletedAt)),
    );
    await bulkWriteInSlices(support.tombstones.collection, tombstones.map((t) => ({ updateOne: { filter: { _id: t._id as never }, update: { $set: { published: true } } } })));
  }

  /** Finishes deletions older than `olderThanMs` that a crash or an outage left half done; returns how many. */
  async relay(olderThanMs: number): Promise<number> {
    const stuck = (await this.store.support.tombstones.collection.find({ published: false, deletedAt: { $lte: new Date(Date.now() - olderThanMs) } }).limit(500).toArray()) as unknown as TombstoneDoc[];
    await this.finish(stuck);
    return stuck.length;
  }
}
