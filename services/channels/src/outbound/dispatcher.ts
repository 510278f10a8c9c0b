import { DeliveryState, type SendMessageCommand } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { Topics, type BatchContext, type ConsumedEvent } from "@chatcrm/kafka";
import type { Logger } from "@chatcrm/logging";
import { isDuplicateKey } from "@chatcrm/mongo";
import type { Model } from "mongoose";
import { SecretsUnreadable } from "../crypto/secret-box";
import type { ChannelRegistry, ResolvedChannel } from "../accounts/channel-registry";
import type { MessengerName } from "../accounts/messengers";
import type { DurablePublisher } from "../inbound/durable-publisher";
import { RecentIds } from "../inbound/message-ids";
import type { SendResult } from "../providers/provider";
import { providerRefKey, STATE_RANK, type MessageDoc, type ProviderRefDoc } from "../store/models";
import type { ProviderLimits, RateLimiter } from "./rate-limiter";
import { patientSleep, Semaphore } from "./sleep";
import { originName, statusEvent, type StatusChange } from "./status-events";

export interface DispatchOptions {
  limits: Record<MessengerName, ProviderLimits>;
  maxInFlight: number;
  maxAttempts: number;
  maxBackoffMs: number;
  maxRateLimitWaitMs: number;
}

/** Messengers that report delivery asynchronously by their own message id; sends record it for the webhook. */
const REPORTS_BY_PROVIDER_ID = new Set<MessengerName>(["whatsapp"]);

/**
 * Sends the commands of one partition batch: chats run concurrently, each chat strictly in order (a chat is one
 * Kafka key, so the next batch of it only starts after this one). A send waits for its account's and chat's rate
 * slot, is retried after the delay a provider names on "too many requests", with capped exponential backoff on
 * network errors and 5xx, and not at all when the failure is permanent. Every outcome is a delivery status; none
 * is an exception, so one bad chat never holds the partition in a crash loop.
 */
export class Dispatcher {
  private readonly done = new RecentIds(200_000);
  private readonly inFlight: Semaphore;

  constructor(
    private readonly registry: ChannelRegistry,
    private readonly durable: DurablePublisher,
    private readonly messages: Model<MessageDoc>,
    private readonly providerRefs: Model<ProviderRefDoc>,
    private readonly limiter: RateLimiter,
    private readonly options: DispatchOptions,
    private readonly logger: Logger,
  ) {
    this.inFlight = new Semaphore(options.maxInFlight);
  }

  handleBatch = async (events: ConsumedEvent<typeof Topics.sendCommands.schema>[], context: BatchContext): Promise<void> => {
    // After a crash the new owner gets the tail the old one did not commit; what the log shows as sent or failed
    // is not sent again. (A crash between the provider's answer and the status leaves a window the log cannot see.)
    const handled = context.firstSinceJoin ? await this.alreadyHandled(events.map((e) => e.value.commandId)) : new Set<string>();
    const progress = new BatchProgress(events, context.markDone);
    const seen = new Set<string>();
    const chats = new Map<string, { command: SendMessageCommand; index: number }[]>();
    events.forEach(({ value: command }, index) => {
      // A command published twice (a retried operator send) may sit twice in one batch: it is sent once.
      if (handled.has(command.commandId) || seen.has(command.commandId)) return progress.done(index);
      seen.add(command.commandId);
      const key = `${command.channelId}:${command.recipientId}`;
      const chain = chats.get(key);
      if (chain) chain.push({ command, index });
      else chats.set(key, [{ command, index }]);
    });
    // Every chat runs to its end or to the stop before the batch fails: a retry while other chats are still
    // sending would send their messages twice.
    const results = await Promise.allSettled(
      [...chats.values()].map(async (chain) => {
        for (const { command, index } of chain) {
          if (!this.done.has(command.commandId)) await this.dispatch(command, context);
          progress.done(index);
        }
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    // Abandoned (stopping, partition lost) included: the unfinished rest goes to the partition's next owner.
    if (failed) throw failed.reason;
  };

  private async alreadyHandled(commandIds: string[]): Promise<Set<string>> {
    if (commandIds.length === 0) return new Set();
    const docs = await this.messages.find({ _id: { $in: commandIds }, stateRank: { $gte: STATE_RANK.sent } }, { _id: 1 }).lean<{ _id: string }[]>();
    return new Set(docs.map((d) => d._id));
  }

  private async dispatch(command: SendMessageCommand, context: BatchContext): Promise<void> {
    let channel: ResolvedChannel | null;
    try {
      channel = await this.registry.resolve(command.channelId);
    } catch (err) {
      // A record this replica cannot decrypt fails its own sends; anything else (the database) is retried.
      if (!(err instanceof SecretsUnreadable)) throw err;
      return this.report(command, null, { state: DeliveryState.FAILED, error: err.message }, context);
    }
    if (!channel || channel.doc.projectId !== command.projectId) {
      return this.report(command, channel, { state: DeliveryState.FAILED, error: `channel ${command.channelId} does not exist in this project` }, context);
    }
    if (channel.doc.state !== "connected") {
      return this.report(command, channel, { state: DeliveryState.FAILED, error: `channel "${channel.doc.name}" is disconnected; connect it again and resend` }, context);
    }
    if (!command.recipientId) return this.report(command, channel, { state: DeliveryState.FAILED, error: "the send command names no recipient" }, context);

    const limits = this.options.limits[channel.messenger];
    const accountKey = `a:${channel.doc._id}`;
    const chatKey = `c:${channel.doc._id}:${command.recipientId}`;
    let failures = 0;
    let rateLimitedFor = 0;
    let queuedReported = false;
    for (;;) {
      const result = await this.sendInSlot(channel, command, accountKey, chatKey, limits, context);
      if (result.ok) {
        // From here on the message is out: whatever fails next is retried in place, never by sending again.
        this.done.add(command.commandId);
        if (REPORTS_BY_PROVIDER_ID.has(channel.messenger)) await this.untilDone(() => this.rememberProviderId(command, result.providerMessageId), context);
        return this.report(command, channel, { state: DeliveryState.SENT, providerMessageId: result.providerMessageId }, context);
      }
      let delay: number;
      if (result.kind === "rate_limited") {
        delay = result.retryAfterMs ?? this.backoff(++failures);
        rateLimitedFor += delay;
        if (rateLimitedFor > this.options.maxRateLimitWaitMs) {
          return this.report(command, channel, { state: DeliveryState.FAILED, error: `gave up after waiting ${Math.round(rateLimitedFor / 1000)} s on rate limits: ${result.error}` }, context);
        }
        this.limiter.holdUntil(chatKey, limits.perChat, Date.now() + delay);
      } else if (result.kind === "transient") {
        if (++failures >= this.options.maxAttempts) {
          return this.report(command, channel, { state: DeliveryState.FAILED, error: `gave up after ${failures} tries: ${result.error}` }, context);
        }
        delay = this.backoff(failures);
      } else {
        return this.report(command, channel, { state: DeliveryState.FAILED, error: result.error, permanent: result.kind === "permanent" }, context);
      }
      if (!queuedReported) {
        queuedReported = true;
        await this.report(command, channel, { state: DeliveryState.QUEUED, error: `retrying in ${Math.ceil(delay / 1000)} s: ${result.error}` }, context);
      }
      this.logger.debug({ commandId: command.commandId, channelId: command.channelId, kind: result.kind, delay }, "send will be retried");
      await patientSleep(delay, context.isStopping);
    }
  }

  /**
   * Sends once a call slot is free and then the rate slot: booking the rate slot first and queueing for a call slot
   * after it would let the real sends bunch up later than booked, and the provider counts real arrivals (429s).
   * A send that has to wait for its rate slot gives its call slot back while it waits.
   */
  private async sendInSlot(channel: ResolvedChannel, command: SendMessageCommand, accountKey: string, chatKey: string, limits: ProviderLimits, context: BatchContext): Promise<SendResult> {
    for (;;) {
      await this.inFlight.acquire();
      const wait = this.limiter.tryAcquire(accountKey, limits.perAccount, chatKey, limits.perChat);
      if (wait === 0) {
        try {
          return await this.send(channel, command);
        } finally {
          this.inFlight.release();
        }
      }
      this.inFlight.release();
      await patientSleep(wait, context.isStopping);
    }
  }

  private async send(channel: ResolvedChannel, command: SendMessageCommand): Promise<SendResult> {
    try {
      return await this.registry.adapter(channel.messenger).send(channel.account, {
        commandId: command.commandId,
        recipientId: command.recipientId,
        text: command.text,
        attachments: command.attachments,
        buttons: command.buttons,
        subject: command.subject,
      });
    } catch (err) {
      // An adapter bug must not become a crash loop over the same command; it is retried like a network error.
      this.logger.error({ err, commandId: command.commandId }, "adapter threw while sending");
      return { ok: false, kind: "transient", error: `internal error while sending: ${(err as Error).message}` };
    }
  }

  private backoff(failures: number): number {
    const exp = Math.min(this.options.maxBackoffMs, 500 * 2 ** (failures - 1));
    return Math.round(exp / 2 + Math.random() * (exp / 2));
  }

  private async rememberProviderId(command: SendMessageCommand, providerMessageId: string): Promise<void> {
    try {
      await this.providerRefs.create({
        _id: providerRefKey(command.channelId, providerMessageId),
        projectId: command.projectId,
        commandId: command.commandId,
        peerId: command.recipientId,
        contactId: command.contactId,
        origin: originName(command.origin),
        operatorId: command.operatorId,
        createdAt: new Date(),
      });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
  }

  private async report(command: SendMessageCommand, channel: ResolvedChannel | null, change: StatusChange, context: BatchContext): Promise<void> {
    if (change.state === DeliveryState.FAILED) this.logger.info({ commandId: command.commandId, channelId: command.channelId, error: change.error, permanent: change.permanent }, "send failed");
    await this.untilDone(() => this.durable.publish(Topics.deliveryStatuses, [statusEvent(command, channel?.account.messenger ?? 0, change)]), context);
    if (change.state !== DeliveryState.QUEUED) this.done.add(command.commandId);
  }

  /** Retries an idempotent step (a status publish, a record) in place until it succeeds or the consumer stops. */
  private async untilDone(step: () => Promise<unknown>, context: BatchContext): Promise<void> {
    for (let failures = 1; ; failures++) {
      try {
        await step();
        return;
      } catch (err) {
        const delay = this.backoff(Math.min(failures, 6));
        this.logger.warn({ err, retryInMs: delay }, "recording a send's outcome failed; retrying it");
        await patientSleep(delay, context.isStopping);
      }
    }
  }
}

/**
 * Which records of a batch are finished. Chats finish out of order; the committed position advances over the
 * longest finished prefix, so an abandoned batch is redelivered from its first unfinished record.
 */
class BatchProgress {
  private readonly finished: boolean[];
  private next = 0;

  constructor(
    private readonly events: { offset: string }[],
    private readonly markDone: (offset: string) => void,
  ) {
    this.finished = events.map(() => false);
  }

  done(index: number): void {
    this.finished[index] = true;
    const before = this.next;
    while (this.next < this.finished.length && this.finished[this.next]) this.next++;
    if (this.next > before) this.markDone(this.events[this.next - 1]!.offset);
  }
}
