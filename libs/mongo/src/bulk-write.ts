import type { mongo } from "mongoose";
import { onlyDuplicateKeys } from "./duplicates";

/**
 * FerretDB 1.24 applies the first 99 statements of one update command and then stops answering on that database
 * (reproduced with 150 updateOne operations, ordered or not; 50 run fine), so large bulk writes are sent in
 * slices. On MongoDB the slices cost a few extra round trips per thousand operations.
 */
export const BULK_WRITE_SLICE = 50;

/**
 * Unordered bulk write in slices of BULK_WRITE_SLICE; does nothing for an empty list. `T` types the operations by
 * the stored document (string _ids included), which a mongoose model's untyped collection cannot carry.
 */
export async function bulkWriteInSlices<T extends mongo.Document = mongo.Document>(
  collection: mongo.Collection,
  operations: mongo.AnyBulkWriteOperation<T>[],
  options: { isStopping?: () => boolean; ignoreDuplicates?: boolean } = {},
): Promise<void> {
  const ops = operations as unknown as mongo.AnyBulkWriteOperation[];
  for (let i = 0; i < ops.length; i += BULK_WRITE_SLICE) {
    // A long batch (a consumer catching up) gives way to a shutdown between slices; the caller redoes it later.
    if (options.isStopping?.()) throw new StoppedBetweenSlices(i, ops.length);
    try {
      await collection.bulkWrite(ops.slice(i, i + BULK_WRITE_SLICE), { ordered: false });
    } catch (err) {
      // "Upsert only if newer" filters meet an existing newer document as a duplicate key: nothing to do there.
      if (!options.ignoreDuplicates || !onlyDuplicateKeys(err)) throw err;
    }
  }
}

/** A sliced bulk write left unfinished because its caller is stopping; the operations are meant to be redone. */
export class StoppedBetweenSlices extends Error {
  constructor(done: number, total: number) {
    super(`stopped after ${done} of ${total} operations`);
    this.name = "StoppedBetweenSlices";
  }
}
