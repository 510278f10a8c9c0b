import type { mongo } from "mongoose";

/**
 * FerretDB 1.24 applies the first 99 statements of one update command and then stops answering on that database
 * (reproduced with 150 updateOne operations, ordered or not; 50 run fine), so large bulk writes are sent in
 * slices. On MongoDB the slices cost a few extra round trips per thousand operations.
 */
export const BULK_WRITE_SLICE = 50;

/** Unordered bulk write in slices of BULK_WRITE_SLICE; does nothing for an empty list. */
export async function bulkWriteInSlices(collection: mongo.Collection, operations: mongo.AnyBulkWriteOperation[]): Promise<void> {
  for (let i = 0; i < operations.length; i += BULK_WRITE_SLICE) await collection.bulkWrite(operations.slice(i, i + BULK_WRITE_SLICE), { ordered: false });
}
