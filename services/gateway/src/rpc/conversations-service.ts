import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { ChannelsService } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import type { Contact, ContactRef, ContactsService } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { ConversationsService } from "@chatcrm/contracts/chatcrm/gateway/v1/conversations_service_pb";
import { invalidArgument, notFound, type GrpcClient } from "@chatcrm/grpc";
import { backendMetadata } from "../access/caller";
import { backendCall as backend } from "../proxy/connect-errors";
import { callerOf } from "../proxy/forward";

export interface ConversationsDeps {
  contacts: GrpcClient<typeof ContactsService>;
  channels: GrpcClient<typeof ChannelsService>;
  timeoutMs: number;
}

/** Shaping only: a card leads to its channel and the subscriber's id there (channels keeps chats by peer id). */
export function conversationsService(deps: ConversationsDeps): ServiceImpl<typeof ConversationsService> {
  const options = (ctx: HandlerContext) => ({ metadata: backendMetadata(callerOf(ctx)), timeoutMs: deps.timeoutMs, signal: ctx.signal });
  const card = async (ref: ContactRef | undefined, ctx: HandlerContext, field = "contact"): Promise<Contact> => {
    if (!ref?.ref.case) throw invalidArgument(field, "is required: a contact_id or client_id");
    const { contact } = await backend("contacts", deps.contacts.getContact({ contact: ref }, options(ctx)));
    if (!contact) throw notFound("contact");
    return contact;
  };

  return {
    sendToContact: async (req, ctx) => {
      const contact = await card(req.contact, ctx);
      const target = req.channelId && req.channelId !== contact.channelId ? await linkedIn(contact, req.channelId, ctx) : contact;
      const sent = await backend(
        "channels",
        deps.channels.sendMessage(
          {
            channelId: target.channelId,
            recipientId: target.messengerUserId,
            contactId: target.contactId,
            text: req.text,
            attachments: req.attachments,
            buttons: req.buttons,
            subject: req.subject,
            idempotencyKey: req.idempotencyKey,
          },
          options(ctx),
        ),
      );
      return { commandId: sent.commandId, contactId: target.contactId, channelId: target.channelId, recipientId: sent.recipientId };
    },
    listContactMessages: async (req, ctx) => {
      const contact = await card(req.contact, ctx);
      const page = await backend(
        "channels",
        deps.channels.listMessages({ channelId: contact.channelId, peerId: contact.messengerUserId, pageSize: req.pageSize, pageToken: req.pageToken }, options(ctx)),
      );
      return { messages: page.messages, nextPageToken: page.nextPageToken };
    },
  };

  /** The same person in another channel (seed 004): one of the card's linked contacts. */
  async function linkedIn(contact: Contact, channelId: string, ctx: HandlerContext): Promise<Contact> {
    const linked = await Promise.all(
      contact.linkedContactIds.map((id) => card({ ref: { case: "contactId", value: id } } as ContactRef, ctx).catch(() => undefined)),
    );
    const match = linked.find((c) => c?.channelId === channelId);
    if (!match) throw invalidArgument("channel_id", "neither this contact nor its linked contacts have a chat in that channel");
    return match;
  }
}
