export { EventConsumer, subscribe, subscribeBatch, type BatchContext, type BatchHandler, type ConsumedEvent, type EventConsumerOptions, type EventHandler, type RetryPolicy, type Subscription } from "./consumer";
export { Coalescer, forEachLimited, groupInOrder } from "./batch-tools";
export { createKafka, type KafkaSettings } from "./create-kafka";
export { DeadLetterHeader, Header, headersToStrings, PROTOBUF_CONTENT_TYPE } from "./headers";
export type { ProcessedEventStore } from "./processed-events";
export { ensureTopics, whileTopicsSettle, type ProvisionOptions } from "./provision";
export { EventPublisher, type OutgoingEvent } from "./publisher";
export { deadLetterTopic, defineTopic, schemaVersion, type TopicDefinition } from "./topic";
export { Topics } from "./topics";
