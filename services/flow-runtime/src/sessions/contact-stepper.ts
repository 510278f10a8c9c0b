import { create } from "@bufbuild/protobuf";
import type { ContactsService } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { ContactSnapshotSchema, type ContactSnapshot } from "@chatcrm/contracts/chatcrm/contacts/v1/events_pb";
import { PROJECT_METADATA_KEY, RpcError, Status, type GrpcClient } from "@chatcrm/grpc";
import { forEachLimited, groupInOrder } from "@chatcrm/kafka";
import type { Logger } from "@chatcrm/logging";
import type { EffectExecutor } from "../effects/effect-executor";
import { staleFor, Step, type FlowSource, type Ignored, type StepInput } from "../engine/step";
import { KeyedLock } from "./keyed-lock";
import { StateCache } from "./state-cache";
import { hasApplied, nextState, stateKey, type ContactState, type StateStore, type StrandedRevision } from "./state-store";

/** Counters a person (or a test, or a benchmark) reads to see what the runtime did with its events. */
export interface FlowMetrics {
  applied: number;
  duplicates: number;
  ignored: Record<Exclude<Ignored, "">, number>;
  loopsStopped: number;
  /** Revisions another writer stored first (the step was redone on fresh state). */
  conflicts: number;
  /** States read from the store because no copy was in memory (new contacts, after a restart or a rebalance). */
  loaded: number;
}

export interface StepperSettings {
  stepLimit: number;
  defaultRegion: string;
  /** Contact states kept in memory. */
  cacheSize: number;
  /** Contacts whose steps and effects run at once within a batch. */
  contactsAtOnce: number;
}

/** One event for one contact, as the consumers hand it over. */
export interface StepRequest {
  projectId: string;
  contactId: string;
  input: StepInput;
  /** The card as contacts resolved it with the message; other events read the card when they need it. */
  snapshot?: ContactSnapshot;
}

const MAX_CONFLICTS = 8;

/**
 * The card a step may change as it goes (answers saved, variables set, tags), apart from the event's: a step redone
 * after a conflict starts from the card as it came. A step assigns the card's fields and writes into its variables,
 * so a copy of those is enough; a reflective protobuf clone of every card cost more than the step itself.
 */
const ownCard = (card: ContactSnapshot): ContactSnapshot => ({ ...card, variables: { ...card.variables } });

/**
 * Applies events to contacts' states a batch at a time. Within a batch every contact's events go in order, in
 * rounds: a round takes the next event of each contact, runs the steps, stores all the new states with one
 * insert (each state with its step's effects: an outbox), then executes the effects. So a step sees the effects
 * of the contact's previous event done, as if the events came one by one, while the database sees one write per
 * round instead of three per event. States stay in memory between events (StateCache); a state whose revision
 * another writer stored first is reloaded and its step redone. Effects done are recorded in the store with the
 * contact's next step, or by `recordDoneEffects` if none comes; until then a crash makes them run again, which
 * is safe because every effect is idempotent.
 */
export class ContactStepper {
  private readonly lock = new KeyedLock();
  private readonly cache: StateCache;
  private moved = false;
  readonly metrics: FlowMetrics = { applied: 0, duplicates: 0, ignored: { "no-flow": 0, "stale-timer": 0, "stale-result": 0, "unknown-flow": 0 }, loopsStopped: 0, conflicts: 0, loaded: 0 };

  constructor(
    private readonly store: StateStore,
    private readonly flows: FlowSource,
    private readonly executor: EffectExecutor,
    private readonly contacts: GrpcClient<typeof ContactsService>,
    private readonly logger: Logger,
    private readonly settings: StepperSettings,
  ) {
    this.cache = new StateCache(settings.cacheSize);
  }

  apply(projectId: string, contactId: string, input: StepInput, snapshot?: ContactSnapshot): Promise<void> {
    return this.applyBatch([{ projectId, contactId, input, snapshot }]);
  }

  async applyBatch(requests: StepRequest[]): Promise<void> {
    if (this.moved) {
      this.moved = false;
      await this.resetCache();
    }
    const queues = [...groupInOrder(requests, (r) => stateKey(r.projectId, r.contactId)).values()];
    if (queues.length === 0) return;
    await this.lock.runAll(
      queues.map((q) => stateKey(q[0]!.projectId, q[0]!.contactId)),
      async () => {
        for (let i = 0; ; i++) {
          const round = queues.flatMap((q) => (i < q.length ? [q[i]!] : []));
          if (round.length === 0) return;
          await this.applyRound(round);
        }
      },
    );
  }

  /**
   * Runs the effects a crash (or a failed batch) left undone in these revisions, if the revision is still the
   * contact's newest and older than `olderThanMs`. A revision this replica has since superseded needs nothing: a
   * step runs the effects of the state it starts from before it stores the next. Other contacts are read from the
   * store, not from memory: the writer that left them may have been another replica; a younger revision may be
   * another replica's step whose effects are running right now. Once `stopping` aborts, nothing more is looked up
   * or run.
   */
  async finishPending(stranded: StrandedRevision[], olderThanMs = 0, stopping?: AbortSignal): Promise<void> {
    const copyOf = (r: StrandedRevision) => this.cache.peek(stateKey(r.projectId, r.contactId));
    // Most are superseded by this replica's own later steps: those need neither a lock (a sweep holding thousands
    // of contacts' locks stalls their steps) nor a load.
    const candidates = stranded.filter((r) => !((copyOf(r)?.rev ?? -1) > r.rev));
    // Of the rest, those this replica holds no copy of (most: another replica's contacts) are first looked up without
    // their bodies, and only the contacts whose newest revision still waits past the age are loaded and locked (and
    // read again under the lock: another replica may have stepped them since).
    const unheldHeads = await this.store.heads(candidates.filter((r) => !copyOf(r)), stopping);
    // On FerretDB each lookup of up to 2,000 contacts scans the collection: a stop does not wait for all of them.
    if (stopping?.aborted) return;
    const cutoff = Date.now() - olderThanMs;
    const waitsPastAge = (s: { hasPending: boolean; updatedAt: Date }) => s.hasPending && new Date(s.updatedAt).getTime() <= cutoff;
    const revisions = candidates.filter((r) => {
      if (copyOf(r)) return true;
      const head = unheldHeads.get(stateKey(r.projectId, r.contactId));
      return head !== undefined && waitsPastAge(head);
    });
    if (revisions.length === 0) return;
    await this.lock.runAll(
      revisions.map((r) => stateKey(r.projectId, r.contactId)),
      async () => {
        const due: ContactState[] = [];
        const unknown: StrandedRevision[] = [];
        for (const r of revisions) {
          const cached = copyOf(r);
          // The copy of the same or a newer revision knows better whether its effects already ran.
          if (!cached || cached.rev < r.rev) unknown.push(r);
          else if (cached.pending.length > 0) due.push(cached);
        }
        for (const [key, stored] of await this.store.loadMany(unknown)) {
          const cached = this.cache.peek(key);
          // A copy newer than the store's answer is this replica's own last write, which a read may not show yet
          // (FerretDB on SQLite has answered from before a committed write): it stays.
          if (cached && cached.rev >= stored.rev) {
            if (cached.pending.length > 0) due.push(cached);
            continue;
          }
          if (cached) this.cache.delete(key);
          if (waitsPastAge({ hasPending: stored.pending.length > 0, updatedAt: stored.updatedAt })) due.push(stored);
        }
        await this.runEffects([...new Map(due.map((s) => [s.key, s])).values()]);
      },
    );
  }

  /**
   * Stores, as a new revision without them, the effects done more than `olderThanMs` ago for contacts that had no
   * step since (all of them with 0): the relay would otherwise take them for a crash and redo them.
   */
  async recordDoneEffects(olderThanMs: number): Promise<number> {
    const candidates = this.cache.unclearedSince(Date.now() - olderThanMs);
    if (candidates.length === 0) return 0;
    return this.lock.runAll(
      candidates.map((s) => s.key),
      async () => {
        // A step may have stored a newer revision while this waited for the lock. Contacts that came due meanwhile
        // are not locked by this pass: a step of theirs may be storing the same revision number right now (the loser
        // of that race had its copy dropped and reloaded), so they wait for the next pass.
        const locked = new Set(candidates.map((s) => s.key));
        const due = this.cache.unclearedSince(Date.now() - olderThanMs).filter((s) => locked.has(s.key) && s.pending.length === 0);
        const next = due.map((s) => nextState(s, { sessions: s.sessions, pending: [] }, undefined));
        const conflicts = await this.store.saveMany(next);
        for (const s of next) {
          if (conflicts.has(s.key)) this.cache.delete(s.key);
          else this.cache.stored(s);
        }
        return next.length;
      },
    );
  }

  /**
   * The consumer (re)joined its group: partitions may have moved, and another replica may have stepped any contact
   * this one holds a copy of. The copies are dropped before the next batch. Once per join, not per partition: the
   * first batch of each topic's partitions after a join used to drop them all again, each time a storm of loads.
   */
  partitionsMoved(): void {
    this.moved = true;
  }

  /** Forgets every state held in memory (the partitions moved: another replica may step these contacts now). */
  async resetCache(): Promise<void> {
    await this.recordDoneEffects(0);
    this.cache.clear();
  }

  get cachedStates(): number {
    return this.cache.size;
  }

  private async applyRound(round: StepRequest[]): Promise<void> {
    let todo = round;
    for (let attempt = 1; todo.length > 0; attempt++) {
      const states = await this.settledStates(todo);
      const results = new Map<string, ContactState>();
      await forEachLimited(todo, this.settings.contactsAtOnce, async (request) => {
        const state = states.get(stateKey(request.projectId, request.contactId))!;
        const next = await this.step(state, request);
        if (next) results.set(next.key, next);
      });
      const changed = [...results.values()];
      const conflicts = await this.store.saveMany(changed);
      for (const key of conflicts) this.cache.delete(key);
      this.metrics.conflicts += conflicts.size;
      const saved = changed.filter((s) => !conflicts.has(s.key));
      for (const s of saved) this.cache.stored(s);
      this.metrics.applied += saved.length;
      await this.runEffects(saved);
      todo = todo.filter((r) => conflicts.has(stateKey(r.projectId, r.contactId)));
      if (todo.length > 0 && attempt >= MAX_CONFLICTS) throw new Error(`contact states kept changing under ${todo.length} steps; the batch is retried`);
    }
  }

  /** The contacts' states, from memory or else one query, with effects a crash left behind done first. */
  private async settledStates(contacts: { projectId: string; contactId: string }[]): Promise<Map<string, ContactState>> {
    const states = new Map<string, ContactState>();
    const missing: { projectId: string; contactId: string }[] = [];
    for (const c of contacts) {
      const key = stateKey(c.projectId, c.contactId);
      const cached = this.cache.get(key);
      if (cached) states.set(key, cached);
      else missing.push(c);
    }
    this.metrics.loaded += missing.length;
    for (const [key, state] of await this.store.loadMany(missing)) {
      states.set(key, state);
      this.cache.stored(state);
    }
    const unsettled = [...states.values()].filter((s) => s.pending.length > 0);
    await this.runEffects(unsettled);
    for (const s of unsettled) states.set(s.key, this.cache.get(s.key)!);
    return states;
  }

  private async runEffects(states: ContactState[]): Promise<void> {
    await forEachLimited(
      states.filter((s) => s.pending.length > 0),
      this.settings.contactsAtOnce,
      async (s) => {
        await this.executor.execute(s.projectId, s.contactId, s.pending);
        this.cache.effectsDone(s);
      },
    );
  }

  /** One event on one contact's state: the next state, or undefined when the event changes nothing. */
  private async step(state: ContactState, { projectId, contactId, input, snapshot }: StepRequest): Promise<ContactState | undefined> {
    if (hasApplied(state, input.eventId)) {
      this.metrics.duplicates++;
      return undefined;
    }
    // A stop for a contact in no flow, a timer or a result no session waits for: no need to ask for the card.
    const stale = staleFor(state.sessions, input);
    if (stale) {
      this.metrics.ignored[stale]++;
      return undefined;
    }
    if (input.kind === "stop" && state.sessions.length === 0) return undefined;
    const contact = snapshot ? ownCard(snapshot) : await this.fetchContact(projectId, contactId);
    if (!contact) {
      this.logger.info({ projectId, contactId, event: input.kind }, "the contact no longer exists; the event changes nothing");
      return undefined;
    }
    const step = new Step(projectId, contact, state.sessions.map((x) => ({ ...x })), this.flows, { ...this.settings, now: Date.now() }, input.eventId);
    const outcome = await step.run(input);
    for (const report of outcome.reports) this.logger.warn({ projectId, contactId, event: input.kind }, report);
    if (outcome.loopStopped) this.metrics.loopsStopped++;
    if (outcome.ignored) this.metrics.ignored[outcome.ignored]++;
    const unchanged = outcome.effects.length === 0 && JSON.stringify(outcome.sessions) === JSON.stringify(state.sessions);
    if (unchanged) return undefined;
    return nextState(state, { sessions: outcome.sessions, pending: outcome.effects }, input.eventId);
  }

  private async fetchContact(projectId: string, contactId: string): Promise<ContactSnapshot | undefined> {
    try {
      const { contact: c } = await this.contacts.getContact({ contact: { ref: { case: "contactId", value: contactId } } }, { metadata: { [PROJECT_METADATA_KEY]: projectId } });
      if (!c) return undefined;
      return create(ContactSnapshotSchema, {
        contactId: c.contactId,
        clientId: c.clientId,
        firstName: c.firstName,
        lastName: c.lastName,
        phone: c.phone,
        email: c.email,
        tags: c.tags,
        lists: c.lists,
        variables: c.variables,
        messenger: c.messenger,
        channelId: c.channelId,
        messengerUserId: c.messengerUserId,
        freeText: c.freeText,
        username: c.username,
        language: c.language,
        operatorId: c.operatorId,
      });
    } catch (err) {
      if (err instanceof RpcError && err.code === Status.NOT_FOUND) return undefined;
      throw err;
    }
  }
}
