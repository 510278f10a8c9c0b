import type { ContactStepper } from "./contact-stepper";
import type { RelayPosition, StateStore } from "./state-store";

export interface RelaySettings {
  /** A revision's effects count as stranded once they have waited this long. */
  afterMs: number;
  /** How often the store is swept when no partition moved. */
  sweepEveryMs: number;
}

/**
 * Finds effects a crash left undone (a revision stored, its effects never run) and runs them. A sweep reads every
 * revision with effects past the relay age: on MongoDB an index range, on FerretDB a scan of the whole collection,
 * which at a thousand steps a second costs seconds. So it sweeps when effects can have been stranded: once the
 * relay age has passed after this replica started or (re)joined its consumer group (the partitions of a replica
 * that crashed or left come to the others then), and otherwise every `sweepEveryMs`. A contact's own next event
 * finishes its stranded effects before then.
 */
export class EffectRelay {
  private nextSweepAt: number;
  /** Where the last sweep that finished ended; a failed sweep is redone from the same place. */
  private position: RelayPosition = { at: new Date(0), id: "" };

  constructor(
    private readonly store: StateStore,
    private readonly stepper: ContactStepper,
    private readonly settings: RelaySettings,
  ) {
    this.nextSweepAt = Date.now() + settings.afterMs;
  }

  /** The consumer (re)joined its group: sweep once the effects of whoever left are past the relay age. */
  rejoined(): void {
    this.nextSweepAt = Math.min(this.nextSweepAt, Date.now() + this.settings.afterMs);
  }

  /**
   * Sweeps if one is due. A sweep that stopped at its page limit continues at the next tick; one that failed is tried
   * again after the relay age (a failing query on FerretDB is itself a scan). One cut short by `stopping` (the
   * service stops) keeps its position: the next start or another replica sweeps the same revisions again.
   */
  async tick(stopping?: AbortSignal): Promise<void> {
    if (Date.now() < this.nextSweepAt) return;
    this.nextSweepAt = Date.now() + this.settings.afterMs;
    const { revisions, last, more } = await this.store.stranded(this.settings.afterMs, this.position);
    await this.stepper.finishPending(revisions, this.settings.afterMs, stopping);
    if (stopping?.aborted) return;
    this.position = last;
    this.nextSweepAt = more ? Date.now() : Date.now() + this.settings.sweepEveryMs;
  }
}
