import { create, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { randomUUID } from "node:crypto";
import { CompressionTypes, Partitioners, type Kafka, type Message, type Producer } from "kafkajs";
import { injectTraceContext, runInChildSpan, SpanKind } from "@chatcrm/telemetry";
import { Coalescer } from "./batch-tools";
import { Header, PROTOBUF_CONTENT_TYPE } from "./headers";
import { schemaVersion, type TopicDefinition } from "./topic";

export interface OutgoingEvent<D extends DescMessage> {
  /** Orders events: all events with one key land on one partition, in publish order. */
  key: string;
  projectId: string;
  /**
   * The event, or its bytes already encoded with the topic's schema: an outbox that stored the encoded event
   * publishes those bytes as they are instead of decoding them only to encode them again.
   */
  value: MessageInitShape<D> | Uint8Array;
  /** Stable id for deduplication downstream; pass the business id when retrying the same event. */
  eventId?: string;
}

function encoded<D extends DescMessage>(schema: D, value: MessageInitShape<D> | Uint8Array): Buffer {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return Buffer.from(toBinary(schema, create(schema, value)));
}

/**
 * The broker refuses a record batch over message.max.bytes (1 MiB by default), and a large batch of events (a
 * mass action's, with full cards) passes that easily; sends are split well below it, in order.
 */
const MAX_REQUEST_BYTES = 512 * 1024;

function* chunksUnder(messages: Message[], maxBytes: number): Generator<Message[]> {
  let chunk: Message[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = (m.value as Buffer).length + (typeof m.key === "string" ? m.key.length : 0) + 256;
    if (chunk.length && bytes + size > maxBytes) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(m);
    bytes += size;
  }
  if (chunk.length) yield chunk;
}

/**
 * Publishes protobuf events with acks from all in-sync replicas and an idempotent producer, so a publish that
 * resolves is durable and a retried send is not duplicated by the broker. A rejected publish throws: callers
 * decide whether to retry or to keep the event in an outbox, nothing is dropped silently.
 */
export class EventPublisher {
  private readonly producer: Producer;
  private readonly queues = new Map<string, Coalescer<OutgoingEvent<DescMessage>, string>>();

  constructor(kafka: Kafka) {
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 5,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }

  async publish<D extends DescMessage>(topic: TopicDefinition<D>, event: OutgoingEvent<D>): Promise<string> {
    const [id] = await this.publishBatch(topic, [event]);
    return id!;
  }

  /** Publishes several events to one topic in one request; returns their event ids in order. */
  async publishBatch<D extends DescMessage>(topic: TopicDefinition<D>, events: OutgoingEvent<D>[]): Promise<string[]> {
    if (events.length === 0) return [];
    return runInChildSpan(
      { name: `${topic.name} publish`, kind: SpanKind.PRODUCER, attributes: { "messaging.system": "kafka", "messaging.destination.name": topic.name, "messaging.batch.message_count": events.length } },
      async () => {
        const trace = injectTraceContext({});
        const ids: string[] = [];
        const messages: Message[] = events.map((event) => {
          const id = event.eventId ?? randomUUID();
          ids.push(id);
          return {
            key: event.key,
            value: encoded(topic.schema, event.value),
            headers: {
              ...trace,
              [Header.eventId]: id,
              [Header.eventType]: topic.schema.typeName,
              [Header.schemaVersion]: schemaVersion(topic.name),
              [Header.projectId]: event.projectId,
              [Header.contentType]: PROTOBUF_CONTENT_TYPE,
            },
          };
        });
        for (const chunk of chunksUnder(messages, MAX_REQUEST_BYTES)) await this.producer.send({ topic: topic.name, acks: -1, compression: CompressionTypes.None, messages: chunk });
        return ids;
      },
    );
  }

  /**
   * Publishes one event together with whatever else is being published to the topic at the same moment: one
   * request is in flight per topic, and events that arrive meanwhile go out in the next one. Many concurrent
   * callers (webhooks, parallel sends) then cost a few produce requests instead of one each, while each caller
   * still learns whether its own event is durable. Order per key is kept: requests of one topic never overlap.
   */
  publishCoalesced<D extends DescMessage>(topic: TopicDefinition<D>, event: OutgoingEvent<D>): Promise<string> {
    let queue = this.queues.get(topic.name);
    if (!queue) {
      queue = new Coalescer((events: OutgoingEvent<DescMessage>[]) => this.publishBatch(topic as TopicDefinition, events), MAX_COALESCED);
      this.queues.set(topic.name, queue);
    }
    return queue.add(event as OutgoingEvent<DescMessage>);
  }

  /** Sends raw records as they are (the dead-letter path keeps the original bytes and headers). */
  async sendRaw(topic: string, messages: Message[]): Promise<void> {
    await this.producer.send({ topic, acks: -1, messages });
  }
}

/** Events waiting for the topic's request in flight to finish; a request takes at most this many. */
const MAX_COALESCED = 2_000;
