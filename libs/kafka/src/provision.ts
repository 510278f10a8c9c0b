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
export async function ensureTopics(admin: Admin, topics: TopicDefinition[], options: ProvisionOptions): Promise<string[]> {
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
