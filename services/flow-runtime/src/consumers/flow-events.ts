import { subscribe, Topics, type Subscription } from "@chatcrm/kafka";
import { FlowCommandAction } from "@chatcrm/contracts/chatcrm/flows/v1/events_pb";
import type { ContactStepper } from "../sessions/contact-stepper";

/**
 * Everything that moves a contact's sessions, each keyed by contact so one contact's events stay in order within
 * a topic: messages (with the card contacts resolved), start/stop commands, timers that came due, integration
 * results. The stepper records each event id with the state it produced, so a redelivery changes nothing.
 */
export function flowEventSubscriptions(stepper: ContactStepper): Subscription[] {
  return [
    subscribe(Topics.resolvedMessages, async ({ value, id }) => {
      const { message, contact, firstTouch } = value;
      if (!message || !contact) return;
      await stepper.apply(message.projectId, contact.contactId, { kind: "message", eventId: message.messageId || id, message, firstTouch }, contact);
    }),
    subscribe(Topics.flowCommands, async ({ value }) => {
      if (value.action !== FlowCommandAction.START && value.action !== FlowCommandAction.STOP) return;
      const input =
        value.action === FlowCommandAction.STOP
          ? ({ kind: "stop", eventId: value.commandId, flowId: value.flowId } as const)
          : ({ kind: "start", eventId: value.commandId, flowId: value.flowId, blockId: value.blockId } as const);
      await stepper.apply(value.projectId, value.contactId, input);
    }),
    subscribe(Topics.flowTimers, async ({ value }) => {
      await stepper.apply(value.projectId, value.contactId, { kind: "timer", eventId: `timer:${value.timerId}`, timerId: value.timerId, sessionId: value.sessionId });
    }),
    subscribe(Topics.integrationResults, async ({ value }) => {
      await stepper.apply(value.projectId, value.contactId, { kind: "result", eventId: `result:${value.requestId}`, result: value });
    }),
  ];
}
