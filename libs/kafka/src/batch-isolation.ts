/**
 * When any handler call of a consumer last succeeded (when it started): the proof that the infrastructure answers.
 * A call that began after an event's first failure and succeeded means that event, not the database or a
 * service, is what fails.
 */
export class HandlerHealth {
  private lastSuccessStartedAt = 0;

  succeeded(startedAt: number): void {
    if (startedAt > this.lastSuccessStartedAt) this.lastSuccessStartedAt = startedAt;
  }

  answeredSince(at: number): boolean {
    return this.lastSuccessStartedAt >= at;
  }
}

/** What handling a batch one event at a time needs from its consumer. */
export interface OneByOne<E> {
  /** The batch handler, called with one event. */
  call(event: E): Promise<void>;
  /** Tries of one event, the first included, before it may go to the dead-letter topic. */
  attempts: number;
  health: HandlerHealth;
  /** Waits before the next try (backoff); rejects when the consumer stops. */
  pause(attempt: number): Promise<void>;
  deadLetter(event: E, error: string, attempts: number): Promise<void>;
  retrying(event: E, err: unknown, attempt: number): void;
  /** The event and everything before it in the batch are handled or dead-lettered. */
  markDone(event: E): void;
  isStopping(): boolean;
}

/** Thrown when the consumer stops in the middle: what is not marked done is redelivered. */
export class Abandoned extends Error {}

/**
 * Handles a batch that kept failing one event at a time, in order, so one bad record cannot hold its partition for
 * ever. An event that still fails after `attempts` tries goes to the dead-letter topic, but only once some handler
 * call that started after its first failure has succeeded (HandlerHealth): a batch usually fails because the
 * database or a service is away, and then every event fails and none may be dead-lettered. When no other partition
 * proves the infrastructure answers, the events after the stuck one are tried, one more each round, until one
 * succeeds; an event handled that way is not handled again. It has then gone before the stuck ones: they are
 * dead-lettered, or handled after it if their failure passes meanwhile (the one case where order within a key
 * may not hold).
 */
export async function handleOneByOne<E>(events: E[], how: OneByOne<E>): Promise<void> {
  const batch: BatchState<E> = { events, how, handledEarly: new Set(), firstFailedAt: new Map() };
  for (let i = 0; i < events.length; i++) {
    if (!batch.handledEarly.has(i)) await handleAlone(batch, i);
    how.markDone(events[i]!);
  }
}

interface BatchState<E> {
  events: E[];
  how: OneByOne<E>;
  /** Later events handled while proving the infrastructure answers: not handled again. */
  handledEarly: Set<number>;
  /** When each event first failed on its own, as itself or as a probe. */
  firstFailedAt: Map<number, number>;
}

async function handleAlone<E>(batch: BatchState<E>, i: number): Promise<void> {
  const { how } = batch;
  let probe = i + 1;
  for (let attempt = 1; ; attempt++) {
    const err = await tryOne(batch, i);
    if (err === undefined) return;
    if (attempt >= how.attempts) {
      const since = batch.firstFailedAt.get(i)!;
      if (!how.health.answeredSince(since)) probe = await tryLater(batch, probe);
      if (how.health.answeredSince(since)) {
        await how.deadLetter(batch.events[i]!, errorText(err), attempt);
        return;
      }
    }
    how.retrying(batch.events[i]!, err, attempt);
    await how.pause(attempt);
  }
}

/** Calls the handler with event i alone; returns its error, or undefined when it succeeded. */
async function tryOne<E>(batch: BatchState<E>, i: number): Promise<unknown> {
  const startedAt = Date.now();
  try {
    await batch.how.call(batch.events[i]!);
    batch.how.health.succeeded(startedAt);
    return undefined;
  } catch (err) {
    if (batch.how.isStopping()) throw new Abandoned();
    if (!batch.firstFailedAt.has(i)) batch.firstFailedAt.set(i, startedAt);
    return err ?? new Error("the handler failed");
  }
}

/** Tries the first event from `from` not handled yet; returns where the next probe starts. */
async function tryLater<E>(batch: BatchState<E>, from: number): Promise<number> {
  let j = from;
  while (batch.handledEarly.has(j)) j++;
  if (j >= batch.events.length) return j;
  if ((await tryOne(batch, j)) === undefined) batch.handledEarly.add(j);
  return j + 1;
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));
