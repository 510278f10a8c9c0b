import { createHash } from "node:crypto";

/**
 * Our id for something a provider sent, derived from the channel and the provider's own id: a redelivered webhook
 * (same Telegram update id, same wamid) yields the same id, so every consumer drops the repeat by event id.
 */
export function derivedId(channelId: string, providerId: string, kind = "msg"): string {
  return createHash("sha256").update(`${kind}\u001f${channelId}\u001f${providerId}`).digest("hex").slice(0, 32);
}

/** A bounded set of recently seen ids: the cheap first line of duplicate detection on the webhook path. */
export class RecentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity: number) {}

  has(id: string): boolean {
    return this.ids.has(id);
  }

  add(id: string): void {
    if (this.ids.has(id)) return;
    this.ids.add(id);
    // A Set iterates in insertion order, so the first entry is the oldest.
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as string);
  }
}
