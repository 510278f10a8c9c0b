import { randomUUID } from "node:crypto";
import type { SendMessageRequest } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { MessageOrigin } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { invalidArgument } from "@chatcrm/grpc";
import { Topics, type EventPublisher } from "@chatcrm/kafka";
import { normalizeMessengerId } from "@chatcrm/messenger-ids";
import { isDuplicateKey } from "@chatcrm/mongo";
import type { Model } from "mongoose";
import type { ChannelRegistry } from "../accounts/channel-registry";
import type { SendRequestDoc } from "../store/models";

const MAX_TEXT = 4096;
const MAX_BUTTONS = 10;
const MAX_ATTACHMENTS = 10;
const HTTP_URL = /^https?:\/\/\S+$/;

/** Shape checks every messenger shares; each adapter refuses what its own provider cannot carry. */
function checkContent(request: SendMessageRequest): void {
  if (!request.text.trim() && request.attachments.length === 0) throw invalidArgument("text", "write a text or attach a file");
  if (request.text.length > MAX_TEXT) throw invalidArgument("text", `at most ${MAX_TEXT} characters (this one has ${request.text.length})`);
  if (request.subject.length > 200) throw invalidArgument("subject", "at most 200 characters");
  if (request.buttons.length > MAX_BUTTONS) throw invalidArgument("buttons", `at most ${MAX_BUTTONS} buttons`);
  request.buttons.forEach((b, i) => {
    if (!b.text.trim()) throw invalidArgument(`buttons[${i}].text`, "a button needs a label");
    if (b.url && !HTTP_URL.test(b.url)) throw invalidArgument(`buttons[${i}].url`, "expected an http(s) URL");
    if (!b.url && !b.payload) throw invalidArgument(`buttons[${i}]`, "a button needs a payload or a URL");
  });
  if (request.attachments.length > MAX_ATTACHMENTS) throw invalidArgument("attachments", `at most ${MAX_ATTACHMENTS} attachments`);
  request.attachments.forEach((a, i) => {
    if (!HTTP_URL.test(a.url)) throw invalidArgument(`attachments[${i}].url`, "expected an http(s) URL the messenger can fetch");
  });
  if (request.idempotencyKey.length > 200) throw invalidArgument("idempotency_key", "at most 200 characters");
}

/**
 * An operator's message to a subscriber, or to a WhatsApp number or email address that has no contact yet
 * (seed 002): the recipient is normalised as the messenger writes it, and the message joins the chat's queue on the
 * send-commands topic like any bot message, so it keeps the chat's order and the provider's limits. Contacts
 * creates the card for a new recipient from the "sent" status.
 */
export async function operatorSend(
  deps: { registry: ChannelRegistry; publisher: EventPublisher; sendRequests: Model<SendRequestDoc> },
  projectId: string,
  operatorId: string,
  request: SendMessageRequest,
): Promise<{ commandId: string; recipientId: string }> {
  const channel = await deps.registry.connectedOwned(projectId, request.channelId);
  checkContent(request);
  if (!request.recipientId.trim()) throw invalidArgument("recipient_id", "name the recipient");
  const recipient = normalizeMessengerId(channel.account.messenger, request.recipientId);
  if (typeof recipient !== "string") throw invalidArgument("recipient_id", recipient.problem);

  let commandId: string = randomUUID();
  if (request.idempotencyKey) {
    const _id = `${projectId}|${request.idempotencyKey}`;
    try {
      await deps.sendRequests.create({ _id, commandId, recipientId: recipient, createdAt: new Date() });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const first = await deps.sendRequests.findById(_id).lean<SendRequestDoc>();
      // The first call recorded its command before publishing; publishing again under the same command id is
      // harmless (the dispatcher sends a command once) and covers a first call that failed after recording.
      commandId = first!.commandId;
    }
  }
  await deps.publisher.publish(Topics.sendCommands, {
    key: `${channel.doc._id}:${recipient}`,
    projectId,
    eventId: commandId,
    value: {
      commandId,
      projectId,
      channelId: channel.doc._id,
      recipientId: recipient,
      contactId: request.contactId,
      text: request.text,
      attachments: request.attachments,
      buttons: request.buttons,
      origin: MessageOrigin.OPERATOR,
      operatorId,
      subject: request.subject,
    },
  });
  return { commandId, recipientId: recipient };
}
