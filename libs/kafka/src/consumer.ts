import { fromBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { Consumer, EachBatchPayload, EachMessagePayload, Kafka, KafkaMessage } from "kafkajs";
import type { Logger } from "@chatcrm/logging";
import { runInRemoteContext, SpanKind } from "@chatcrm/telemetry";
import { Abandoned, handleOneByOne, HandlerHealth } from "./batch-isolation";
import { DeadLetterHeader, Header, headersToStrings } from "./headers";
import type { ProcessedEventStore } from "./processed-events";
import { whileTopicsSettle } from "./provision";
import type { EventPublisher } from "./publisher";
import { deadLetterTopic, type TopicDefinition } from "./topic";

/** One decoded event as a handler sees it. */
export interface ConsumedEvent<D extends DescMessage> {
  id: string;
  type: string;
  projectId: string;
  key: string;
  value: MessageShape<D>;
  headers: Record<string, string>;
  topic: string;
  partition: number;
  offset: string;
}

export type EventHandler<D extends DescMessage> = (event: ConsumedEvent<D>) => Promise<void>;

/** What a batch handler learns about the batch besides its events. */
export interface BatchContext {
  /**
   * True for the first batch of a partition since this consumer joined the group: its records may already have
   * been handled by a previous owner that crashed before committing, so a handler with side effects outside
   * Kafka (a message sent to a messenger) checks its own records for them.
   */
  firstSinceJoin: boolean;
  /**
   * True once the consumer is stopping or has lost the partition (a rebalance): long waits should give up. What the
   * handler has not marked done (markDone) is redelivered to the partition's next owner.
   */
  isStopping(): boolean;
  /**
   * Marks the batch's records up to and including `offset` as handled, so a batch abandoned half-way (stop,
   * rebalance) is redelivered from the first unfinished record rather than from its start. Optional: a batch that
   * returns normally is marked done whole.
   */
  markDone(offset: string): void;
}

export type BatchHandler<D extends DescMessage> = (events: ConsumedEvent<D>[], context: BatchContext) => Promise<void>;

export interface Subscription<D extends DescMessage = DescMessage> {
  topic: TopicDefinition<D>;
  handler?: EventHandler<D>;
  batchHandler?: BatchHandler<D>;
}

/** Pairs a topic with its handler, keeping the handler's event type tied to the topic's payload. */
export const subscribe = <D extends DescMessage>(topic: TopicDefinition<D>, handler: EventHandler<D>): Subscription =>
  ({ topic, handler }) as unknown as Subscription;

/**
 * A handler that takes a partition's whole fetched batch at once: for work that gains from batching (bulk writes)
 * or that runs many keys of one partition concurrently while keeping each key in order (outbound sends). It must
 * be idempotent: a failing batch is retried whole, with backoff. After the retry policy's attempts it is handled
 * one event at a time, and an event that keeps failing alone goes to the dead-letter topic once another handler
 * call has succeeded since it first failed (see handleOneByOne): a batch mostly fails because the infrastructure
 * is away, and then nothing is dead-lettered. A record that does not decode is dead-lettered at once. The
 * processed-event store is not consulted.
 */
export const subscribeBatch = <D extends DescMessage>(topic: TopicDefinition<D>, batchHandler: BatchHandler<D>): Subscription =>
  ({ topic, batchHandler }) as unknown as Subscription;

export interface RetryPolicy {
  /** Tries in all, the first included, before the record goes to the dead-letter topic. */
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

export interface EventConsumerOptions {
  groupId: string;
  subscriptions: Subscription[];
  /** Used to write dead letters. */
  publisher: EventPublisher;
  logger: Logger;
  processed?: ProcessedEventStore;
  retry?: Partial<RetryPolicy>;
  /** Read topics from their beginning when the group has no committed offset; on by default so nothing is missed. */
  fromBeginning?: boolean;
  /** Partitions handled at once (records of one partition, hence of one key, always one at a time); 1 by default. */
  partitionsConsumedConcurrently?: number;
}

class StoppingError extends Error {}

/** Heartbeat errors that mean this member is being or has been moved out of the group's current generation. */
const LOST_MEMBERSHIP = new Set(["REBALANCE_IN_PROGRESS", "UNKNOWN_MEMBER_ID", "ILLEGAL_GENERATION", "FENCED_INSTANCE_ID"]);

/**
 * Consumes protobuf events one at a time per partition. A failing handler is retried with exponential backoff
 * and jitter; once the attempts are spent, the record goes to <topic>.dlq with the error and the consumer moves
 * on. A value that does not decode goes there at once, since retrying cannot fix it. Events already handled by
 * the group (by event id) are skipped. Offsets are committed only after a record is handled or dead-lettered.
 */
export class EventConsumer {
  private readonly consumer: Consumer;
  private readonly byTopic: Map<string, Subscription>;
  private readonly retry: RetryPolicy;
  private readonly log: Logger;
  private stopping = false;
  private readonly stopWaiters = new Set<() => void>();

  constructor(
    kafka: Kafka,
    private readonly options: EventConsumerOptions,
  ) {
    this.consumer = kafka.consumer({ groupId: options.groupId, allowAutoTopicCreation: false, sessionTimeout: 30_000, heartbeatInterval: 3_000 });
    this.byTopic = new Map(options.subscriptions.map((s) => [s.topic.name, s]));
    const batched = options.subscriptions.filter((s) => s.batchHandler).length;
    // kafkajs runs one consumer either per record or per batch.
    if (batched > 0 && batched < options.subscriptions.length) throw new Error(`consumer group ${options.groupId} mixes per-record and per-batch subscriptions; use two consumers`);
    this.retry = { attempts: 5, initialDelayMs: 200, maxDelayMs: 5_000, ...options.retry };
    this.log = options.logger.child({ consumerGroup: options.groupId });
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await whileTopicsSettle(() => this.consumer.subscribe({ topics: [...this.byTopic.keys()], fromBeginning: this.options.fromBeginning ?? true }));
    const partitionsConsumedConcurrently = this.options.partitionsConsumedConcurrently ?? 1;
    if ([...this.byTopic.values()].some((s) => s.batchHandler)) {
      this.consumer.on(this.consumer.events.GROUP_JOIN, () => this.seenSinceJoin.clear());
      await this.consumer.run({ partitionsConsumedConcurrently, eachBatchAutoResolve: false, eachBatch: (payload) => this.handleBatch(payload) });
    } else {
      await this.consumer.run({ partitionsConsumedConcurrently, eachMessage: (payload) => this.handle(payload) });
    }
  }

  private readonly seenSinceJoin = new Set<string>();
  /** Proof that the infrastructure answers, for dead-lettering an event that fails alone (batch handlers only). */
  private readonly health = new HandlerHealth();

  private async handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, resolveOffset, commitOffsetsIfNecessary, isRunning, isStale } = payload;
    const subscription = this.byTopic.get(batch.topic);
    if (!subscription?.batchHandler || batch.messages.length === 0) return;
    const partitionKey = `${batch.topic}:${batch.partition}`;
    const firstSinceJoin = !this.seenSinceJoin.has(partitionKey);
    const events: ConsumedEvent<DescMessage>[] = [];
    for (const message of batch.messages) {
      const headers = headersToStrings(message.headers);
      const event = this.decode(subscription, batch.topic, batch.partition, message, headers);
      if (event) events.push(event);
      else await this.deadLetter(batch.topic, batch.partition, message, headers, `cannot decode ${subscription.topic.schema.typeName}`, 1);
    }
    // The group coordinator drops a member that stays silent past the session timeout; a batch can wait on a
    // provider's retry-after far longer than that. A heartbeat refused because the group is rebalancing means the
    // partition may go to another member: the handler is told to stop, so two owners never work on it at once.
    let lost = false;
    const beat = setInterval(
      () =>
        void heartbeat().catch((err: { type?: string }) => {
          if (err?.type && LOST_MEMBERSHIP.has(err.type)) lost = true;
        }),
      3_000,
    );
    const isStopping = () => lost || this.stopping || !isRunning() || isStale();
    const markDone = (offset: string) => {
      resolveOffset(offset);
      void commitOffsetsIfNecessary().catch(() => undefined);
    };
    const context = { firstSinceJoin, isStopping, markDone };
    const handler = subscription.batchHandler;
    try {
      for (let attempt = 1; ; attempt++) {
        const startedAt = Date.now();
        try {
          await handler(events, context);
          this.health.succeeded(startedAt);
          break;
        } catch (err) {
          if (isStopping()) return;
          if (attempt >= this.retry.attempts && events.length > 0) {
            this.log.warn({ err, topic: batch.topic, partition: batch.partition, records: events.length, attempt }, "batch handler keeps failing; handling the batch one event at a time");
            const messages = new Map(batch.messages.map((m) => [m.offset, m]));
            await handleOneByOne(events, {
              call: (event) => handler([event], context),
              attempts: this.retry.attempts,
              health: this.health,
              pause: (n) => this.sleep(this.backoff(Math.min(n, 10))),
              deadLetter: (event, error, attempts) => this.deadLetter(batch.topic, batch.partition, messages.get(event.offset)!, event.headers, error, attempts),
              retrying: (event, e, n) => this.log.warn({ err: e, topic: batch.topic, partition: batch.partition, eventId: event.id, attempt: n }, "event handler failed on its own; retrying"),
              markDone: (event) => markDone(event.offset),
              isStopping,
            });
            break;
          }
          const delay = this.backoff(Math.min(attempt, 10));
          this.log.warn({ err, topic: batch.topic, partition: batch.partition, records: events.length, attempt, retryInMs: delay }, "batch handler failed; retrying the batch");
          await this.sleep(delay);
        }
      }
    } catch (err) {
      if (err instanceof StoppingError || err instanceof Abandoned) return;
      throw err;
    } finally {
      clearInterval(beat);
    }
    this.seenSinceJoin.add(partitionKey);
    resolveOffset(batch.messages[batch.messages.length - 1]!.offset);
    await commitOffsetsIfNecessary();
  }

  private decode(subscription: Subscription, topic: string, partition: number, message: KafkaMessage, headers: Record<string, string>): ConsumedEvent<DescMessage> | undefined {
    let value: MessageShape<DescMessage>;
    try {
      value = fromBinary(subscription.topic.schema, message.value ?? new Uint8Array());
    } catch {
      return undefined;
    }
    return {
      id: headers[Header.eventId] || `${topic}:${partition}:${message.offset}`,
      type: headers[Header.eventType] ?? subscription.topic.schema.typeName,
      projectId: headers[Header.projectId] ?? "",
      key: message.key?.toString() ?? "",
      value,
      headers,
      topic,
      partition,
      offset: message.offset,
    };
  }

  /** Calls `fn` each time this consumer (re)joins its group: partitions may have come to it from a member that left or crashed. */
  onJoin(fn: () => void): void {
    this.consumer.on(this.consumer.events.GROUP_JOIN, () => fn());
  }

  /** Resolves once the group is joined and partitions are assigned; tests use it before publishing. */
  waitUntilJoined(timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`consumer group ${this.options.groupId} did not join in ${timeoutMs} ms`)), timeoutMs);
      const off = this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
        clearTimeout(timer);
        off();
        resolve();
      });
    });
  }

  /** Stops fetching, lets the record in hand finish (a pending retry is abandoned and redelivered later), leaves the group. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const wake of this.stopWaiters) wake();
    await this.consumer.disconnect();
  }

  private async handle({ topic, partition, message, heartbeat }: EachMessagePayload): Promise<void> {
    const subscription = this.byTopic.get(topic);
    if (!subscription) return;
    const headers = headersToStrings(message.headers);
    const id = headers[Header.eventId] || `${topic}:${partition}:${message.offset}`;
    const processed = this.options.processed;
    if (processed && (await processed.has(this.options.groupId, id))) {
      this.log.debug({ topic, eventId: id }, "skipping an event already handled");
      return;
    }

    await runInRemoteContext(
      headers,
      { name: `${topic} process`, kind: SpanKind.CONSUMER, attributes: { "messaging.system": "kafka", "messaging.destination.name": topic, "messaging.kafka.message.offset": message.offset } },
      async () => {
        const event = this.decode(subscription, topic, partition, message, headers);
        if (!event) {
          await this.deadLetter(topic, partition, message, headers, `cannot decode ${subscription.topic.schema.typeName}`, 1);
          return;
        }
        for (let attempt = 1; ; attempt++) {
          try {
            await subscription.handler!(event);
            break;
          } catch (err) {
            if (attempt >= this.retry.attempts) {
              await this.deadLetter(topic, partition, message, headers, (err as Error).message ?? String(err), attempt);
              break;
            }
            const delay = this.backoff(attempt);
            this.log.warn({ err, topic, eventId: id, attempt, retryInMs: delay }, "event handler failed; retrying");
            await this.sleep(delay);
            await heartbeat();
          }
        }
      },
    );
    if (processed) await processed.add(this.options.groupId, id);
  }

  private backoff(attempt: number): number {
    const exp = Math.min(this.retry.maxDelayMs, this.retry.initialDelayMs * 2 ** (attempt - 1));
    return Math.round(exp / 2 + Math.random() * (exp / 2));
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.reject(new StoppingError("consumer is stopping"));
    return new Promise((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        this.stopWaiters.delete(wake);
        reject(new StoppingError("consumer is stopping"));
      };
      const timer = setTimeout(() => {
        this.stopWaiters.delete(wake);
        resolve();
      }, ms);
      this.stopWaiters.add(wake);
    });
  }

  private async deadLetter(topic: string, partition: number, message: EachMessagePayload["message"], headers: Record<string, string>, error: string, attempts: number) {
    const dlq = deadLetterTopic(topic);
    await this.options.publisher.sendRaw(dlq, [
      {
        key: message.key,
        value: message.value,
        headers: {
          ...headers,
          [DeadLetterHeader.error]: error.slice(0, 2_000),
          [DeadLetterHeader.originalTopic]: topic,
          [DeadLetterHeader.originalPartition]: String(partition),
          [DeadLetterHeader.originalOffset]: message.offset,
          [DeadLetterHeader.consumerGroup]: this.options.groupId,
          [DeadLetterHeader.attempts]: String(attempts),
          [DeadLetterHeader.failedAt]: new Date().toISOString(),
        },
      },
    ]);
    this.log.error({ topic, dlq, offset: message.offset, eventId: headers[Header.eventId], error, attempts }, "event moved to the dead-letter topic");
  }
}
