import { randomBytes } from "node:crypto";
import { ChannelsService } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { createGrpcClient, type GrpcClient } from "@chatcrm/grpc";
import { Topics, type EventPublisher } from "@chatcrm/kafka";
import { freePort, serviceTestConfig, startGroupsAtEnd, testBackendConfig, testLogger, uniqueName } from "@chatcrm/testing";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { MessageOrigin, type SendMessageCommandSchema } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { startChannels } from "../../src/app";
import { configSchema, type Config } from "../../src/config";

/** Databases this test process started a service on: a restart must resume its groups, not skip to the end. */
const started = new Set<string>();

/** A key for one suite's secrets; every service instance of the suite (restarts included) must share it. */
export const testSecretsKey = () => randomBytes(32).toString("base64");

/**
 * The channels service on the harness with its own database and consumer groups, its webhooks on an ephemeral
 * port, and the provider API base URLs pointing at the fakes given in `overrides`.
 */
export async function startTestChannels(database: string, overrides: Partial<Config> & { CHANNEL_SECRETS_KEY: string }) {
  const base = testBackendConfig(database);
  const port = overrides.WEBHOOK_PORT || (await freePort());
  const config: Config = {
    ...serviceTestConfig(configSchema, base, { CHANNEL_SECRETS_KEY: overrides.CHANNEL_SECRETS_KEY }),
    WEBHOOK_HOST: "127.0.0.1",
    WEBHOOK_PORT: port,
    PUBLIC_WEBHOOK_BASE_URL: `http://127.0.0.1:${port}`,
    KAFKA_CONSUMER_GROUP: database,
    MESSAGE_LOG_CONSUMER_GROUP: `${database}-log`,
    RESEND_POLL_INTERVAL_MS: 200,
    // The fakes and the SMTP sink listen on loopback.
    ALLOW_PRIVATE_NETWORK_TARGETS: true,
    // Every test client is 127.0.0.1; the per-address limit has its own suite.
    WIDGET_MESSAGES_PER_SEC_PER_ADDRESS: 10_000,
    WIDGET_BURST_PER_ADDRESS: 10_000,
    INBOUND_RELAY_INTERVAL_MS: 500,
    ...overrides,
  };
  if (!started.has(database)) {
    started.add(database);
    await startGroupsAtEnd({ [config.KAFKA_CONSUMER_GROUP]: [Topics.sendCommands.name], [config.MESSAGE_LOG_CONSUMER_GROUP]: [Topics.inboundMessages.name, Topics.sendCommands.name, Topics.deliveryStatuses.name] }, testLogger("offsets"));
  }
  const running = await startChannels(config, testLogger("channels"));
  return { running, url: (path: string) => `http://127.0.0.1:${port}${path}`, config };
}

export type ChannelsClient = GrpcClient<typeof ChannelsService>;

export const channelsClient = (port: number): ChannelsClient => createGrpcClient(ChannelsService, `127.0.0.1:${port}`);

/** Publishes a send command the way flow-runtime does; returns its id. */
export async function sendCommand(publisher: EventPublisher, value: MessageInitShape<typeof SendMessageCommandSchema> & { projectId: string; channelId: string; recipientId: string }): Promise<string> {
  const commandId = (value.commandId as string | undefined) ?? uniqueName("cmd");
  await publisher.publish(Topics.sendCommands, {
    key: `${value.channelId}:${value.recipientId}`,
    projectId: value.projectId,
    eventId: commandId,
    value: { origin: MessageOrigin.FLOW, contactId: `contact-${value.recipientId}`, ...(value as object), commandId },
  });
  return commandId;
}
