import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { Topics, type EventPublisher } from "@chatcrm/kafka";
import { WebhookRejected, type AccountView, type ConnectResult, type OutboundMessage, type ProviderAdapter, type SendResult } from "../provider";

/**
 * The web chat widget has no provider: a reply is "sent" once it is on the widget-replies topic, from which every
 * replica pushes it to the visitor's socket if it holds one, and the message log keeps it for the next page load.
 * Inbound arrives over the widget's own WebSocket / HTTP endpoints (widget/), not as a provider webhook.
 */
export class WebWidgetAdapter implements ProviderAdapter {
  readonly messenger = Messenger.WEB;

  constructor(private readonly publisher: EventPublisher) {}

  connect(): Promise<ConnectResult> {
    return Promise.resolve({ settings: {}, secrets: {}, accountLabel: "web chat" });
  }

  disconnect(): Promise<void> {
    return Promise.resolve();
  }

  handleWebhook(): never {
    throw new WebhookRejected(404, "web widget channels receive messages on /widget/v1, not on a webhook");
  }

  async send(account: AccountView, message: OutboundMessage): Promise<SendResult> {
    if (!message.text && message.attachments.length === 0) return { ok: false, kind: "rejected", error: "the message has neither text nor attachments" };
    try {
      await this.publisher.publishCoalesced(Topics.widgetReplies, {
        key: `${account.id}:${message.recipientId}`,
        projectId: account.projectId,
        eventId: message.commandId,
        value: {
          projectId: account.projectId,
          channelId: account.id,
          visitorId: message.recipientId,
          messageId: message.commandId,
          text: message.text,
          attachments: message.attachments,
          buttons: message.buttons,
          at: timestampFromDate(new Date()),
        },
      });
      return { ok: true, providerMessageId: message.commandId };
    } catch (err) {
      return { ok: false, kind: "transient", error: `could not queue the reply for the widget: ${(err as Error).message}` };
    }
  }
}
