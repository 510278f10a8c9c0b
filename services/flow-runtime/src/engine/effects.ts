import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { MessageOrigin, SendMessageCommandSchema } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { ContactsService } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { IntegrationRequestSchema } from "@chatcrm/contracts/chatcrm/integrations/v1/events_pb";
import type { TimerPurpose } from "@chatcrm/contracts/chatcrm/flows/v1/events_pb";
import type { EffectRecord } from "../sessions/state-store";

type ContactsMethods = (typeof ContactsService)["method"];
export type ContactsMethod = keyof ContactsMethods;

/** A call to the contacts service, stored as its request's binary. */
export function contactsEffect<M extends ContactsMethod>(id: string, method: M, request: MessageInitShape<ContactsMethods[M]["input"]>): EffectRecord {
  const input = ContactsService.method[method].input;
  return { id, kind: "contacts", method, payload: Buffer.from(toBinary(input, create(input, request as never))) };
}

/** Marks the last message unread only if the subscriber has written (seed 003); checked when it runs. */
export const markUnreadEffect = (id: string): EffectRecord => ({ id, kind: "contacts", method: "markUnread" });

/** The send-commands topic's key: one chat's messages stay in order. */
export const sendKey = (channelId: string, recipientId: string) => `${channelId}:${recipientId}`;

/** A message to the subscriber through channels; the effect id is the command id, so a redo is the same command. */
export function sendEffect(id: string, command: Omit<MessageInitShape<typeof SendMessageCommandSchema>, "commandId" | "origin">): EffectRecord {
  const payload = toBinary(SendMessageCommandSchema, create(SendMessageCommandSchema, { ...command, commandId: id, origin: MessageOrigin.FLOW } as never));
  return { id, kind: "send", key: sendKey(command.channelId ?? "", command.recipientId ?? ""), payload };
}

export function integrationEffect(id: string, request: MessageInitShape<typeof IntegrationRequestSchema>): EffectRecord {
  return { id, kind: "integration", payload: Buffer.from(toBinary(IntegrationRequestSchema, create(IntegrationRequestSchema, { ...request, requestId: id } as never))) };
}

export const timerEffect = (id: string, sessionId: string, purpose: TimerPurpose, dueAtMs: number): EffectRecord => ({ id, kind: "timer", sessionId, purpose, dueAtMs });

export const salesPlanEffect = (id: string, plan: string): EffectRecord => ({ id, kind: "salesPlan", plan });

/** The contact's funnel position moved (published to contacts, which keeps it on the card). */
export const funnelEffect = (id: string, flowId: string, blockId: string, atMs: number): EffectRecord => ({ id, kind: "funnel", flowId, blockId, atMs });
