import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { InboundMessageSchema, Messenger, MessageKind } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { ContactsService } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { AnswerKind, EdgePort, FlowDefinitionSchema, TriggerKind, type FlowDefinition } from "@chatcrm/contracts/chatcrm/flows/v1/flow_pb";
import { FlowsService } from "@chatcrm/contracts/chatcrm/flows/v1/flows_service_pb";
import { createGrpcClient } from "@chatcrm/grpc";
import { Topics, EventPublisher, createKafka } from "@chatcrm/kafka";
import { callAs, serviceTestConfig, startGroupsAtEnd, testBackendConfig, testInfra, testLogger, uniqueName } from "@chatcrm/testing";
// Flows read and change cards through the real contacts service, so the suites start one beside the runtime.
// eslint-disable-next-line @nx/enforce-module-boundaries
import { startContacts } from "../../contacts/src/app";
// eslint-disable-next-line @nx/enforce-module-boundaries
import { configSchema as contactsConfigSchema } from "../../contacts/src/config";
import { startFlowRuntime } from "../src/app";
import { configSchema, type Config } from "../src/config";

/**
 * The flow runtime with a real contacts service beside it (flows read and change cards through it), each on its
 * own database of the harness. Messages enter as channels would publish them, so contacts resolves them first.
 */
export async function startFlowStack(name: string, overrides: Partial<Config> = {}) {
  // Both start at the topics' ends: the shared topics hold every earlier run's events.
  await startGroupsAtEnd(
    {
      [`${name}_contacts`]: [Topics.inboundMessages.name, Topics.deliveryStatuses.name, Topics.subscriberStatuses.name],
      [`${name}_contacts_funnel`]: [Topics.funnelMoves.name],
      [`${name}_flows`]: [Topics.resolvedMessages.name, Topics.flowCommands.name, Topics.flowTimers.name, Topics.integrationResults.name],
    },
    testLogger("offsets"),
  );
  const contactsBase = testBackendConfig(`${name}_contacts`);
  const contacts = await startContacts(
    { ...serviceTestConfig(contactsConfigSchema, contactsBase), KAFKA_CONSUMER_GROUP: `${name}_contacts`, FUNNEL_MOVES_CONSUMER_GROUP: `${name}_contacts_funnel` },
    testLogger("contacts"),
  );
  const runtime = await startRuntime(name, contacts.grpcPort, overrides);
  return { contacts, runtime };
}

export type FlowStack = Awaited<ReturnType<typeof startFlowStack>>;
export type FlowRuntime = FlowStack["runtime"];

export async function startRuntime(name: string, contactsPort: number, overrides: Partial<Config> = {}) {
  const base = testBackendConfig(`${name}_flows`);
  const config: Config = {
    ...serviceTestConfig(configSchema, base),
    CONTACTS_GRPC_ADDR: `127.0.0.1:${contactsPort}`,
    KAFKA_CONSUMER_GROUP: `${name}_flows`,
    TIMER_SCAN_INTERVAL_MS: 500,
    EFFECT_RELAY_AFTER_MS: 1_000,
    EFFECT_RELAY_INTERVAL_MS: 500,
    ...overrides,
  };
  return startFlowRuntime(config, testLogger("flow-runtime"));
}

export const flowsClient = (port: number) => createGrpcClient(FlowsService, `127.0.0.1:${port}`);
export const contactsClient = (port: number) => createGrpcClient(ContactsService, `127.0.0.1:${port}`);
export { callAs as as } from "@chatcrm/testing";

export const keyword = (word: string) => [{ kind: TriggerKind.KEYWORD, values: [word] }];
export const next = (from: string, to: string, port = EdgePort.NEXT, buttonPayload = "") => ({ fromBlockId: from, toBlockId: to, port, buttonPayload });
export const message = (blockId: string, text: string) => ({ blockId, kind: { case: "message" as const, value: { text } } });
/** A question taking any text, asked again for ever until answered. */
export const textQuestion = (blockId: string, text: string) => ({ blockId, kind: { case: "question" as const, value: { prompt: { text }, expect: AnswerKind.TEXT, retryUnlimited: true } } });

export const definition = (init: MessageInitShape<typeof FlowDefinitionSchema>): FlowDefinition => create(FlowDefinitionSchema, init);

/** Creates one flow of the project through a client of its own. */
export async function createFlow(runtime: FlowRuntime, projectId: string, init: MessageInitShape<typeof FlowDefinitionSchema>): Promise<void> {
  const flows = flowsClient(runtime.grpcPort);
  try {
    await flows.createFlow({ definition: definition(init) }, callAs(projectId));
  } finally {
    flows.close();
  }
}

/** Publishes what channels would: an inbound message from one Telegram subscriber of the project. */
export class Subscriber {
  private static shared: Promise<EventPublisher> | undefined;
  readonly senderId = String(Math.floor(Math.random() * 1e12));

  constructor(
    readonly projectId: string,
    readonly channelId = "tg-bot",
  ) {}

  /** One producer for the whole suite: what channels would publish, and what integrations would answer. */
  static publisher(): Promise<EventPublisher> {
    // The promise is shared, not the publisher: subscribers speaking at once must not each make (and half-connect) one.
    Subscriber.shared ??= (async () => {
      const publisher = new EventPublisher(createKafka({ brokers: testInfra().kafkaBrokers, clientId: "flow-tests", logger: testLogger("kafka") }));
      await publisher.connect();
      return publisher;
    })();
    return Subscriber.shared;
  }

  static async close() {
    const shared = Subscriber.shared;
    Subscriber.shared = undefined;
    await (await shared)?.disconnect();
  }

  async says(text: string, extra: MessageInitShape<typeof InboundMessageSchema> = {}): Promise<string> {
    const messageId = uniqueName("msg");
    const value = create(InboundMessageSchema, {
      messageId,
      projectId: this.projectId,
      channelId: this.channelId,
      messenger: Messenger.TELEGRAM,
      senderId: this.senderId,
      sender: { firstName: "Ivan", lastName: "Petrov" },
      kind: MessageKind.TEXT,
      text,
      ...(extra as object),
    });
    await (await Subscriber.publisher()).publish(Topics.inboundMessages, { key: `${this.channelId}:${this.senderId}`, projectId: this.projectId, eventId: messageId, value });
    return messageId;
  }
}
