import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { InboundMessageSchema, Messenger, MessageKind, type InboundMessage } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { ContactsService } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { createGrpcClient, type GrpcClient } from "@chatcrm/grpc";
import { Topics } from "@chatcrm/kafka";
import { serviceTestConfig, startGroupsAtEnd, testBackendConfig, testLogger, uniqueName } from "@chatcrm/testing";
import { startContacts } from "../../src/app";
import { configSchema, type Config } from "../../src/config";

/** The contacts service on the harness with its own database; `overrides` tunes batch sizes and timers. */
export async function startTestContacts(database: string, overrides: Partial<Config> = {}) {
  // The funnel-moves topic holds every earlier run's moves (benchmarks publish thousands): start past them.
  await startGroupsAtEnd({ [`${database}_funnel`]: [Topics.funnelMoves.name] }, testLogger("offsets"));
  const base = testBackendConfig(database);
  const config: Config = { ...serviceTestConfig(configSchema, base), KAFKA_CONSUMER_GROUP: database, FUNNEL_MOVES_CONSUMER_GROUP: `${database}_funnel`, MASS_ACTION_POLL_INTERVAL_MS: 200, ...overrides };
  return startContacts(config, testLogger("contacts"));
}

export type ContactsClient = GrpcClient<typeof ContactsService>;

export function contactsClient(port: number): ContactsClient {
  return createGrpcClient(ContactsService, `127.0.0.1:${port}`);
}

/** Call options for a project, as admin or as an operator. */
export { callAs as as } from "@chatcrm/testing";

let seq = 0;

/** An inbound message as channels would publish it; fields may be overridden. */
export function inbound(projectId: string, overrides: MessageInitShape<typeof InboundMessageSchema> & { at?: Date } = {}): InboundMessage {
  const { at, ...rest } = overrides;
  return create(InboundMessageSchema, {
    messageId: uniqueName(`m${seq++}`),
    projectId,
    channelId: "bot-1",
    messenger: Messenger.TELEGRAM,
    senderId: String(1000 + seq),
    sender: { firstName: "Test", lastName: "User" },
    kind: MessageKind.TEXT,
    text: "hello",
    sentAt: timestampFromDate(at ?? new Date()),
    ...(rest as object),
  });
}
