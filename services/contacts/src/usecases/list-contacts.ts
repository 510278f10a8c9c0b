import type { ContactFilter, ContactSort, ContactTab } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { ContactTab as Tab } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { invalidArgument, type Viewer } from "@chatcrm/grpc";
import { scopeToProject } from "@chatcrm/mongo";
import { contactQuery } from "../filters/contact-query";
import { afterCursor, encodeCursor, sortOf } from "../filters/keyset";
import type { ContactDoc, ContactModel, ContactQuery } from "../store/contact-document";

const DEFAULT_PAGE = 50;
const MAX_PAGE = 200;


// The card list never carries the outbox or the redelivery guard.
const LIST_PROJECTION = { outbox: 0, recentInbound: 0, recentCommentIds: 0, varNames: 0, varPairs: 0 };

export interface ListRequest {
  filter?: ContactFilter;
  tab: ContactTab;
  sort: ContactSort;
  pageSize: number;
  cursor: string;
  skipTotal: boolean;
}

export async function listContacts(contacts: ContactModel, projectId: string, viewer: Viewer, req: ListRequest) {
  if (req.pageSize < 0 || req.pageSize > MAX_PAGE) throw invalidArgument("page_size", `must be between 1 and ${MAX_PAGE} (0 means ${DEFAULT_PAGE})`);
  const limit = req.pageSize || DEFAULT_PAGE;
  const { key, spec } = sortOf(req.sort);
  const base = scopeToProject(projectId, contactQuery(req.filter, req.tab, viewer));
  const after = afterCursor(req.cursor, key);
  const pageQuery = after ? { $and: [base, after] } : base;
  const [page, total] = await Promise.all([
    contacts.collection.find(pageQuery).sort(spec).limit(limit + 1).project(LIST_PROJECTION).toArray() as Promise<unknown[]> as Promise<ContactDoc[]>,
    req.skipTotal ? Promise.resolve(0) : contacts.collection.countDocuments(base),
  ]);
  const hasMore = page.length > limit;
  const items = hasMore ? page.slice(0, limit) : page;
  return { items, nextCursor: hasMore ? encodeCursor(key, items[items.length - 1]!) : "", total };
}

export async function countTabs(contacts: ContactModel, projectId: string, viewer: Viewer, filter: ContactFilter | undefined) {
  const count = (tab: ContactTab) => contacts.collection.countDocuments(scopeToProject(projectId, contactQuery(filter, tab, viewer)));
  // Mine is relative to an operator; for anyone else it is empty (and Others' is every assigned client).
  const [all, unanswered, mine, others, free] = await Promise.all([count(Tab.ALL), count(Tab.UNANSWERED), viewer.operatorId ? count(Tab.MINE) : 0, count(Tab.OTHERS), count(Tab.FREE)]);
  return { all: BigInt(all), unanswered: BigInt(unanswered), mine: BigInt(mine), others: BigInt(others), free: BigInt(free) };
}

/** Seed 002: an admin (or a service) sees the whole project's unread, an operator their own clients'. */
export async function unreadTotals(contacts: ContactModel, projectId: string, viewer: Viewer) {
  const match = scopeToProject(projectId, viewer.role === "operator" ? { unread: true, operatorId: viewer.operatorId } : { unread: true });
  // Grouped by the count itself and summed here: FerretDB 1.24 answers $sum over a field path with 0, and the
  // distinct unread counts are few, so this costs MongoDB nothing extra.
  const rows = await contacts.collection.aggregate<{ _id: number; contacts: number }>([{ $match: match }, { $group: { _id: "$unreadCount", contacts: { $sum: 1 } } }]).toArray();
  const unreadContacts = rows.reduce((n, r) => n + r.contacts, 0);
  const unreadMessages = rows.reduce((n, r) => n + r.contacts * (Number(r._id) || 0), 0);
  return { unreadContacts: BigInt(unreadContacts), unreadMessages: BigInt(unreadMessages) };
}

/** Every contact matching a filter, in _id order, read in batches through one cursor. */
export async function* streamContacts(contacts: ContactModel, query: ContactQuery, signal?: AbortSignal): AsyncGenerator<ContactDoc> {
  const cursor = contacts.collection.find(query).sort({ _id: 1 }).project(LIST_PROJECTION).batchSize(500);
  try {
    for await (const doc of cursor) {
      if (signal?.aborted) return;
      yield doc as unknown as ContactDoc;
    }
  } finally {
    await cursor.close();
  }
}
