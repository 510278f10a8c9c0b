import { Kafka, logLevel, type LogEntry } from "kafkajs";
import type { Logger } from "@chatcrm/logging";

export interface KafkaSettings {
  brokers: string[];
  clientId: string;
  logger: Logger;
}

/** A kafkajs client whose own log lines go through the service's logger, at one level lower than kafkajs says. */
export function createKafka({ brokers, clientId, logger }: KafkaSettings): Kafka {
  const log = logger.child({ component: "kafkajs" });
  return new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.WARN,
    retry: { initialRetryTime: 200, retries: 8, maxRetryTime: 5_000 },
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        if (level === logLevel.ERROR) log.error(rest, message);
        else if (level === logLevel.WARN) log.warn(rest, message);
        else log.debug(rest, message);
      },
  });
}
