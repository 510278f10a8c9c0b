import type { ContactState } from "./state-store";

/**
 * The states of the contacts this replica steps, kept between events so a message costs no database read. It is
 * only a copy: every write still goes to the store, whose revision check turns a stale copy into a conflict (the
 * copy is then dropped and reloaded). The oldest-used states go first when it is full, except those whose done
 * effects are not yet recorded as done (dropping one would let the relay redo its effects).
 */
export class StateCache {
  private readonly states = new Map<string, ContactState>();
  /** Keys whose effects ran but whose stored revision still lists them, with when they ran. */
  private readonly uncleared = new Map<string, number>();

  constructor(private readonly capacity: number) {}

  get(key: string): ContactState | undefined {
    const state = this.states.get(key);
    if (state) {
      // Re-inserting moves the key to the end: Map order is the use order.
      this.states.delete(key);
      this.states.set(key, state);
    }
    return state;
  }

  /** The copy without counting it as a use (the relay looking, not a step). */
  peek(key: string): ContactState | undefined {
    return this.states.get(key);
  }

  set(state: ContactState): void {
    this.states.delete(state.key);
    this.states.set(state.key, state);
    if (this.states.size > this.capacity) this.evict();
  }

  delete(key: string): void {
    this.states.delete(key);
    this.uncleared.delete(key);
  }

  /** The state's effects ran: they are gone from the copy, and the store learns of it later (or with the next step). */
  effectsDone(state: ContactState, at = Date.now()): void {
    this.set({ ...state, pending: [] });
    if (!this.uncleared.has(state.key)) this.uncleared.set(state.key, at);
  }

  /** The stored revision matches the copy again (a newer revision was written). */
  stored(state: ContactState): void {
    this.uncleared.delete(state.key);
    this.set(state);
  }

  /** States whose done effects have gone unrecorded since before `before` (all of them without it). */
  unclearedSince(before = Infinity): ContactState[] {
    const due: ContactState[] = [];
    for (const [key, at] of this.uncleared) {
      if (at > before) break;
      const state = this.states.get(key);
      if (state) due.push(state);
    }
    return due;
  }

  /** Drops every state but those with done effects not yet recorded (a step in flight just ran them). */
  clear(): void {
    for (const key of this.states.keys()) if (!this.uncleared.has(key)) this.states.delete(key);
  }

  get size(): number {
    return this.states.size;
  }

  private evict() {
    for (const key of this.states.keys()) {
      if (this.states.size <= this.capacity) return;
      if (!this.uncleared.has(key)) this.states.delete(key);
    }
  }
}
