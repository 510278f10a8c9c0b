import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { trace } from "@opentelemetry/api";
import { Kafka } from "kafkajs";
import { InboundMessageSchema, MessageKind, Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { MongoDatabase, MongoProcessedEventStore } from "@chatcrm/mongo";
import { activeTraceId } from "@chatcrm/telemetry";
import { installTestTracing, testInfra, testLogger, uniqueDatabase, uniqueName, waitFor } from "@chatcrm/testing";
import {
  createKafka,
  deadLetterTopic,
  DeadLetterHeader,
  defineTopic,
  ensureTopics,
  EventConsumer,
  EventPublisher,
  Header,
  headersToStrings,
  subscribe,
  subscribeBatch,
  type ConsumedEvent,
  type Subscription,
} from "../../src";

const logger = testLogger("kafka-test");
const tracing = installTestTracing();
let kafka: Kafka;
let publisher: EventPublisher;
let mongo: MongoDatabase;
const consumers: EventConsumer[] = [];

const newTopic = () => defineTopic(`test.${uniqueName("inbound")}.v1`, InboundMessageSchema, { key: "<channel_id>:<sender_id>", partitions: 2 });

async function startConsumer(topic: ReturnType<typeof newTopic>, handler: (e: ConsumedEvent<typeof InboundMessageSchema>) => Promise<void>, processed?: MongoProcessedEventStore) {
  return startGroup(subscribe(topic, handler), processed);
}

async function startGroup(subscription: Subscription, processed?: MongoProcessedEventStore) {
  const consumer = new EventConsumer(kafka, {
    groupId: uniqueName("group"),
    subscriptions: [subscription],
    publisher,
    logger,
    processed,
    retry: { attempts: 3, initialDelayMs: 20, maxDelayMs: 50 },
  });
  consumers.push(consumer);
  const joined = consumer.waitUntilJoined();
  await consumer.start();
  await joined;
  return consumer;
}

/** Reads every record of a topic from the beginning with a throwaway group. */
async function readAll(topicName: string, expected: number) {
  const records: { key: string; value: Buffer | null; headers: Record<string, string> }[] = [];
  const reader = kafka.consumer({ groupId: uniqueName("reader") });
  await reader.connect();
  await reader.subscribe({ topic: topicName, fromBeginning: true });
  await reader.run({ eachMessage: async ({ message }) => void records.push({ key: message.key?.toString() ?? "", value: message.value, headers: headersToStrings(message.headers) }) });
  await waitFor(`${expected} record(s) on ${topicName}`, () => records.length >= expected);
  await reader.disconnect();
  return records;
}

beforeAll(async () => {
  const { kafkaBrokers, mongoUrl } = testInfra();
  kafka = createKafka({ brokers: kafkaBrokers, clientId: "kafka-lib-test", logger });
  publisher = new EventPublisher(kafka);
  await publisher.connect();
  mongo = new MongoDatabase({ url: mongoUrl, database: uniqueDatabase("kafka"), logger });
  await mongo.connect();
});

afterAll(async () => {
  await Promise.all(consumers.map((c) => c.stop()));
  await publisher.disconnect();
  await mongo.connection.dropDatabase();
  await mongo.close();
  tracing.uninstall();
});

async function provision(...topics: ReturnType<typeof newTopic>[]) {
  const admin = kafka.admin();
  await admin.connect();
  const created = await ensureTopics(admin, topics, { replicationFactor: 1 });
  await admin.disconnect();
  return created;
}

const inbound = (text: string) => ({
  messageId: uniqueName("m"),
  projectId: "project-1",
  channelId: "channel-1",
  messenger: Messenger.TELEGRAM,
  senderId: "777",
  kind: MessageKind.TEXT,
  text,
  sender: { firstName: "Ксения" },
});

describe("Kafka with the protobuf codec", () => {
  it("provisions a topic with its dead-letter topic once", async () => {
    const topic = newTopic();
    expect(await provision(topic)).toEqual([topic.name, deadLetterTopic(topic.name)]);
    expect(await provision(topic)).toEqual([]);
  });

  it("round-trips an event with its key, headers and trace context", async () => {
    const topic = newTopic();
    await provision(topic);
    const received: { event: ConsumedEvent<typeof InboundMessageSchema>; traceId: string | undefined }[] = [];
    await startConsumer(topic, async (event) => void received.push({ event, traceId: activeTraceId() }));

    const eventId = await trace.getTracer("test").startActiveSpan("webhook", async (active) => {
      const id = await publisher.publish(topic, { key: "channel-1:777", projectId: "project-1", value: inbound("Привет, 1988") });
      active.end();
      return { id, traceId: active.spanContext().traceId };
    });

    const [got] = await waitFor("the event", () => (received.length ? received : undefined));
    expect(got!.event.value.text).toBe("Привет, 1988");
    expect(got!.event.value.sender?.firstName).toBe("Ксения");
    expect(got!.event.value.messenger).toBe(Messenger.TELEGRAM);
    expect(got!.event).toMatchObject({ id: eventId.id, key: "channel-1:777", projectId: "project-1", type: "chatcrm.channels.v1.InboundMessage" });
    expect(got!.event.headers[Header.schemaVersion]).toBe("v1");
    expect(got!.traceId).toBe(eventId.traceId);
    const consumerSpan = tracing.exporter.getFinishedSpans().find((s) => s.name === `${topic.name} process`);
    expect(consumerSpan?.spanContext().traceId).toBe(eventId.traceId);
  });

  it("publishes a batch larger than the broker's request limit, in order", async () => {
    const topic = newTopic();
    await provision(topic);
    // 600 events of ~4 KB: 2.4 MB, more than twice the broker's default message.max.bytes.
    const events = Array.from({ length: 600 }, (_, i) => ({ key: "channel-1:777", projectId: "project-1", value: inbound(`${i}:${"x".repeat(4_000)}`) }));
    const ids = await publisher.publishBatch(topic, events);
    expect(ids).toHaveLength(600);
    const records = await readAll(topic.name, 600);
    expect(records.map((r) => fromBinary(InboundMessageSchema, r.value!).text.split(":")[0])).toEqual(events.map((_, i) => String(i)));
  });

  it("publishes an event given as its encoded bytes unchanged", async () => {
    const topic = newTopic();
    await provision(topic);
    const bytes = toBinary(InboundMessageSchema, create(InboundMessageSchema, inbound("уже закодировано")));
    const id = await publisher.publish(topic, { key: "channel-1:778", projectId: "project-1", eventId: "outbox-1", value: bytes });
    const [record] = await readAll(topic.name, 1);
    expect(id).toBe("outbox-1");
    expect(Buffer.compare(record!.value!, Buffer.from(bytes))).toBe(0);
    expect(record!.headers).toMatchObject({ [Header.eventId]: "outbox-1", [Header.projectId]: "project-1", [Header.eventType]: "chatcrm.channels.v1.InboundMessage" });
    expect(fromBinary(InboundMessageSchema, record!.value!).text).toBe("уже закодировано");
  });

  it("moves a poison message and a message that keeps failing to <topic>.dlq and keeps consuming", async () => {
    const topic = newTopic();
    await provision(topic);
    const handled: string[] = [];
    const attempts = new Map<string, number>();
    await startConsumer(topic, async (event) => {
      attempts.set(event.value.text, (attempts.get(event.value.text) ?? 0) + 1);
      if (event.value.text === "always fails") throw new Error("downstream said no");
      handled.push(event.value.text);
    });

    await publisher.sendRaw(topic.name, [{ key: "channel-1:777", value: Buffer.from([0xff, 0xff, 0xff, 0x01]), headers: { [Header.eventId]: "poison-1" } }]);
    await publisher.publish(topic, { key: "channel-1:777", projectId: "project-1", value: inbound("always fails") });
    await publisher.publish(topic, { key: "channel-1:777", projectId: "project-1", value: inbound("after the poison") });

    await waitFor("the message after the poison", () => handled.includes("after the poison"));
    expect(attempts.get("always fails")).toBe(3);
    const dead = await readAll(deadLetterTopic(topic.name), 2);
    expect(dead[0]!.headers[Header.eventId]).toBe("poison-1");
    expect(dead[0]!.headers[DeadLetterHeader.error]).toMatch(/cannot decode chatcrm.channels.v1.InboundMessage/);
    expect(dead[0]!.value).toEqual(Buffer.from([0xff, 0xff, 0xff, 0x01]));
    expect(dead[1]!.headers[DeadLetterHeader.error]).toBe("downstream said no");
    expect(dead[1]!.headers[DeadLetterHeader.attempts]).toBe("3");
    expect(dead[1]!.headers[DeadLetterHeader.originalTopic]).toBe(topic.name);
    expect(dead[1]!.key).toBe("channel-1:777");
  });

  it("dead-letters the one record that makes its batch fail and handles the rest of the batch and what follows, in order", async () => {
    const topic = newTopic();
    await provision(topic);
    const handled: string[] = [];
    await startGroup(
      subscribeBatch(topic, async (events) => {
        if (events.some((e) => e.value.text === "breaks its batch")) throw new Error("the step cannot handle this");
        handled.push(...events.map((e) => e.value.text));
      }),
    );

    // One key, so one partition and one batch; nothing else in the group succeeds to prove the broker and handler answer.
    const texts = ["first", "second", "breaks its batch", "third", "fourth"];
    await publisher.publishBatch(topic, texts.map((text) => ({ key: "channel-1:777", projectId: "project-1", value: inbound(text) })));
    await waitFor("the records around the bad one", () => handled.includes("fourth"));
    await publisher.publish(topic, { key: "channel-1:777", projectId: "project-1", value: inbound("a later batch") });
    await waitFor("the later batch", () => handled.includes("a later batch"));

    expect(handled).toEqual(["first", "second", "third", "fourth", "a later batch"]);
    const dead = await readAll(deadLetterTopic(topic.name), 1);
    expect(dead).toHaveLength(1);
    expect(fromBinary(InboundMessageSchema, dead[0]!.value!).text).toBe("breaks its batch");
    expect(dead[0]!.headers[DeadLetterHeader.error]).toBe("the step cannot handle this");
    expect(dead[0]!.headers[DeadLetterHeader.attempts]).toBe("3");
    expect(dead[0]!.key).toBe("channel-1:777");
  });

  it("handles a redelivered event id once", async () => {
    const topic = newTopic();
    await provision(topic);
    const processed = new MongoProcessedEventStore(mongo.connection);
    const handled: string[] = [];
    await startConsumer(topic, async (event) => void handled.push(event.id), processed);

    const value = Buffer.from(toBinary(InboundMessageSchema, create(InboundMessageSchema, inbound("twice"))));
    const record = { key: "channel-1:777", value, headers: { [Header.eventId]: "same-id" } };
    await publisher.sendRaw(topic.name, [record, record]);
    await publisher.publish(topic, { key: "channel-1:777", projectId: "project-1", value: inbound("marker"), eventId: "marker-id" });
    await waitFor("the marker", () => handled.includes("marker-id"));
    expect(handled.filter((id) => id === "same-id")).toHaveLength(1);
  });
});
