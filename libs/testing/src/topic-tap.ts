import { fromBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { createKafka, Header, headersToStrings, type TopicDefinition } from "@chatcrm/kafka";
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
 */
export async function tapTopic<D extends DescMessage>(topic: TopicDefinition<D>, projectId: string, logger: Logger) {
  const kafka = createKafka({ brokers: testInfra().kafkaBrokers, clientId: uniqueName("tap"), logger });
  const consumer = kafka.consumer({ groupId: uniqueName("tap") });
  const events: TappedEvent<D>[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic: topic.name, fromBeginning: true });
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
