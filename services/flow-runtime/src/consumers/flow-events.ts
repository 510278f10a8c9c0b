import type { DescMessage } from "@bufbuild/protobuf";
import { subscribeBatch, Topics, type ConsumedEvent, type Subscription, type TopicDefinition } from "@chatcrm/kafka";
import { FlowCommandAction } from "@chatcrm/contracts/chatcrm/flows/v1/events_pb";
import type { ContactStepper, StepRequest } from "../sessions/contact-stepper";

/**
 * Everything that moves a contact's sessions, each keyed by contact so one contact's events stay in order within
 * a topic: messages (with the card contacts resolved), start/stop commands, timers that came due, integration
 * results. Each partition's fetched batch goes to the stepper at once; it records each event id with the state
 * it produced, so a redelivery changes nothing.
 */
export function flowEventSubscriptions(stepper: ContactStepper): Subscription[] {
  const on = <D extends DescMessage>(topic: TopicDefinition<D>, toRequest: (event: ConsumedEvent<D>) => StepRequest | undefined) =>
    subscribeBatch(topic, async (events: ConsumedEvent<D>[]) => {
      await stepper.applyBatch(events.flatMap((e) => toRequest(e) ?? []));
    });
  return [
    on(Topics.resolvedMessages, ({ value, id }) => {
      const { message, contact, firstTouch } = value;
      if (!message || !contact) return undefined;
      return { projectId: message.projectId, contactId: contact.contactId, input: { kind: "message", eventId: message.messageId || id, message, firstTouch }, snapshot: contact };
    }),
    on(Topics.flowCommands, ({ value }) => {
      if (value.action !== FlowCommandAction.START && value.action !== FlowCommandAction.STOP) return undefined;
      const input =
        value.action === FlowCommandAction.STOP
          ? ({ kind: "stop", eventId: value.commandId, flowId: value.flowId } as const)
          : ({ kind: "start", eventId: value.commandId, flowId: value.flowId, blockId: value.blockId } as const);
      return { projectId: value.projectId, contactId: value.contactId, input };
    }),
    on(Topics.flowTimers, ({ value }) => ({
      projectId: value.projectId,
      contactId: value.contactId,
      input: { kind: "timer", eventId: `timer:${value.timerId}`, timerId: value.timerId, sessionId: value.sessionId },
    })),
    on(Topics.integrationResults, ({ value }) => ({ projectId: value.projectId, contactId: value.contactId, input: { kind: "result", eventId: `result:${value.requestId}`, result: value } })),
  ];
}
