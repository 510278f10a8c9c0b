import type { Model } from "mongoose";
import type { TimelineDoc } from "../store/support-models";

/** Inserts timeline lines whose _ids are derived from their cause, so a redone insert skips what is there. */
export async function insertTimeline(model: Model<TimelineDoc>, entries: TimelineDoc[]): Promise<void> {
  if (entries.length === 0) return;
  try {
    await model.collection.insertMany(entries as never[], { ordered: false });
  } catch (err) {
    const e = err as { code?: number; writeErrors?: { code?: number }[] };
    const allDuplicates = e.code === 11000 && (e.writeErrors ?? []).every((w) => w.code === 11000);
    if (!allDuplicates) throw err;
  }
}
