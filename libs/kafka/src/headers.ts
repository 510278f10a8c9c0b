import type { IHeaders } from "kafkajs";

/** Record headers every event carries; consumers rely on them without decoding the value. */
export const Header = {
  eventId: "event-id",
  eventType: "event-type",
  schemaVersion: "schema-version",
  projectId: "project-id",
  contentType: "content-type",
} as const;

/** Headers added when a record is moved to its dead-letter topic. */
export const DeadLetterHeader = {
  error: "dlq-error",
  originalTopic: "dlq-original-topic",
  originalPartition: "dlq-original-partition",
  originalOffset: "dlq-original-offset",
  consumerGroup: "dlq-consumer-group",
  attempts: "dlq-attempts",
  failedAt: "dlq-failed-at",
} as const;

export const PROTOBUF_CONTENT_TYPE = "application/x-protobuf";

/** Kafka header values as strings (kafkajs hands out Buffers, arrays for repeated keys). */
export function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers ?? {})) {
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out[key] = first.toString();
  }
  return out;
}
