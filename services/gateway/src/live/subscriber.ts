import type { Caller } from "../access/caller";
import type { Update } from "./live-hub";

// A UI that stops reading (a frozen tab) must not make the gateway hold an unbounded backlog for it.
const MAX_QUEUED = 1_000;

/** One open update stream: a bounded queue the hub pushes to and the stream's generator drains. */
export class Subscriber {
  lastUnread = "";
  private readonly queue: Update[] = [];
  private wake: (() => void) | undefined;
  private state: "open" | "closed" | "overflow" = "open";

  constructor(readonly caller: Caller) {}

  push(update: Update): void {
    if (this.state !== "open") return;
    if (this.queue.length >= MAX_QUEUED) this.state = "overflow";
    else this.queue.push(update);
    this.wake?.();
  }

  close(): void {
    if (this.state === "open") this.state = "closed";
    this.wake?.();
  }

  /** The next update; undefined when `idleMs` passed without one (time for a heartbeat). */
  async next(signal: AbortSignal, idleMs: number): Promise<Update | "closed" | "overflow" | undefined> {
    if (this.state === "overflow") return "overflow";
    const queued = this.queue.shift();
    if (queued) return queued;
    if (this.state === "closed" || signal.aborted) return "closed";
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, idleMs);
      signal.addEventListener("abort", done, { once: true });
      this.wake = done;
    });
    // The state may have changed while we waited (TypeScript still sees the narrowed value from above).
    const state = this.state as Subscriber["state"];
    if (state === "overflow") return "overflow";
    return this.queue.shift() ?? (state === "closed" || signal.aborted ? "closed" : undefined);
  }
}
