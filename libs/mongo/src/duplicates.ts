import type { mongo } from "mongoose";

/** True for a write refused because its _id (or another unique key) is already taken. */
export const isDuplicateKey = (err: unknown): boolean => (err as { code?: number } | undefined)?.code === 11000;

/** True for a bulk write whose every failed operation met an existing key (and nothing else went wrong). */
export function onlyDuplicateKeys(err: unknown): boolean {
  const writeErrors = (err as { writeErrors?: { code?: number }[] }).writeErrors ?? [];
  return isDuplicateKey(err) && writeErrors.every((w) => w.code === 11000);
}

/**
 * Inserts documents whose _ids are derived from their cause, so a redone insert skips what is already there and
 * fails only for other errors.
 */
export async function insertManyIgnoringDuplicates(collection: mongo.Collection, docs: mongo.Document[]): Promise<void> {
  if (docs.length === 0) return;
  try {
    await collection.insertMany(docs, { ordered: false });
  } catch (err) {
    if (!onlyDuplicateKeys(err)) throw err;
  }
}
