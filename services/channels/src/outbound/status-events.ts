import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DeliveryState, MessageOrigin, type DeliveryStatusSchema, type Messenger, type SendMessageCommand } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import type { DurableEvent } from "../inbound/durable-publisher";

const ORIGINS: Record<string, MessageOrigin> = { flow: MessageOrigin.FLOW, operator: MessageOrigin.OPERATOR, mass_action: MessageOrigin.MASS_ACTION };

export const originOf = (name: string): MessageOrigin => ORIGINS[name] ?? MessageOrigin.UNSPECIFIED;
export const originName = (origin: MessageOrigin): string => Object.entries(ORIGINS).find(([, o]) => o === origin)?.[0] ?? "unspecified";

export interface StatusChange {
  state: DeliveryState;
  error?: string;
  permanent?: boolean;
  providerMessageId?: string;
}

/**
 * A delivery status about one send command, carrying what contacts needs for the dialog preview. Its id is derived
 * from the command and the state, so a status re-published after a crash is one event downstream.
 */
export function statusEvent(command: SendMessageCommand, messenger: Messenger, change: StatusChange, at = new Date()): DurableEvent<typeof DeliveryStatusSchema> {
  const statusId = `${command.commandId}:${DeliveryState[change.state].toLowerCase()}`;
  const value: MessageInitShape<typeof DeliveryStatusSchema> = {
    statusId,
    commandId: command.commandId,
    projectId: command.projectId,
    channelId: command.channelId,
    recipientId: command.recipientId,
    contactId: command.contactId,
    state: change.state,
    error: change.error ?? "",
    permanent: change.permanent ?? false,
    at: timestampFromDate(at),
    origin: command.origin,
    operatorId: command.operatorId,
    excerpt: command.text.slice(0, 200),
    hasAttachment: command.attachments.length > 0,
    messenger,
    providerMessageId: change.providerMessageId ?? "",
  };
  return { eventId: statusId, projectId: command.projectId, key: `${command.channelId}:${command.recipientId}`, value };
}
