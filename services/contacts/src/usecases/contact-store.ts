import type { ContactRef } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { invalidArgument, notFound } from "@chatcrm/grpc";
import type { ContactDoc, ContactModel } from "../store/contact-document";
import { clientIdKey, type SupportModels } from "../store/support-models";

/** Reads of single contacts, always inside one project; every lookup is by _id. */
export class ContactStore {
  constructor(
    readonly contacts: ContactModel,
    readonly support: SupportModels,
  ) {}

  /** The contact a reference names, or NOT_FOUND, also for a contact of another project. */
  async get(projectId: string, ref: ContactRef | undefined, field = "contact"): Promise<ContactDoc> {
    const id = await this.resolve(projectId, ref, field);
    const doc = id ? await this.byId(projectId, id) : null;
    if (!doc) throw notFound("contact");
    return doc;
  }

  async resolve(projectId: string, ref: ContactRef | undefined, field = "contact"): Promise<string | undefined> {
    const r = ref?.ref;
    if (!r || r.case === undefined) throw invalidArgument(field, "name a contact by contact_id or client_id");
    if (r.case === "contactId") {
      if (!r.value.trim()) throw invalidArgument(`${field}.contact_id`, "is empty");
      return r.value.trim();
    }
    if (r.value <= 0n) throw invalidArgument(`${field}.client_id`, "must be a positive number");
    const entry = await this.support.clientIds.collection.findOne({ _id: clientIdKey(projectId, Number(r.value)) as never });
    return entry?.contactId as string | undefined;
  }

  /** Several of a project's cards by id in one query (absent ones are missing from the map). */
  async byIds(projectId: string, ids: string[]): Promise<Map<string, ContactDoc>> {
    if (ids.length === 0) return new Map();
    const docs = (await this.contacts.collection.find({ _id: { $in: ids as never[] }, projectId }).toArray()) as unknown as ContactDoc[];
    return new Map(docs.map((d) => [d._id, d]));
  }

  /** _id lookup, then the project check in code: a foreign contact is indistinguishable from a missing one. */
  async byId(projectId: string, id: string): Promise<ContactDoc | null> {
    const doc = (await this.contacts.collection.findOne({ _id: id as never })) as ContactDoc | null;
    return doc && doc.projectId === projectId ? doc : null;
  }
}
