import { fromBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { createKafka, ensureTopics, Header, headersToStrings, whileTopicsSettle, type TopicDefinition } from "@chatcrm/kafka";
import type { Admin } from "kafkajs";
import type { Logger } from "@chatcrm/logging";
import { testInfra, uniqueName, waitFor } from "./index";

export interface TappedEvent<D extends DescMessage> {
  id: string;
  key: string;
  projectId: string;
  value: MessageShape<D>;
}

/**
 * Reads a real topic from its beginning with a throwaway consumer group and keeps the decoded events of one
 * project, so a test sees exactly what its service published however many other runs share the topic.
 * A suite may tap before starting the service that creates the topic (the first suite on a fresh broker, which
 * does not auto-create topics), so the tap provisions it the way every service does on start.
 */
export async function tapTopic<D extends DescMessage>(topic: TopicDefinition<D>, projectId: string, logger: Logger) {
  const kafka = createKafka({ brokers: testInfra().kafkaBrokers, clientId: uniqueName("tap"), logger });
  const consumer = kafka.consumer({ groupId: uniqueName("tap") });
  const events: TappedEvent<D>[] = [];
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, [topic], { replicationFactor: 1 });
  } finally {
    await admin.disconnect();
  }
  await consumer.connect();
  await whileTopicsSettle(() => consumer.subscribe({ topic: topic.name, fromBeginning: true }));
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headers = headersToStrings(message.headers);
      if (headers[Header.projectId] !== projectId) return;
      events.push({ id: headers[Header.eventId] ?? "", key: message.key?.toString() ?? "", projectId, value: fromBinary(topic.schema, message.value ?? new Uint8Array()) });
    },
  });
  return {
    events,
    /** Waits until `count` events pass `match`, and returns them. */
    async waitFor(what: string, match: (e: TappedEvent<D>) => boolean, count = 1, timeoutMs = 20_000) {
      return waitFor(what, () => {
        const found = events.filter(match);
        return found.length >= count ? found : undefined;
      }, timeoutMs);
    },
    close: () => consumer.disconnect(),
  };
}

/**
 * Commits the current end of each topic for consumer groups that do not exist yet, so a service started by a suite
 * begins at "now" instead of replaying the shared topics' whole history (every run's commands, into its own empty
 * database), while nothing the suite publishes after this call is missed (the committed offset is the start).
 */
export async function startGroupsAtEnd(groups: Record<string, string[]>, logger: Logger): Promise<void> {
  const kafka = createKafka({ brokers: testInfra().kafkaBrokers, clientId: uniqueName("offsets"), logger });
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<string, { partition: number; high: string }[]>();
  try {
    const existing = new Set(await admin.listTopics());
    for (const topic of new Set(Object.values(groups).flat())) if (existing.has(topic)) ends.set(topic, await offsetsOnceLed(admin, topic));
  } finally {
    await admin.disconnect();
  }
  // One short-lived member per group commits every topic's end at once (admin.setOffsets joins once per topic).
  await Promise.all(
    Object.entries(groups).map(async ([groupId, topics]) => {
      const present = topics.filter((t) => ends.has(t));
      if (present.length === 0) return;
      const consumer = kafka.consumer({ groupId });
      await consumer.connect();
      try {
        await consumer.subscribe({ topics: present, fromBeginning: false });
        const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
        await consumer.run({ autoCommit: false, eachBatch: async () => undefined });
        await joined;
        await consumer.commitOffsets(present.flatMap((topic) => ends.get(topic)!.map((p) => ({ topic, partition: p.partition, offset: p.high }))));
      } finally {
        await consumer.disconnect();
      }
    }),
  );
}

/**
 * A topic another suite has just created may not have its partition leaders yet (NOT_LEADER_FOR_PARTITION on a
 * fresh broker): asked again shortly, it has.
 */
async function offsetsOnceLed(admin: Admin, topic: string): Promise<{ partition: number; high: string }[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await admin.fetchTopicOffsets(topic);
    } catch (err) {
      if (attempt >= 20 || !(err as { retriable?: boolean }).retriable) throw err;
      await new Promise((r) => setTimeout(r, 250 * Math.min(attempt, 4)));
    }
  }
}
