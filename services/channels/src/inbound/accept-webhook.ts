import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DeliveryState, type Attachment, type InboundMessageSchema } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { Topics } from "@chatcrm/kafka";
import type { Logger } from "@chatcrm/logging";
import type { Model } from "mongoose";
import type { ResolvedChannel } from "../accounts/channel-registry";
import { originOf } from "../outbound/status-events";
import type { ProviderStatusReport, WebhookOutcome } from "../providers/provider";
import { providerRefKey, type ProviderRefDoc } from "../store/models";
import type { DurableEvent, DurablePublisher } from "./durable-publisher";
import { derivedId, RecentIds } from "./message-ids";

/** The longest text an inbound message carries on; a longer email is cut here (the CRM shows a dialog, not an archive). */
const MAX_TEXT = 64 * 1024;

const STATE: Record<ProviderStatusReport["state"], DeliveryState> = {
  sent: DeliveryState.SENT,
  delivered: DeliveryState.DELIVERED,
  read: DeliveryState.READ,
  failed: DeliveryState.FAILED,
};

/**
 * Turns what a webhook carried into events and makes them durable before the provider gets its 200: inbound
 * messages (keyed by chat, so one subscriber's messages stay in order), block/unblock changes, and delivery reports
 * mapped back to our send commands. A redelivery seen recently is dropped here; one seen longer ago gets the same
 * derived event id and is dropped by the consumers.
 */
export class WebhookAcceptor {
  private readonly recent = new RecentIds(100_000);

  constructor(
    private readonly durable: DurablePublisher,
    private readonly providerRefs: Model<ProviderRefDoc>,
    private readonly media: { rewrite(channel: ResolvedChannel, attachments: Attachment[] | undefined): Attachment[] | undefined },
    private readonly logger: Logger,
  ) {}

  async accept(channel: ResolvedChannel, outcome: WebhookOutcome): Promise<void> {
    const { doc } = channel;
    const messenger = channel.account.messenger;
    const messages: DurableEvent<typeof InboundMessageSchema>[] = [];
    for (const m of outcome.messages) {
      const messageId = derivedId(doc._id, m.providerMessageId);
      if (this.recent.has(messageId)) continue;
      messages.push({
        eventId: messageId,
        projectId: doc.projectId,
        key: `${doc._id}:${m.senderId}`,
        value: {
          ...(m as object),
          // A record over the broker's 1 MiB limit would be refused for good (and with it the request it shares).
          text: (m.text ?? "").slice(0, MAX_TEXT),
          subject: (m.subject ?? "").slice(0, 1_000),
          attachments: this.media.rewrite(channel, m.attachments as Attachment[] | undefined),
          messageId,
          projectId: doc.projectId,
          channelId: doc._id,
          messenger,
          sentAt: m.sentAt ?? timestampFromDate(new Date()),
        } as MessageInitShape<typeof InboundMessageSchema>,
      });
    }
    const blocks = outcome.subscriberStatuses
      .map((s) => ({ s, eventId: derivedId(doc._id, s.providerEventId, "subscriber") }))
      .filter(({ eventId }) => !this.recent.has(eventId))
      .map(({ s, eventId }) => ({
        eventId,
        projectId: doc.projectId,
        key: `${doc._id}:${s.subscriberId}`,
        value: { eventId, projectId: doc.projectId, channelId: doc._id, messenger, subscriberId: s.subscriberId, blocked: s.blocked, at: timestampFromDate(s.at) },
      }));
    const statuses = await this.deliveryReports(channel, outcome.statuses);

    await Promise.all([
      this.durable.publish(Topics.inboundMessages, messages),
      this.durable.publish(Topics.subscriberStatuses, blocks),
      this.durable.publish(Topics.deliveryStatuses, statuses),
    ]);
    for (const e of [...messages, ...blocks, ...statuses]) this.recent.add(e.eventId);
    if (outcome.ignored.length) this.logger.info({ channelId: doc._id, ignored: outcome.ignored }, "acknowledged webhook content this service does not handle");
  }

  private async deliveryReports(channel: ResolvedChannel, reports: ProviderStatusReport[]) {
    const { doc } = channel;
    const events = [];
    const refs = await this.findRefs(doc._id, reports.map((r) => r.providerMessageId));
    for (const report of reports) {
      const ref = refs.get(report.providerMessageId);
      if (!ref) {
        // A message sent outside this system (from the phone app) or long forgotten: nothing of ours to update.
        this.logger.debug({ channelId: doc._id, providerMessageId: report.providerMessageId }, "delivery report for a message we did not send");
        continue;
      }
      const eventId = derivedId(doc._id, `${report.providerMessageId}:${report.state}`, "status");
      events.push({
        eventId,
        projectId: doc.projectId,
        key: `${doc._id}:${ref.peerId}`,
        value: {
          statusId: eventId,
          commandId: ref.commandId,
          projectId: doc.projectId,
          channelId: doc._id,
          recipientId: ref.peerId,
          contactId: ref.contactId,
          state: STATE[report.state],
          error: report.error ?? "",
          permanent: report.permanent ?? false,
          at: timestampFromDate(report.at),
          origin: originOf(ref.origin),
          operatorId: ref.operatorId,
          messenger: channel.account.messenger,
          providerMessageId: report.providerMessageId,
        },
      });
    }
    return events;
  }

  /**
   * The dispatcher records the provider's id right after the provider answers, and the provider may post its first
   * report at the same moment: the ids still missing are looked up again briefly (all of a webhook's at once, so a
   * webhook full of reports about messages sent from the phone app waits 2.5 s in all, not per report).
   */
  private async findRefs(channelId: string, providerMessageIds: string[]): Promise<Map<string, ProviderRefDoc>> {
    const found = new Map<string, ProviderRefDoc>();
    for (let attempt = 0; attempt < 4; attempt++) {
      const missing = [...new Set(providerMessageIds)].filter((id) => !found.has(id));
      if (missing.length === 0) break;
      if (attempt > 0) await new Promise((r) => setTimeout(r, 250 * attempt));
      const docs = await this.providerRefs.find({ _id: { $in: missing.map((id) => providerRefKey(channelId, id)) } }).lean<ProviderRefDoc[]>();
      for (const d of docs) found.set(d._id.slice(channelId.length + 1), d);
    }
    return found;
  }
}
