/** The consumer is stopping: the batch in hand is abandoned and redelivered to whoever owns the partition next. */
export class Abandoned extends Error {
  constructor() {
    super("stopping: the rest of the batch is left for the next owner");
    this.name = "Abandoned";
  }
}

/** Waits `ms`, checking every second whether to give up (a provider can ask for minutes of patience). */
export async function patientSleep(ms: number, isStopping: () => boolean): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (isStopping()) throw new Abandoned();
    const left = until - Date.now();
    if (left <= 0) return;
    await new Promise((resolve) => setTimeout(resolve, Math.min(left, 1_000)));
  }
}

/** At most `limit` holders at once; the rest wait in arrival order. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async acquire(): Promise<void> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
  }

  release(): void {
    this.active--;
    this.waiting.shift()?.();
  }
}
