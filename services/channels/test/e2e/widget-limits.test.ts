import { create } from "@bufbuild/protobuf";
import { ConnectChannelRequestSchema } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { Topics } from "@chatcrm/kafka";
import { callAs, stopAndDrop, tapTopic, testLogger, uniqueDatabase, uniqueName, waitFor } from "@chatcrm/testing";
import { WebSocket } from "ws";
import { channelsClient, startTestChannels, testSecretsKey, type ChannelsClient } from "../integration/harness";

const logger = testLogger("widget-limits");

describe("web widget: the per-address brake on a public key", () => {
  const database = uniqueDatabase("ch_wlim");
  const projectId = uniqueName("p");
  let service: Awaited<ReturnType<typeof startTestChannels>>;
  let client: ChannelsClient;
  let widgetKey: string;
  let inbound: Awaited<ReturnType<typeof tapTopic<typeof Topics.inboundMessages.schema>>>;

  beforeAll(async () => {
    inbound = await tapTopic(Topics.inboundMessages, projectId, logger);
    service = await startTestChannels(database, { CHANNEL_SECRETS_KEY: testSecretsKey(), WIDGET_MESSAGES_PER_SEC_PER_ADDRESS: 1, WIDGET_BURST_PER_ADDRESS: 3 });
    client = channelsClient(service.running.grpcPort);
    const res = await client.connectChannel(create(ConnectChannelRequestSchema, { name: "Site", settings: { case: "web", value: {} } }), callAs(projectId));
    widgetKey = res.channel!.widgetKey;
  });

  afterAll(async () => {
    await inbound?.close();
    client?.close();
    await stopAndDrop(service?.running);
  });

  it("takes a burst from one address, then answers 429 (HTTP) and an error frame (socket) instead of publishing", async () => {
    const post = (text: string) => fetch(service.url("/widget/v1/messages"), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: widgetKey, text }) });
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await post(`http ${i}`));
    expect(answers.map((r) => r.status)).toEqual([202, 202, 202, 429]);
    expect(((await answers[3]!.json()) as { error: string }).error).toMatch(/^too many messages; send again in \d+ s$/);

    const socket = new WebSocket(`${service.url("/widget/v1/ws").replace("http", "ws")}?key=${encodeURIComponent(widgetKey)}`);
    const frames: { type: string; error?: string }[] = [];
    socket.on("message", (data: Buffer) => frames.push(JSON.parse(data.toString("utf8")) as { type: string; error?: string }));
    await waitFor("hello", () => frames.some((f) => f.type === "hello"));
    socket.send(JSON.stringify({ type: "message", text: "socket 0" }));
    const refused = await waitFor("the refusal", () => frames.find((f) => f.type === "error"));
    expect(refused.error).toMatch(/^too many messages/);
    socket.close();

    await inbound.waitFor("the three accepted", (e) => e.value.text.startsWith("http "), 3);
    // The budget refills: a second later one more message goes through.
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await post("after a pause")).status).toBe(202);
    await inbound.waitFor("the later one", (e) => e.value.text === "after a pause");
    expect(inbound.events.map((e) => e.value.text).filter((t) => t.startsWith("http ") || t.startsWith("socket "))).toEqual(["http 0", "http 1", "http 2"]);
  });
});
