import { DeliveryStatusSchema, InboundMessageSchema, SendMessageCommandSchema, SubscriberStatusChangedSchema, WidgetReplySchema } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { ContactChangedSchema, ContactResolvedMessageSchema } from "@chatcrm/contracts/chatcrm/contacts/v1/events_pb";
import { FlowCommandSchema, FunnelMovedSchema, TimerFiredSchema } from "@chatcrm/contracts/chatcrm/flows/v1/events_pb";
import { IntegrationRequestSchema, IntegrationResultSchema } from "@chatcrm/contracts/chatcrm/integrations/v1/events_pb";
import { defineTopic } from "./topic";

/**
 * Every topic of the system, with its payload type and key. Services publish and subscribe only through these
 * definitions, so a topic's name, payload and key are written down once. docs/architecture.md has the table
 * of producers and consumers.
 */
export const Topics = {
  /** channels → contacts: a subscriber wrote. */
  inboundMessages: defineTopic("channels.inbound-messages.v1", InboundMessageSchema, { key: "<channel_id>:<sender_id>" }),
  /** flow-runtime, operators (via gateway), mass actions → channels: send one message. */
  sendCommands: defineTopic("channels.send-commands.v1", SendMessageCommandSchema, { key: "<channel_id>:<recipient_id>" }),
  /** channels → contacts: an outbound message was sent, delivered, read or failed. */
  deliveryStatuses: defineTopic("channels.delivery-statuses.v1", DeliveryStatusSchema, { key: "<channel_id>:<recipient_id>" }),
  /** channels → contacts: a subscriber blocked or unblocked the bot. */
  subscriberStatuses: defineTopic("channels.subscriber-statuses.v1", SubscriberStatusChangedSchema, { key: "<channel_id>:<subscriber_id>" }),
  /** channels → channels (every replica): a reply to push over a web widget visitor's socket. */
  widgetReplies: defineTopic("channels.widget-replies.v1", WidgetReplySchema, { key: "<channel_id>:<visitor_id>" }),
  /** contacts → flow-runtime: an inbound message with its contact. */
  resolvedMessages: defineTopic("contacts.resolved-messages.v1", ContactResolvedMessageSchema, { key: "<contact_id>" }),
  /** contacts → identity-merge, export, integrations: a card was created, changed or deleted. */
  contactEvents: defineTopic("contacts.contact-events.v1", ContactChangedSchema, { key: "<contact_id>" }),
  /** contacts (mass actions), gateway → flow-runtime: start or stop a flow for a contact. */
  flowCommands: defineTopic("flows.commands.v1", FlowCommandSchema, { key: "<contact_id>" }),
  /** flow-runtime → flow-runtime: a durable timer came due (reaches the session in order with its messages). */
  flowTimers: defineTopic("flows.timers.v1", TimerFiredSchema, { key: "<contact_id>" }),
  /** flow-runtime → contacts: a session came to rest on a block (the card's funnel position and history). */
  funnelMoves: defineTopic("flows.funnel-moves.v1", FunnelMovedSchema, { key: "<contact_id>" }),
  /** flow-runtime → integrations: an external request or amoCRM call a flow waits on. */
  integrationRequests: defineTopic("integrations.requests.v1", IntegrationRequestSchema, { key: "<contact_id>" }),
  /** integrations → flow-runtime: the result of an integration request. */
  integrationResults: defineTopic("integrations.results.v1", IntegrationResultSchema, { key: "<contact_id>" }),
} as const;
