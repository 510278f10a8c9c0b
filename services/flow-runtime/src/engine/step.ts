import type { InboundMessage } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import type { ContactSnapshot } from "@chatcrm/contracts/chatcrm/contacts/v1/events_pb";
import { EdgePort, TimeoutBehavior, TriggerKind, type Block, type QuestionBlock } from "@chatcrm/contracts/chatcrm/flows/v1/flow_pb";
import type { IntegrationResult } from "@chatcrm/contracts/chatcrm/integrations/v1/events_pb";
import type { FlowShape } from "../definitions/flow-shape";
import type { EffectRecord, SessionRecord } from "../sessions/state-store";
import { checkAnswer } from "./answers";
import { fireBlock, type BlockOutcome } from "./blocks";
import { contactsEffect, funnelEffect, sendEffect } from "./effects";
import { render } from "./templates";
import { wildcardMatch } from "./wildcard";

/** What moved a contact's sessions. `eventId` is the idempotency key and the seed of every id the step makes. */
export type StepInput =
  | { kind: "message"; eventId: string; message: InboundMessage; firstTouch: boolean }
  | { kind: "start"; eventId: string; flowId: string; blockId: string }
  | { kind: "stop"; eventId: string; flowId: string }
  | { kind: "timer"; eventId: string; timerId: string; sessionId: string }
  | { kind: "result"; eventId: string; result: IntegrationResult };

/** The session a timer or an integration result is for, if it still waits for exactly that one. */
function waitingSession(sessions: SessionRecord[], input: StepInput): SessionRecord | undefined {
  if (input.kind === "timer") return sessions.find((s) => s.id === input.sessionId && s.timerId === input.timerId && s.wait !== "");
  if (input.kind === "result") return sessions.find((s) => s.id === input.result.sessionId && s.wait === "integration" && s.requestId === input.result.requestId);
  return undefined;
}

/**
 * Why a timer or an integration result changes nothing for these sessions ("" when it may): known before the card
 * is read. Most timers that fire are stale (the reply-timeout of a question answered meanwhile).
 */
export function staleFor(sessions: SessionRecord[], input: StepInput): Ignored {
  if (input.kind !== "timer" && input.kind !== "result") return "";
  if (waitingSession(sessions, input)) return "";
  return input.kind === "timer" ? "stale-timer" : "stale-result";
}

/** The flows the engine reads: immutable versions and the project's active flows. */
export interface FlowSource {
  shape(projectId: string, flowId: string, version: number): Promise<FlowShape | undefined>;
  latestActive(projectId: string, flowId: string): Promise<FlowShape | undefined>;
  activeFlows(projectId: string): Promise<FlowShape[]>;
}

export interface StepSettings {
  stepLimit: number;
  defaultRegion: string;
  now: number;
}

/** Why an event changed nothing, for metrics. */
export type Ignored = "no-flow" | "stale-timer" | "stale-result" | "unknown-flow" | "";

export interface StepOutcome {
  sessions: SessionRecord[];
  effects: EffectRecord[];
  /** Problems a person should hear about (a loop stopped, a missing block). */
  reports: string[];
  ignored: Ignored;
  /** A session ran into the step limit and was stopped. */
  loopStopped: boolean;
}

/**
 * One event applied to one contact's sessions: pure except for reading flow definitions. Everything the step
 * does outside the contact's state comes out as effects, in order, to be executed after the state is saved;
 * their ids derive from the event id, so redoing a step after a crash produces the same commands.
 */
export class Step {
  readonly effects: EffectRecord[] = [];
  readonly reports: string[] = [];
  private seq = 0;
  private fired = 0;
  private loopStopped = false;
  /** Where each session stood when the step began, to record funnel moves once per session. */
  private readonly startBlocks: Map<string, string>;
  private readonly moved = new Map<string, { flowId: string; blockId: string }>();

  constructor(
    readonly projectId: string,
    readonly contact: ContactSnapshot,
    private sessionList: SessionRecord[],
    private readonly flows: FlowSource,
    readonly settings: StepSettings,
    readonly eventId: string,
  ) {
    this.startBlocks = new Map(sessionList.map((s) => [s.id, s.blockId]));
  }

  get sessions() {
    return this.sessionList;
  }

  nextId(): string {
    return `${this.eventId}:${this.seq++}`;
  }

  report(problem: string) {
    this.reports.push(problem);
  }

  async run(input: StepInput): Promise<StepOutcome> {
    const ignored = await this.dispatch(input);
    this.recordFunnelMoves();
    return { sessions: this.sessionList, effects: this.effects, reports: this.reports, ignored, loopStopped: this.loopStopped };
  }

  private async dispatch(input: StepInput): Promise<Ignored> {
    switch (input.kind) {
      case "start":
        return (await this.startSession(input.flowId, input.blockId)) ? "" : "unknown-flow";
      case "stop":
        this.sessionList = this.sessionList.filter((s) => s.flowId !== input.flowId);
        return "";
      case "timer":
        return this.onTimer(input);
      case "result":
        return this.onResult(input);
      case "message":
        return this.onMessage(input.message, input.firstTouch);
    }
  }

  /** Starts (or restarts) a flow for the contact; false when it is not there or archived. */
  async startSession(flowId: string, blockId: string): Promise<boolean> {
    const shape = await this.flows.latestActive(this.projectId, flowId);
    if (!shape) {
      this.report(`flow ${flowId} does not exist or is archived; nothing started`);
      return false;
    }
    const start = blockId || shape.flow.entryBlockId;
    if (!shape.block(start)) {
      this.report(`flow ${flowId} has no block "${start}"; nothing started`);
      return false;
    }
    this.sessionList = this.sessionList.filter((s) => s.flowId !== flowId);
    const session: SessionRecord = { id: this.nextId(), flowId, version: shape.flow.version, blockId: start, wait: "", deadlineMs: 0, timerId: "", requestId: "", invalidAnswers: 0, startedAt: new Date(this.settings.now) };
    this.sessionList.push(session);
    await this.enter(session, shape, [start]);
    return true;
  }

  end(session: SessionRecord) {
    this.sessionList = this.sessionList.filter((s) => s !== session);
  }

  isLive(session: SessionRecord) {
    return this.sessionList.includes(session);
  }

  /**
   * Fires blocks level by level: the blocks one port leads to fire at the same step, action blocks first (seed 003);
   * then the blocks their ports lead to, until the session waits or ends. A loop without a wait stops at the limit.
   */
  async enter(session: SessionRecord, shape: FlowShape, blockIds: string[]): Promise<void> {
    let level = blockIds;
    while (level.length && this.isLive(session)) {
      const blocks = level.map((id) => shape.block(id)).filter((b): b is Block => !!b);
      blocks.sort((a, b) => Number(b.kind.case === "action") - Number(a.kind.case === "action"));
      const next: string[] = [];
      for (const block of blocks) {
        if (++this.fired > this.settings.stepLimit) {
          this.loopStopped = true;
          this.report(`flow ${shape.flow.flowId} ran ${this.settings.stepLimit} blocks without waiting (a loop through "${block.blockId}"); the session was stopped`);
          this.end(session);
          return;
        }
        session.blockId = block.blockId;
        this.moved.set(session.id, { flowId: session.flowId, blockId: block.blockId });
        const outcome: BlockOutcome = await fireBlock(this, session, shape, block);
        if (outcome.end) return this.end(session);
        if (!this.isLive(session)) return;
        for (const id of outcome.next ?? []) if (!next.includes(id)) next.push(id);
      }
      if (session.wait) return;
      level = next;
    }
    // Nothing further: the flow is finished for this contact.
    if (this.isLive(session) && !session.wait) this.end(session);
  }

  private async shapeOf(session: SessionRecord): Promise<FlowShape | undefined> {
    const shape = await this.flows.shape(this.projectId, session.flowId, session.version);
    if (!shape) {
      this.report(`flow ${session.flowId} version ${session.version} is gone; the session was stopped`);
      this.end(session);
    }
    return shape;
  }

  private clearWait(session: SessionRecord) {
    Object.assign(session, { wait: "", deadlineMs: 0, timerId: "", requestId: "", invalidAnswers: 0 });
  }

  private async onTimer(input: StepInput & { kind: "timer" }): Promise<Ignored> {
    const session = waitingSession(this.sessionList, input);
    if (!session) return "stale-timer";
    const shape = await this.shapeOf(session);
    if (!shape) return "";
    const block = shape.block(session.blockId);
    const wait = session.wait;
    this.clearWait(session);
    if (wait === "answer" && block?.kind.case === "question") return this.timedOut(session, shape, block.kind.value), "";
    const port = wait === "delay" ? EdgePort.NEXT : EdgePort.FAILURE;
    if (wait === "integration") this.report(`flow ${session.flowId}: no result from the integration in time (block "${session.blockId}"); took the failure branch`);
    await this.enter(session, shape, shape.targets(session.blockId, port));
    return "";
  }

  private timedOut(session: SessionRecord, shape: FlowShape, question: QuestionBlock): Promise<void> | void {
    switch (question.onTimeout) {
      case TimeoutBehavior.BRANCH:
        return this.enter(session, shape, shape.targets(session.blockId, EdgePort.TIMEOUT));
      case TimeoutBehavior.STOP_WITH_MESSAGE:
        this.send(question.timeoutText);
        return this.end(session);
      default:
        return this.end(session);
    }
  }

  private async onResult(input: StepInput & { kind: "result" }): Promise<Ignored> {
    const { result } = input;
    const session = waitingSession(this.sessionList, input);
    if (!session) return "stale-result";
    const shape = await this.shapeOf(session);
    if (!shape) return "";
    this.clearWait(session);
    if (result.ok && Object.keys(result.variables).length) {
      this.effects.push(contactsEffect(this.nextId(), "setVariables", { contact: { ref: { case: "contactId", value: this.contact.contactId } }, set: result.variables }));
      Object.assign(this.contact.variables, result.variables);
    }
    if (!result.ok) this.report(`flow ${session.flowId}: the integration failed (${result.error || `HTTP ${result.httpStatus}`}); took the failure branch`);
    await this.enter(session, shape, shape.targets(session.blockId, result.ok ? EdgePort.SUCCESS : EdgePort.FAILURE));
    return "";
  }

  private async onMessage(message: InboundMessage, firstTouch: boolean): Promise<Ignored> {
    const flows = await this.flows.activeFlows(this.projectId);
    const isStart = !!message.startPayload || /^\/start(\s|$)/.test(message.text.trim());
    // /start restarts the bot even in the middle of a question, as subscribers expect of it.
    if (isStart && (await this.startTriggered(flows, message, TriggerKind.START_COMMAND))) return "";
    const waiting = [...this.sessionList].reverse().find((s) => s.wait === "answer");
    if (waiting) return this.onAnswer(waiting, message);
    for (const kind of [firstTouch ? TriggerKind.FIRST_MESSAGE : undefined, TriggerKind.KEYWORD, TriggerKind.PATTERN]) {
      if (kind && (await this.startTriggered(flows, message, kind))) return "";
    }
    return "no-flow";
  }

  /** Starts every flow with a matching trigger of this kind; true when at least one started. */
  private async startTriggered(flows: FlowShape[], message: InboundMessage, kind: TriggerKind): Promise<boolean> {
    const text = message.text.trim();
    const matches = flows.filter((f) =>
      f.flow.triggers.some((t) => {
        if (t.kind !== kind || (t.channelId && t.channelId !== message.channelId)) return false;
        const values = t.values.map((v) => v.trim()).filter(Boolean);
        if (kind === TriggerKind.START_COMMAND) return values.length === 0 || values.includes(message.startPayload);
        if (kind === TriggerKind.KEYWORD) return values.some((v) => v.toLowerCase() === text.toLowerCase());
        if (kind === TriggerKind.PATTERN) return values.some((v) => wildcardMatch(v, text));
        return true;
      }),
    );
    for (const f of matches) await this.startSession(f.flow.flowId, "");
    return matches.length > 0;
  }

  private async onAnswer(session: SessionRecord, message: InboundMessage): Promise<Ignored> {
    const shape = await this.shapeOf(session);
    const block = shape?.block(session.blockId);
    if (!shape || block?.kind.case !== "question") {
      if (shape) this.end(session);
      return "";
    }
    const question = block.kind.value;
    // The reply came after the timeout: the question is over even if its timer has not fired yet (seed 000).
    if (session.deadlineMs && this.settings.now >= session.deadlineMs) {
      this.clearWait(session);
      await this.timedOut(session, shape, question);
      return "";
    }
    const answer = checkAnswer(question.expect, message, { region: shape.flow.defaultRegion || this.settings.defaultRegion, buttons: question.prompt?.buttons ?? [] });
    if (!answer.valid) {
      session.invalidAnswers++;
      if (question.retryUnlimited || session.invalidAnswers <= question.retries) {
        this.send(question.errorText || question.prompt?.text || "", question.errorText ? undefined : question.prompt);
        return "";
      }
      this.clearWait(session);
      const invalid = shape.targets(session.blockId, EdgePort.INVALID);
      if (!invalid.length) this.end(session);
      else await this.enter(session, shape, invalid);
      return "";
    }
    this.saveAnswer(question, answer.value);
    this.clearWait(session);
    const byButton = answer.button ? shape.targets(session.blockId, EdgePort.BUTTON, answer.button) : [];
    await this.enter(session, shape, byButton.length ? byButton : shape.targets(session.blockId, EdgePort.NEXT));
    return "";
  }

  private saveAnswer(question: QuestionBlock, value: string) {
    const contact = { ref: { case: "contactId" as const, value: this.contact.contactId } };
    if (question.saveToVariable) {
      this.effects.push(contactsEffect(this.nextId(), "setVariables", { contact, set: { [question.saveToVariable]: value } }));
      this.contact.variables[question.saveToVariable] = value;
    }
    if (question.saveToField) {
      this.effects.push(contactsEffect(this.nextId(), "setAnswer", { contact, field: question.saveToField, value, defaultRegion: this.settings.defaultRegion }));
      const field = ({ 1: "phone", 2: "email", 3: "freeText" } as const)[question.saveToField as 1 | 2 | 3];
      if (field) this.contact[field] = value;
    }
  }

  /** A message to the subscriber in the chat they wrote from; templates are filled from the card. */
  send(text: string, extras?: { media?: InboundMessage["attachments"]; buttons?: { text: string; payload: string; url: string }[] }) {
    const body = render(text, this.contact);
    if (!body.trim() && !extras?.media?.length) return;
    this.effects.push(
      sendEffect(this.nextId(), {
        projectId: this.projectId,
        channelId: this.contact.channelId,
        recipientId: this.contact.messengerUserId,
        contactId: this.contact.contactId,
        text: body,
        attachments: extras?.media ?? [],
        buttons: (extras?.buttons ?? []).map((b) => ({ text: render(b.text, this.contact), payload: b.payload, url: b.url })),
      }),
    );
  }

  /** Where a session comes to rest is the contact's funnel position (seed 002 filters and export read it). */
  private recordFunnelMoves() {
    for (const [id, at] of this.moved) {
      if (this.startBlocks.get(id) === at.blockId) continue;
      this.effects.push(funnelEffect(this.nextId(), at.flowId, at.blockId, this.settings.now));
    }
  }
}

