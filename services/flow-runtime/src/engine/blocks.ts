import { TimerPurpose } from "@chatcrm/contracts/chatcrm/flows/v1/events_pb";
import { EdgePort, HttpMethod, type ActionBlock, type Block } from "@chatcrm/contracts/chatcrm/flows/v1/flow_pb";
import { delayMs, type FlowShape } from "../definitions/flow-shape";
import { isIntegrationAction } from "../definitions/validate-flow";
import type { SessionRecord } from "../sessions/state-store";
import { conditionHolds } from "./conditions";
import { contactsEffect, integrationEffect, markUnreadEffect, salesPlanEffect, sendEffect, timerEffect } from "./effects";
import type { Step } from "./step";
import { render } from "./templates";

/** Where a block leaves the session: the blocks that fire next, the end, or (neither) a wait it has set. */
export interface BlockOutcome {
  next?: string[];
  end?: boolean;
}

const DEFAULT_RESULT_TIMEOUT_MS = 30_000;

function wait(step: Step, session: SessionRecord, kind: SessionRecord["wait"], purpose: TimerPurpose, afterMs: number) {
  session.wait = kind;
  session.invalidAnswers = 0;
  session.timerId = "";
  session.deadlineMs = 0;
  if (afterMs > 0) {
    session.deadlineMs = step.settings.now + afterMs;
    session.timerId = step.nextId();
    step.effects.push(timerEffect(session.timerId, session.id, purpose, session.deadlineMs));
  }
}

/** Runs one block for a session. */
export async function fireBlock(step: Step, session: SessionRecord, shape: FlowShape, block: Block): Promise<BlockOutcome> {
  const next = (port: EdgePort) => ({ next: shape.targets(block.blockId, port) });
  switch (block.kind.case) {
    case "message":
      step.send(block.kind.value.text, block.kind.value);
      return next(EdgePort.NEXT);
    case "question": {
      const q = block.kind.value;
      step.send(q.prompt?.text ?? "", q.prompt);
      wait(step, session, "answer", TimerPurpose.REPLY_TIMEOUT, Number(q.timeoutSeconds) * 1000);
      return {};
    }
    case "condition":
      return next(conditionHolds(block.kind.value.checks, step.contact) ? EdgePort.YES : EdgePort.NO);
    case "delay":
      wait(step, session, "delay", TimerPurpose.DELAY, delayMs(block.kind.value));
      return {};
    case "action":
      return runAction(step, session, shape, block.kind.value);
    default:
      return { end: true };
  }
}

async function runAction(step: Step, session: SessionRecord, shape: FlowShape, action: ActionBlock): Promise<BlockOutcome> {
  const contact = { ref: { case: "contactId" as const, value: step.contact.contactId } };
  const a = action.action;
  const after = { next: shape.targets(session.blockId, EdgePort.NEXT) };
  switch (a.case) {
    case "startFlow":
      // Moves the contact into the other flow without a trigger (seed 003); this flow goes on unless it was the one.
      await step.startSession(a.value.flowId, a.value.blockId);
      return a.value.flowId === session.flowId ? {} : after;
    case "stopFlow":
      if (!a.value.flowId || a.value.flowId === session.flowId) return { end: true };
      step.sessions.filter((s) => s.flowId === a.value.flowId).forEach((s) => step.end(s));
      return after;
    case "tags":
      step.effects.push(contactsEffect(step.nextId(), "modifyTags", { contact, add: a.value.add, remove: a.value.remove }));
      step.contact.tags = [...step.contact.tags.filter((t) => !a.value.remove.includes(t)), ...a.value.add.filter((t) => !step.contact.tags.includes(t))];
      return after;
    case "lists":
      step.effects.push(contactsEffect(step.nextId(), "modifyLists", { contact, add: a.value.add, remove: a.value.remove }));
      return after;
    case "setVariable": {
      const value = render(a.value.value, step.contact);
      step.effects.push(contactsEffect(step.nextId(), "setVariables", { contact, set: { [a.value.name]: value } }));
      step.contact.variables[a.value.name] = value;
      return after;
    }
    case "setField":
      step.effects.push(contactsEffect(step.nextId(), "setAnswer", { contact, field: a.value.field, value: render(a.value.value, step.contact), defaultRegion: step.settings.defaultRegion }));
      return after;
    case "markUnread":
      step.effects.push(markUnreadEffect(step.nextId()));
      return after;
    case "mentionOperator": {
      const id = step.nextId();
      step.effects.push(contactsEffect(id, "addComment", { contact, mentionedOperatorId: a.value.operatorId, text: render(a.value.comment, step.contact), commentId: id }));
      return after;
    }
    case "assignOperator":
      step.effects.push(contactsEffect(step.nextId(), "assignOperator", { contact, operatorId: a.value.operatorId }));
      return after;
    case "salesPlan":
      step.effects.push(salesPlanEffect(step.nextId(), a.value.plan.trim()));
      return after;
    case "email":
      email(step, a.value);
      return after;
    default:
      if (isIntegrationAction(action)) return integration(step, session, shape, action);
      return after;
  }
}

function email(step: Step, action: { channelId: string; subject: string; text: string; createSubscriber: boolean }) {
  const address = step.contact.email;
  if (!address) return step.report(`the contact has no email address; the email action in "${action.channelId}" sent nothing`);
  if (action.createSubscriber) step.effects.push(contactsEffect(step.nextId(), "importSubscribers", { channelId: action.channelId, subscriberIds: address }));
  step.effects.push(
    sendEffect(step.nextId(), { projectId: step.projectId, channelId: action.channelId, recipientId: address, text: render(action.text, step.contact), subject: render(action.subject, step.contact) }),
  );
}

/** Builds the integration request with its templates filled in, and waits for its result. */
function integration(step: Step, session: SessionRecord, shape: FlowShape, action: ActionBlock): BlockOutcome {
  const a = action.action;
  const requestId = step.nextId();
  const timeoutMs = Number(action.resultTimeoutSeconds) * 1000 || DEFAULT_RESULT_TIMEOUT_MS;
  let call;
  if (a.case === "httpRequest") {
    const h = a.value;
    let url: URL;
    try {
      url = new URL(render(h.url, step.contact, encodeURIComponent));
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http");
    } catch {
      step.report(`flow ${session.flowId}: the request URL of "${session.blockId}" is not a valid http(s) URL once filled in; took the failure branch`);
      return { next: shape.targets(session.blockId, EdgePort.FAILURE) };
    }
    for (const q of h.query) url.searchParams.append(q.name, render(q.value, step.contact));
    call = {
      case: "http" as const,
      value: {
        method: h.method || HttpMethod.GET,
        url: url.toString(),
        headers: h.headers.map((x) => ({ name: x.name, value: render(x.value, step.contact) })),
        body: h.method === HttpMethod.GET ? "" : render(h.body, step.contact),
        responseMapping: h.responseMapping,
      },
    };
  } else if (a.case === "amoDeal") {
    const { integrationId, pipelineId, stageId } = a.value;
    call = { case: "amoDeal" as const, value: { integrationId, pipelineId, stageId, dealName: render(a.value.dealName, step.contact) } };
  } else if (a.case === "amoContact") {
    call = { case: "amoContact" as const, value: { integrationId: a.value.integrationId } };
  } else {
    return { end: true };
  }
  step.effects.push(
    integrationEffect(requestId, { projectId: step.projectId, contactId: step.contact.contactId, sessionId: session.id, call, contact: step.contact, deadlineMs: BigInt(step.settings.now + timeoutMs) }),
  );
  wait(step, session, "integration", TimerPurpose.INTEGRATION_TIMEOUT, timeoutMs);
  session.requestId = requestId;
  return {};
}
