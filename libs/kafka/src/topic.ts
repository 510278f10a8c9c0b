import type { DescMessage } from "@bufbuild/protobuf";

/** A Kafka topic and the protobuf message its values carry. */
export interface TopicDefinition<D extends DescMessage = DescMessage> {
  readonly name: string;
  readonly schema: D;
  readonly partitions: number;
  /** What the record key is, so that events of one entity keep their order. */
  readonly key: string;
}

const TOPIC_NAME = /^[a-z][a-z0-9-]*\.[a-z][a-z0-9-]*\.v[0-9]+$/;

/** Topic names follow <domain>.<event-or-command>.v<N>; anything else is a programming error. */
export function defineTopic<D extends DescMessage>(name: string, schema: D, options: { key: string; partitions?: number }): TopicDefinition<D> {
  if (!TOPIC_NAME.test(name)) throw new Error(`topic name "${name}" does not follow <domain>.<event-or-command>.v<N>`);
  return { name, schema, key: options.key, partitions: options.partitions ?? 6 };
}

/** Where a message that keeps failing goes, with the error in its headers. */
export const deadLetterTopic = (topic: string) => `${topic}.dlq`;

/** The schema version a topic carries, from its name's suffix. */
export const schemaVersion = (topic: string) => topic.slice(topic.lastIndexOf(".") + 1);
