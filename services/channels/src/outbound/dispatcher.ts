import { DeliveryState, type SendMessageCommand } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { Topics, type BatchContext, type ConsumedEvent } from "@chatcrm/kafka";
import type { Logger } from "@chatcrm/logging";
import { isDuplicateKey } from "@chatcrm/mongo";
import type { Model } from "mongoose";
import type { ChannelRegistry, ResolvedChannel } from "../accounts/channel-registry";
import type { MessengerName } from "../accounts/messengers";
import type { DurablePublisher } from "../inbound/durable-publisher";
import { RecentIds } from "../inbound/message-ids";
import type { SendResult } from "../providers/provider";
import { providerRefKey, STATE_RANK, type MessageDoc, type ProviderRefDoc } from "../store/models";
import type { ProviderLimits, RateLimiter } from "./rate-limiter";
import { Abandoned, patientSleep, Semaphore } from "./sleep";
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
    const commands = events.map((e) => e.value).filter((c) => !this.done.has(c.commandId));
    // After a crash the new owner gets the tail the old one did not commit; what the log shows as sent or failed
    // is not sent again. (A crash between the provider's answer and the status leaves a window the log cannot see.)
    const handled = context.firstSinceJoin ? await this.alreadyHandled(commands.map((c) => c.commandId)) : new Set<string>();
    const chats = new Map<string, SendMessageCommand[]>();
    for (const command of commands) {
      if (handled.has(command.commandId)) continue;
      const key = `${command.channelId}:${command.recipientId}`;
      const chain = chats.get(key);
      if (chain) chain.push(command);
      else chats.set(key, [command]);
    }
    try {
      await Promise.all([...chats.values()].map(async (chain) => {
        for (const command of chain) {
          await this.dispatch(command, context);
          this.done.add(command.commandId);
        }
      }));
    } catch (err) {
      if (err instanceof Abandoned) return;
      throw err;
    }
  };

  private async alreadyHandled(commandIds: string[]): Promise<Set<string>> {
    if (commandIds.length === 0) return new Set();
    const docs = await this.messages.find({ _id: { $in: commandIds }, stateRank: { $gte: STATE_RANK.sent } }, { _id: 1 }).lean<{ _id: string }[]>();
    return new Set(docs.map((d) => d._id));
  }

  private async dispatch(command: SendMessageCommand, context: BatchContext): Promise<void> {
    const channel = await this.registry.resolve(command.channelId);
    if (!channel || channel.doc.projectId !== command.projectId) {
      return this.report(command, channel, { state: DeliveryState.FAILED, error: `channel ${command.channelId} does not exist in this project` });
    }
    if (channel.doc.state !== "connected") {
      return this.report(command, channel, { state: DeliveryState.FAILED, error: `channel "${channel.doc.name}" is disconnected; connect it again and resend` });
    }
    if (!command.recipientId) return this.report(command, channel, { state: DeliveryState.FAILED, error: "the send command names no recipient" });

    const limits = this.options.limits[channel.messenger];
    const accountKey = `a:${channel.doc._id}`;
    const chatKey = `c:${channel.doc._id}:${command.recipientId}`;
    let failures = 0;
    let rateLimitedFor = 0;
    let queuedReported = false;
    for (;;) {
      const result = await this.sendInSlot(channel, command, accountKey, chatKey, limits, context);
      if (result.ok) {
        if (REPORTS_BY_PROVIDER_ID.has(channel.messenger)) await this.rememberProviderId(command, result.providerMessageId);
        return this.report(command, channel, { state: DeliveryState.SENT, providerMessageId: result.providerMessageId });
      }
      let delay: number;
      if (result.kind === "rate_limited") {
        delay = result.retryAfterMs ?? this.backoff(++failures);
        rateLimitedFor += delay;
        if (rateLimitedFor > this.options.maxRateLimitWaitMs) {
          return this.report(command, channel, { state: DeliveryState.FAILED, error: `gave up after waiting ${Math.round(rateLimitedFor / 1000)} s on rate limits: ${result.error}` });
        }
        this.limiter.holdUntil(chatKey, limits.perChat, Date.now() + delay);
      } else if (result.kind === "transient") {
        if (++failures >= this.options.maxAttempts) {
          return this.report(command, channel, { state: DeliveryState.FAILED, error: `gave up after ${failures} tries: ${result.error}` });
        }
        delay = this.backoff(failures);
      } else {
        return this.report(command, channel, { state: DeliveryState.FAILED, error: result.error, permanent: result.kind === "permanent" });
      }
      if (!queuedReported) {
        queuedReported = true;
        await this.report(command, channel, { state: DeliveryState.QUEUED, error: `retrying in ${Math.ceil(delay / 1000)} s: ${result.error}` });
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

  private async report(command: SendMessageCommand, channel: ResolvedChannel | null, change: StatusChange): Promise<void> {
    if (change.state === DeliveryState.FAILED) this.logger.info({ commandId: command.commandId, channelId: command.channelId, error: change.error, permanent: change.permanent }, "send failed");
    await this.durable.publish(Topics.deliveryStatuses, [statusEvent(command, channel?.account.messenger ?? 0, change)]);
  }
}
