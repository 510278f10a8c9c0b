import { clone, create } from "@bufbuild/protobuf";
import type { ContactsService } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { ContactSnapshotSchema, type ContactSnapshot } from "@chatcrm/contracts/chatcrm/contacts/v1/events_pb";
import { PROJECT_METADATA_KEY, RpcError, Status, type GrpcClient } from "@chatcrm/grpc";
import type { Logger } from "@chatcrm/logging";
import type { EffectExecutor } from "../effects/effect-executor";
import { Step, type FlowSource, type Ignored, type StepInput } from "../engine/step";
import { KeyedLock } from "./keyed-lock";
import { StateConflict, type StateStore } from "./state-store";

/** Counters a person (or a test, or a benchmark) reads to see what the runtime did with its events. */
export interface FlowMetrics {
  applied: number;
  duplicates: number;
  ignored: Record<Exclude<Ignored, "">, number>;
  loopsStopped: number;
}

export interface StepperSettings {
  stepLimit: number;
  defaultRegion: string;
}

const MAX_CONFLICTS = 8;

/**
 * Applies one event to one contact: under a per-contact lock, it finishes effects a crash left behind, skips an
 * event already applied, runs the step, saves the new state together with the step's effects (an outbox in the
 * contact's own document), then executes the effects and clears them. A concurrent writer elsewhere makes the
 * save fail and the step run again on fresh state.
 */
export class ContactStepper {
  private readonly lock = new KeyedLock();
  readonly metrics: FlowMetrics = { applied: 0, duplicates: 0, ignored: { "no-flow": 0, "stale-timer": 0, "stale-result": 0, "unknown-flow": 0 }, loopsStopped: 0 };

  constructor(
    private readonly store: StateStore,
    private readonly flows: FlowSource,
    private readonly executor: EffectExecutor,
    private readonly contacts: GrpcClient<typeof ContactsService>,
    private readonly logger: Logger,
    private readonly settings: StepperSettings,
  ) {}

  apply(projectId: string, contactId: string, input: StepInput, snapshot?: ContactSnapshot): Promise<void> {
    return this.lock.run(`${projectId}:${contactId}`, () => this.applyLocked(projectId, contactId, input, snapshot));
  }

  /** Finishes the effects of a step that crashed half-way (the relay calls it for old pending effects). */
  finishPending(projectId: string, contactId: string): Promise<void> {
    return this.lock.run(`${projectId}:${contactId}`, async () => void (await this.loadSettled(projectId, contactId)));
  }

  private async loadSettled(projectId: string, contactId: string) {
    const doc = await this.store.load(projectId, contactId);
    if (!doc.pending.length) return doc;
    await this.executor.execute(projectId, contactId, doc.pending);
    await this.store.clearPending(doc);
    return this.store.load(projectId, contactId);
  }

  private async applyLocked(projectId: string, contactId: string, input: StepInput, snapshot?: ContactSnapshot): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const doc = await this.loadSettled(projectId, contactId);
      if (doc.recent.includes(input.eventId)) {
        this.metrics.duplicates++;
        return;
      }
      // Timers, results and stops only matter to a contact that is in a flow; no need to ask for the card.
      if (input.kind !== "message" && input.kind !== "start" && doc.sessions.length === 0) {
        if (input.kind !== "stop") this.metrics.ignored[input.kind === "timer" ? "stale-timer" : "stale-result"]++;
        return;
      }
      const contact = snapshot ? clone(ContactSnapshotSchema, snapshot) : await this.fetchContact(projectId, contactId);
      if (!contact) {
        this.logger.info({ projectId, contactId, event: input.kind }, "the contact no longer exists; the event changes nothing");
        return;
      }
      const step = new Step(projectId, contact, structuredClone(doc.sessions), this.flows, { ...this.settings, now: Date.now() }, input.eventId);
      const outcome = await step.run(input);
      for (const report of outcome.reports) this.logger.warn({ projectId, contactId, event: input.kind }, report);
      if (outcome.loopStopped) this.metrics.loopsStopped++;
      if (outcome.ignored) this.metrics.ignored[outcome.ignored]++;
      const unchanged = outcome.effects.length === 0 && JSON.stringify(outcome.sessions) === JSON.stringify(doc.sessions);
      if (unchanged) return;
      let saved;
      try {
        saved = await this.store.save({ ...doc, sessions: outcome.sessions, pending: outcome.effects }, input.eventId);
      } catch (err) {
        if (err instanceof StateConflict && attempt < MAX_CONFLICTS) continue;
        throw err;
      }
      this.metrics.applied++;
      if (outcome.effects.length === 0) return;
      await this.executor.execute(projectId, contactId, outcome.effects);
      await this.store.clearPending(saved);
      return;
    }
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
