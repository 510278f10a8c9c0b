import type { Admin } from "kafkajs";
import { deadLetterTopic, type TopicDefinition } from "./topic";

export interface ProvisionOptions {
  replicationFactor: number;
  /** Also create each topic's dead-letter topic; on by default. */
  withDeadLetters?: boolean;
}

/**
 * Creates the topics that do not exist yet and waits until each partition has a leader, so the first publish
 * does not fail on a fresh cluster. Existing topics are left as they are. Safe to run from every replica.
 */
export function ensureTopics(admin: Admin, topics: TopicDefinition[], options: ProvisionOptions): Promise<string[]> {
  return whileTopicsSettle(() => createMissing(admin, topics, options));
}

/**
 * Retries a metadata-bound call (topic creation, a consumer's subscribe) while topics settle: services starting
 * together create the same topics at once, and a metadata read right after another client's create can answer
 * "does not host this topic-partition" until the broker has caught up. That passes within a second or two.
 */
export async function whileTopicsSettle<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= 6 || !isTransient(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
    }
  }
}

function isTransient(err: unknown): boolean {
  const e = err as { retriable?: boolean; type?: string; message?: string } | undefined;
  return e?.retriable === true || e?.type === "UNKNOWN_TOPIC_OR_PARTITION" || /does not host this topic-partition|already exists/i.test(e?.message ?? "");
}

async function createMissing(admin: Admin, topics: TopicDefinition[], options: ProvisionOptions): Promise<string[]> {
  const wanted = new Map<string, number>();
  for (const topic of topics) {
    wanted.set(topic.name, topic.partitions);
    if (options.withDeadLetters !== false) wanted.set(deadLetterTopic(topic.name), 1);
  }
  const existing = new Set(await admin.listTopics());
  const missing = [...wanted].filter(([name]) => !existing.has(name));
  if (missing.length === 0) return [];
  await admin.createTopics({
    waitForLeaders: true,
    topics: missing.map(([topic, numPartitions]) => ({ topic, numPartitions, replicationFactor: options.replicationFactor })),
  });
  return missing.map(([name]) => name);
}
