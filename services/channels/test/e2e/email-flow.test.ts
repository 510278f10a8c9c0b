import { create } from "@bufbuild/protobuf";
import { ConnectChannelRequestSchema } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { DeliveryState, MessageKind, Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { Topics } from "@chatcrm/kafka";
import { callAs, stopAndDrop, tapTopic, testLogger, uniqueDatabase, uniqueName } from "@chatcrm/testing";
import { postWebhook } from "../fakes/fake-server";
import { SmtpSink } from "../fakes/smtp-sink";
import { channelsClient, sendCommand, startTestChannels, testSecretsKey, type ChannelsClient } from "../integration/harness";

/**
 * Statuses our instance published. Every channels instance on the shared topics (other suites run at the same time,
 * each with its own database and consumer group) also reads our send commands and, not knowing our channel, reports
 * them FAILED without a messenger; only statuses about a channel the publisher knows carry its messenger.
 */
const fromUs = (e: { value: { messenger: Messenger } }) => e.value.messenger === Messenger.EMAIL;

const logger = testLogger("email-flow");

const SMTP_USER = "bot@acme.test";
const SMTP_PASSWORD = "s3cret-smtp";

/** A raw RFC 5322 message as a mail server would post it: CRLF line ends, headers, blank line, body. */
function rawEmail(options: { from: string; subject: string; body: string; messageId: string }): string {
  return [
    `From: ${options.from}`,
    "To: Acme Support <support@acme.test>",
    `Subject: ${options.subject}`,
    `Message-ID: <${options.messageId}>`,
    "Date: Tue, 14 May 2024 09:30:00 +0000",
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "",
    options.body,
    "",
  ].join("\r\n");
}

describe("Email end to end: inbound MIME webhook → Kafka, send command → SMTP → status", () => {
  const database = uniqueDatabase("ch_mail");
  const projectId = uniqueName("p");
  const key = testSecretsKey();
  let sink: SmtpSink;
  let service: Awaited<ReturnType<typeof startTestChannels>>;
  let client: ChannelsClient;
  let channelId: string;
  let inboundSecret: string;
  let webhookUrl: string;
  let inbound: Awaited<ReturnType<typeof tapTopic<typeof Topics.inboundMessages.schema>>>;
  let statuses: Awaited<ReturnType<typeof tapTopic<typeof Topics.deliveryStatuses.schema>>>;

  /** `authorization: null` posts without the header. */
  const postMime = (raw: string, authorization: string | null = `Bearer ${inboundSecret}`) =>
    postWebhook(webhookUrl, raw, { "content-type": "message/rfc822", ...(authorization === null ? {} : { authorization }) });
  const messageId = () => `${uniqueName("m")}@mail.example.com`;

  beforeAll(async () => {
    sink = await SmtpSink.start({ user: SMTP_USER, password: SMTP_PASSWORD });
    service = await startTestChannels(database, { CHANNEL_SECRETS_KEY: key, SEND_MAX_BACKOFF_MS: 400, PROVIDER_TIMEOUT_MS: 5_000 });
    client = channelsClient(service.running.grpcPort);
    [inbound, statuses] = await Promise.all([tapTopic(Topics.inboundMessages, projectId, logger), tapTopic(Topics.deliveryStatuses, projectId, logger)]);
    const res = await client.connectChannel(
      create(ConnectChannelRequestSchema, {
        name: "Support mailbox",
        settings: {
          case: "email",
          value: { smtpHost: sink.host, smtpPort: sink.port, smtpSecure: false, smtpUser: SMTP_USER, smtpPassword: SMTP_PASSWORD, fromAddress: "support@acme.test", fromName: "Acme Support", defaultSubject: "A message from Acme" },
        },
      }),
      callAs(projectId),
    );
    channelId = res.channel!.id;
    inboundSecret = res.inboundSecret;
    webhookUrl = service.url(`/webhooks/email/${channelId}`);
  });

  afterAll(async () => {
    await Promise.all([inbound?.close(), statuses?.close()]);
    client?.close();
    await stopAndDrop(service?.running);
    await sink?.close();
  });

  it("connects, shows the inbound secret once and stores neither it nor the SMTP password", async () => {
    expect(inboundSecret).toMatch(/^[\w-]{24,}$/);
    const { channel } = await client.getChannel({ channelId }, callAs(projectId));
    expect(channel).toMatchObject({ messenger: Messenger.EMAIL, webhookPath: `/webhooks/email/${channelId}`, accountLabel: "support@acme.test" });
    expect(JSON.stringify(channel, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))).not.toContain(inboundSecret);
    const stored = JSON.stringify(await service.running.parts.models.channels.findById(channelId).lean());
    expect(stored).not.toContain(inboundSecret);
    expect(stored).not.toContain(SMTP_PASSWORD);
  });

  it("publishes a raw MIME message with the sender's address, subject and text, keyed by the address", async () => {
    const id = messageId();
    const res = await postMime(rawEmail({ from: "Jane Doe <Jane.Doe@Example.com>", subject: "Order #1042: wrong size", body: "Hello,\r\nthe shoes are a size too small. Can I exchange them?", messageId: id }));
    expect(res.status).toBe(200);
    const [event] = await inbound.waitFor("the email", (e) => e.value.providerMessageId === id);
    expect(event!.key).toBe(`${channelId}:jane.doe@example.com`);
    expect(event!.value).toMatchObject({
      projectId,
      channelId,
      messenger: Messenger.EMAIL,
      senderId: "jane.doe@example.com",
      sender: { firstName: "Jane", lastName: "Doe" },
      kind: MessageKind.TEXT,
      subject: "Order #1042: wrong size",
      text: "Hello,\nthe shoes are a size too small. Can I exchange them?",
      attachments: [],
    });
    expect(event!.value.sentAt?.seconds).toBe(BigInt(Date.UTC(2024, 4, 14, 9, 30) / 1000));
  });

  it("refuses a wrong or missing bearer with 401 and publishes nothing", async () => {
    const mail = (body: string) => rawEmail({ from: "mallory@example.com", subject: "Invoice", body, messageId: messageId() });
    expect((await postMime(mail("wrong bearer"), `Bearer ${inboundSecret}x`)).status).toBe(401);
    expect((await postMime(mail("no bearer"), null)).status).toBe(401);
    expect((await postMime(mail("genuine"))).status).toBe(200);
    await inbound.waitFor("the genuine email", (e) => e.value.senderId === "mallory@example.com" && e.value.text === "genuine");
    expect(inbound.events.filter((e) => e.value.senderId === "mallory@example.com").map((e) => e.value.text)).toEqual(["genuine"]);
  });

  it("publishes a message posted twice (same Message-ID) once", async () => {
    const id = messageId();
    const raw = rawEmail({ from: "repeat@example.com", subject: "Twice", body: "twice", messageId: id });
    expect([(await postMime(raw)).status, (await postMime(raw)).status]).toEqual([200, 200]);
    await postMime(rawEmail({ from: "repeat@example.com", subject: "Again", body: "after", messageId: messageId() }));
    await inbound.waitFor("the next email", (e) => e.value.senderId === "repeat@example.com" && e.value.text === "after");
    expect(inbound.events.filter((e) => e.value.providerMessageId === id)).toHaveLength(1);
  });

  it("sends a command over SMTP with the channel's sender and the command's subject, and reports it SENT", async () => {
    const commandId = await sendCommand(service.running.context.publisher, { projectId, channelId, recipientId: "jane.doe@example.com", subject: "Re: Order #1042: wrong size", text: "Of course! Here is your exchange label." });
    const [sent] = await statuses.waitFor("sent", (e) => fromUs(e) && e.value.commandId === commandId && e.value.state === DeliveryState.SENT);
    const mail = sink.messages.find((m) => m.subject === "Re: Order #1042: wrong size");
    expect(mail).toMatchObject({ from: '"Acme Support" <support@acme.test>', envelopeFrom: "support@acme.test", to: ["jane.doe@example.com"], text: "Of course! Here is your exchange label.\n" });
    expect(sent!.key).toBe(`${channelId}:jane.doe@example.com`);
    expect(sent!.value).toMatchObject({ projectId, channelId, recipientId: "jane.doe@example.com", contactId: "contact-jane.doe@example.com", providerMessageId: mail!.messageId, messenger: Messenger.EMAIL, excerpt: "Of course! Here is your exchange label." });
    expect(mail!.messageId).toMatch(/@acme\.test$/);
  });

  it("uses the channel's default subject when a command has none", async () => {
    const commandId = await sendCommand(service.running.context.publisher, { projectId, channelId, recipientId: "nosubject@example.com", text: "Just checking in." });
    await statuses.waitFor("sent", (e) => fromUs(e) && e.value.commandId === commandId && e.value.state === DeliveryState.SENT);
    expect(sink.messages.filter((m) => m.to.includes("nosubject@example.com")).map((m) => m.subject)).toEqual(["A message from Acme"]);
  });

  it("reports a recipient the server refuses with 550 as FAILED, permanent, without retrying", async () => {
    sink.rejectRecipient("gone@example.com", 550, "No such user");
    const commandId = await sendCommand(service.running.context.publisher, { projectId, channelId, recipientId: "gone@example.com", text: "Are you still there?" });
    const [failed] = await statuses.waitFor("failed", (e) => fromUs(e) && e.value.commandId === commandId && e.value.state === DeliveryState.FAILED);
    expect(failed!.value).toMatchObject({ recipientId: "gone@example.com", permanent: true, messenger: Messenger.EMAIL });
    expect(failed!.value.error).toMatch(/^550\b.*No such user/);
    expect(statuses.events.some((e) => fromUs(e) && e.value.commandId === commandId && e.value.state !== DeliveryState.FAILED)).toBe(false);
    expect(sink.messages.some((m) => m.to.includes("gone@example.com"))).toBe(false);
  });
});
