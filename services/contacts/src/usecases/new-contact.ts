import { insertManyIgnoringDuplicates, isDuplicateKey } from "@chatcrm/mongo";
import { createHash } from "node:crypto";
import type { ContactDoc, ContactModel, StatusName, UtmDoc } from "../store/contact-document";
import { clientIdKey, identityId, type IdentityDoc, type SupportModels } from "../store/support-models";

export interface NewContact {
  projectId: string;
  contactId: string;
  messenger: string;
  channelId: string;
  messengerUserId: string;
  profile?: Partial<Pick<ContactDoc, "firstName" | "lastName" | "username" | "avatarUrl" | "profileUrl" | "language" | "phone" | "email">>;
  at: Date;
  utm?: UtmDoc | null;
  status?: StatusName;
  lists?: string[];
}

/**
 * A contact id derived from what created it (an inbound message id, an import line), so a redelivered message or
 * a retried import recreates the same id instead of a second contact.
 */
export const derivedContactId = (projectId: string, cause: string) => createHash("sha256").update(`${projectId}|${cause}`).digest("hex").slice(0, 24);

/**
 * Claims the next client id of a project for a contact: short, numeric, unique in the project, never reused.
 * The counter's $inc proposes a number and the client_ids entry (unique _id) is what makes it ours: FerretDB 1.24
 * does not keep a concurrent $inc atomic, so a proposal can repeat there; the claim then fails and we draw again.
 */
export async function claimClientId(support: SupportModels, projectId: string, contactId: string): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    let seq: number;
    try {
      const counter = await support.counters.collection.findOneAndUpdate({ _id: projectId as never }, { $inc: { seq: 1 } }, { upsert: true, returnDocument: "after" });
      seq = (counter as unknown as { seq: number }).seq;
    } catch (err) {
      if (isDuplicateKey(err)) continue;
      throw err;
    }
    try {
      await support.clientIds.collection.insertOne({ _id: clientIdKey(projectId, seq), contactId } as never);
      return seq;
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
  }
  throw new Error(`could not claim a client id in project ${projectId}`);
}

export function newContactDoc(c: NewContact, clientId: number): ContactDoc {
  const p = c.profile ?? {};
  const first = p.firstName ?? "";
  const last = p.lastName ?? "";
  return {
    _id: c.contactId,
    projectId: c.projectId,
    clientId,
    clientIdText: String(clientId),
    messenger: c.messenger,
    channelId: c.channelId,
    messengerUserId: c.messengerUserId,
    firstName: first,
    lastName: last,
    displayName: [first, last].filter(Boolean).join(" ") || p.username || "",
    username: p.username ?? "",
    avatarUrl: p.avatarUrl ?? "",
    profileUrl: p.profileUrl ?? "",
    phone: p.phone ?? "",
    email: p.email ?? "",
    language: p.language ?? "",
    freeText: "",
    firstInteractionAt: null,
    lastInteractionAt: c.at,
    lastInboundAt: null,
    createdAt: c.at,
    updatedAt: c.at,
    status: c.status ?? "subscribed",
    variables: [],
    varNames: [],
    varPairs: [],
    firstUtm: c.utm ?? null,
    lastUtm: c.utm ?? null,
    tags: [],
    lists: c.lists ?? [],
    operatorId: "",
    funnel: null,
    funnelBlockId: "",
    funnelHistory: [],
    dealStage: "",
    unread: false,
    unreadCount: 0,
    pinned: false,
    lastMessage: null,
    linkedContactIds: [],
    recentInbound: [],
    recentCommentIds: [],
    outbox: [],
    rev: 0,
  };
}

/**
 * Stores a new contact (its client id already claimed) with its "created" timeline line. Returns the stored
 * contact and whether this call created it; a redone creation (same derived id) gives back the claim it made,
 * finishes what the first attempt may not have reached, and returns the contact as it is.
 */
export async function insertContact(contacts: ContactModel, support: SupportModels, doc: ContactDoc, actor: string): Promise<{ contact: ContactDoc; created: boolean }> {
  let contact = doc;
  let created = true;
  try {
    await contacts.collection.insertOne(doc as never);
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    const existing = (await contacts.collection.findOne({ _id: doc._id as never })) as ContactDoc | null;
    if (!existing) throw err;
    contact = existing;
    created = false;
    if (existing.clientId !== doc.clientId) await support.clientIds.collection.deleteOne({ _id: clientIdKey(doc.projectId, doc.clientId) as never });
    await support.clientIds.collection.updateOne({ _id: clientIdKey(contact.projectId, contact.clientId) as never }, { $set: { contactId: contact._id } }, { upsert: true });
  }
  await insertManyIgnoringDuplicates(support.timeline.collection, [
    { _id: `${contact._id}:created`, projectId: contact.projectId, contactId: contact._id, kind: "created", subject: contact.messenger, oldValue: "", newValue: contact.channelId, actor, at: contact.createdAt },
  ]);
  return { contact, created };
}

export type IdentityContact = { kind: "created"; contact: ContactDoc } | { kind: "exists"; contactId: string } | { kind: "blacklisted" } | { kind: "deleted" };

/**
 * The contact for a channel identity that may have none yet (an import line, an operator's first message to a new
 * number): the identity is claimed for a contact id derived from `cause`, and the contact is created when the claim
 * is ours. A deleted identity is left deleted (a late cause does not resurrect it); a blacklisted one stays out.
 */
export async function contactForIdentity(
  store: { contacts: ContactModel; support: SupportModels },
  c: Omit<NewContact, "contactId"> & { cause: string; actor: string },
): Promise<IdentityContact> {
  const key = identityId(c.projectId, c.channelId, c.messengerUserId);
  const candidate = derivedContactId(c.projectId, `${c.cause}|${key}`);
  const identity = (await store.support.identities.collection.findOneAndUpdate(
    { _id: key as never },
    { $setOnInsert: { projectId: c.projectId, contactId: candidate, deletedAt: null, blacklisted: false } },
    { upsert: true, returnDocument: "after" },
  )) as IdentityDoc | null;
  if (identity?.blacklisted) return { kind: "blacklisted" };
  if (identity?.deletedAt) return { kind: "deleted" };
  if (identity && identity.contactId !== candidate) return { kind: "exists", contactId: identity.contactId };
  const { cause: _cause, actor, ...fields } = c;
  const doc = newContactDoc({ ...fields, contactId: candidate }, await claimClientId(store.support, c.projectId, candidate));
  const result = await insertContact(store.contacts, store.support, doc, actor);
  return result.created ? { kind: "created", contact: result.contact } : { kind: "exists", contactId: result.contact._id };
}
