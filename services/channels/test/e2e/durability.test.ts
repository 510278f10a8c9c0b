import { create } from "@bufbuild/protobuf";
import { ConnectChannelRequestSchema, ResendJobState } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { DeliveryState, Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { Topics } from "@chatcrm/kafka";
import { callAs, stopAndDrop, tapTopic, testLogger, uniqueDatabase, uniqueName, waitFor } from "@chatcrm/testing";
import { TelegramFake, textUpdate } from "../fakes/telegram-fake";
import { channelsClient, sendCommand, startTestChannels, testSecretsKey, type ChannelsClient } from "../integration/harness";

const logger = testLogger("durability");

describe("nothing accepted is lost; failed bot messages can be resent", () => {
  const database = uniqueDatabase("ch_dur");
  const projectId = uniqueName("p");
  const key = testSecretsKey();
  let tg: TelegramFake;
  let service: Awaited<ReturnType<typeof startTestChannels>>;
  let client: ChannelsClient;
  let bot: { token: string };
  let channelId: string;
  let inbound: Awaited<ReturnType<typeof tapTopic<typeof Topics.inboundMessages.schema>>>;
  let statuses: Awaited<ReturnType<typeof tapTopic<typeof Topics.deliveryStatuses.schema>>>;

  const start = async (port?: number) => {
    service = await startTestChannels(database, { CHANNEL_SECRETS_KEY: key, TELEGRAM_API_URL: tg.baseUrl, ...(port && { WEBHOOK_PORT: port }) });
    client?.close();
    client = channelsClient(service.running.grpcPort);
  };

  beforeAll(async () => {
    tg = await TelegramFake.start();
    await start();
    bot = tg.addBot();
    [inbound, statuses] = await Promise.all([tapTopic(Topics.inboundMessages, projectId, logger), tapTopic(Topics.deliveryStatuses, projectId, logger)]);
    const res = await client.connectChannel(create(ConnectChannelRequestSchema, { name: "Bot", settings: { case: "telegram", value: { botToken: bot.token } } }), callAs(projectId));
    channelId = res.channel!.id;
  });

  afterAll(async () => {
    await Promise.all([inbound?.close(), statuses?.close()]);
    client?.close();
    await stopAndDrop(service?.running);
    await tg?.close();
  });

  it("stores a webhook Kafka would not take, answers 200, and publishes it once after a restart", async () => {
    // Kafka goes away for this instance: its producer is gone, so every publish fails from here on.
    await service.running.context.publisher.disconnect();
    const res = await tg.deliverUpdate(bot.token, { ...textUpdate(7001, "while Kafka was away"), update_id: 880001 });
    expect(res.status).toBe(200);
    expect(await service.running.parts.models.pendingEvents.countDocuments({ projectId })).toBe(1);
    // The process dies before its relay runs; a new one starts on the same database and address.
    const port = Number(new URL(service.url("/")).port);
    await service.running.stop();
    await start(port);
    const [event] = await inbound.waitFor("the stored message", (e) => e.value.providerMessageId === "880001");
    expect(event!.value).toMatchObject({ channelId, senderId: "7001", text: "while Kafka was away", messenger: Messenger.TELEGRAM });
    await waitFor("the pending record to be removed", async () => (await service.running.parts.models.pendingEvents.countDocuments({ projectId })) === 0);
    // Telegram delivers the same update again later: still one event.
    await tg.deliverUpdate(bot.token, { ...textUpdate(7001, "while Kafka was away"), update_id: 880001 });
    await tg.deliverUpdate(bot.token, textUpdate(7001, "marker"));
    await inbound.waitFor("the marker", (e) => e.value.text === "marker");
    expect(new Set(inbound.events.filter((e) => e.value.providerMessageId === "880001").map((e) => e.id)).size).toBe(1);
  });

  it("hands a send still waiting out a 429 at shutdown to the next instance, which sends it once", async () => {
    tg.server.script((c) => c.path.endsWith("/sendMessage") && (c.body as { chat_id?: unknown })?.chat_id?.toString() === "7201", {
      status: 429,
      body: { ok: false, error_code: 429, description: "Too Many Requests: retry after 30", parameters: { retry_after: 30 } },
    });
    const commandId = await sendCommand(service.running.context.publisher, { projectId, channelId, recipientId: "7201", text: "patience" });
    await statuses.waitFor("queued behind the 429", (e) => e.value.commandId === commandId && e.value.state === DeliveryState.QUEUED);
    const port = Number(new URL(service.url("/")).port);
    const stopping = Date.now();
    await service.running.stop();
    expect(Date.now() - stopping).toBeLessThan(15_000);
    await start(port);
    await statuses.waitFor("sent by the next instance", (e) => e.value.commandId === commandId && e.value.state === DeliveryState.SENT, 1, 30_000);
    expect(tg.sentTo(bot.token, "7201").map((m) => m.text)).toEqual(["patience"]);
  });

  it("resends the last failed bot message of each chat, with the chosen interval, as a job with progress", async () => {
    tg.blockChat(bot.token, 7101);
    tg.blockChat(bot.token, 7102);
    const publisher = service.running.context.publisher;
    const failedA = await sendCommand(publisher, { projectId, channelId, recipientId: "7101", text: "Your order is ready (A)" });
    const failedB = await sendCommand(publisher, { projectId, channelId, recipientId: "7102", text: "Your order is ready (B)" });
    const fine = await sendCommand(publisher, { projectId, channelId, recipientId: "7103", text: "Delivered fine" });
    await statuses.waitFor("two failures", (e) => [failedA, failedB].includes(e.value.commandId) && e.value.state === DeliveryState.FAILED, 2);
    await statuses.waitFor("one success", (e) => e.value.commandId === fine && e.value.state === DeliveryState.SENT);
    const { lastBotMessages } = service.running.parts.models;
    await waitFor("the log to mark both chats failed", async () => (await lastBotMessages.countDocuments({ projectId, failed: true, messenger: "telegram" })) === 2);
    tg.unblockChat(bot.token, 7101);
    tg.unblockChat(bot.token, 7102);

    const started = await client.startResendFailed({ messenger: Messenger.TELEGRAM, intervalMs: 400, idempotencyKey: "resend-1" }, callAs(projectId));
    expect(started.job?.total).toBe(2n);
    const again = await client.startResendFailed({ messenger: Messenger.TELEGRAM, intervalMs: 400, idempotencyKey: "resend-1" }, callAs(projectId));
    expect(again.job?.id).toBe(started.job?.id);
    const done = await waitFor("the job to finish", async () => {
      const { job } = await client.getResendJob({ jobId: started.job!.id }, callAs(projectId));
      return job?.state === ResendJobState.DONE ? job : undefined;
    });
    expect({ total: done.total, done: done.done, resent: done.resent }).toEqual({ total: 2n, done: 2n, resent: 2n });
    const resentA = tg.sentTo(bot.token, "7101");
    const resentB = tg.sentTo(bot.token, "7102");
    expect(resentA.map((s) => s.text)).toEqual(["Your order is ready (A)"]);
    expect(resentB.map((s) => s.text)).toEqual(["Your order is ready (B)"]);
    expect(Math.abs(resentB[0]!.at - resentA[0]!.at)).toBeGreaterThanOrEqual(350);
    expect(tg.sentTo(bot.token, "7103")).toHaveLength(1);
    const { jobs } = await client.listResendJobs({}, callAs(projectId));
    expect(jobs.map((j) => j.id)).toContain(started.job!.id);
    // Another project sees neither the job nor the chats.
    await expect(client.getResendJob({ jobId: started.job!.id }, callAs(uniqueName("other")))).rejects.toMatchObject({ code: 5 });
  });
});
