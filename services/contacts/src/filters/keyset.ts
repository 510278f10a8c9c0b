import { ContactSort } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { invalidArgument } from "@chatcrm/grpc";
import type { ContactDoc, ContactQuery } from "../store/contact-document";

type SortKey = "lastInteractionAt" | "createdAt";

/** The order of a contact list: pinned first (seed 002), then the chosen time descending, then _id as tie-break. */
export function sortOf(sort: ContactSort): { key: SortKey; spec: Record<string, -1> } {
  if (sort !== ContactSort.UNSPECIFIED && sort !== ContactSort.LAST_INTERACTION && sort !== ContactSort.CREATED)
    throw invalidArgument("sort", `${sort as number} is not a sort order (1 = LAST_INTERACTION, 2 = CREATED)`);
  const key: SortKey = sort === ContactSort.CREATED ? "createdAt" : "lastInteractionAt";
  return { key, spec: { pinned: -1, [key]: -1, _id: -1 } };
}

/** The largest time a JavaScript Date holds; a cursor past it was not made here. */
const MAX_DATE_MS = 8.64e15;

interface Position {
  s: SortKey;
  p: boolean;
  t: number;
  i: string;
}

/** An opaque cursor naming the last contact of a page. */
export function encodeCursor(key: SortKey, last: ContactDoc): string {
  const position: Position = { s: key, p: !!last.pinned, t: (last[key] ?? new Date(0)).getTime(), i: last._id };
  return Buffer.from(JSON.stringify(position)).toString("base64url");
}

/**
 * The condition "after this cursor" in (pinned desc, key desc, _id desc) order: a keyset, so page 1,000 costs
 * what page 1 costs, and contacts that arrive meanwhile do not shift the pages.
 */
export function afterCursor(cursor: string, key: SortKey): ContactQuery | undefined {
  if (!cursor) return undefined;
  let position: Position;
  try {
    position = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as Position;
  } catch {
    throw invalidArgument("cursor", "is not a cursor this service returned");
  }
  if (typeof position?.i !== "string" || typeof position.p !== "boolean" || !Number.isFinite(position.t) || Math.abs(position.t) > MAX_DATE_MS) throw invalidArgument("cursor", "is not a cursor this service returned");
  if (position.s !== key) throw invalidArgument("cursor", "belongs to a list in another sort order");
  const t = new Date(position.t);
  return {
    $or: [
      ...(position.p ? [{ pinned: false }] : []),
      { pinned: position.p, [key]: { $lt: t } },
      { pinned: position.p, [key]: t, _id: { $lt: position.i } },
    ],
  };
}
