import { createHash } from "node:crypto";
import { createServer } from "node:net";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MessageKind, Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { EmailAdapter, hashInboundSecret } from "../../src/providers/email/email-adapter";
import { ChannelSetupError, WebhookRejected, type AccountView, type OutboundMessage, type WebhookRequest } from "../../src/providers/provider";
import { FakeServer } from "../fakes/fake-server";
import { SmtpSink } from "../fakes/smtp-sink";

const SECRET = "in-7f3a9c2e5b1d";
const CRLF = (lines: string[]) => lines.join("\r\n");

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function setupError(promise: Promise<unknown>): Promise<ChannelSetupError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ChannelSetupError);
  return err as ChannelSetupError;
}

async function rejection(promise: Promise<unknown> | unknown): Promise<WebhookRejected> {
  const err = await Promise.resolve()
    .then(() => promise)
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(WebhookRejected);
  return err as WebhookRejected;
}

describe("EmailAdapter", () => {
  let sink: SmtpSink;
  let adapter: EmailAdapter;

  const settings = (overrides: Record<string, string> = {}) => ({
    smtpHost: "127.0.0.1",
    smtpPort: String(sink.port),
    smtpSecure: "false",
    smtpUser: "bot@acme.test",
    fromAddress: "support@acme.test",
    fromName: "Acme Support",
    defaultSubject: "Your question to Acme",
    ...overrides,
  });
  const account = (overrides: Partial<AccountView> = {}): AccountView => ({
    id: "ch-email-1",
    projectId: "p1",
    messenger: Messenger.EMAIL,
    settings: settings(),
    secrets: { smtpPassword: "s3cret", inboundSecretHash: hashInboundSecret(SECRET) },
    ...overrides,
  });
  const outbound = (overrides: Partial<OutboundMessage> = {}): OutboundMessage => ({
    commandId: "cmd-0001",
    recipientId: "client@example.com",
    text: "Hello!",
    attachments: [],
    buttons: [],
    subject: "",
    ...overrides,
  });

  beforeAll(async () => {
    sink = await SmtpSink.start({ user: "bot@acme.test", password: "s3cret" });
    // The sink and the file server listen on loopback, which production refuses (see "private targets" below).
    adapter = new EmailAdapter({ timeoutMs: 5_000, allowPrivateTargets: true });
  });
  afterAll(async () => {
    adapter.close();
    await sink.close();
  });
  beforeEach(() => sink.reset());

  describe("connect", () => {
    it("logs in to the SMTP server and keeps the settings with their defaults and the inbound secret hash", async () => {
      const result = await adapter.connect({
        channelId: "ch-email-1",
        settings: settings({ smtpSecure: "" }),
        secrets: { smtpPassword: "s3cret", inboundSecretHash: hashInboundSecret(SECRET) },
        webhookUrl: "https://hooks.chatcrm.test/email/ch-email-1",
      });
      expect(result).toEqual({
        settings: settings({ smtpSecure: "false" }),
        secrets: { smtpPassword: "s3cret", inboundSecretHash: hashInboundSecret(SECRET) },
        accountLabel: "support@acme.test",
      });
      expect(sink.connectionsOpened).toBe(1);
    });

    it("names the password field when the server refuses the login", async () => {
      const err = await setupError(adapter.connect({ channelId: "c", settings: settings(), secrets: { smtpPassword: "wrong" }, webhookUrl: "" }));
      expect(err.field).toBe("email.smtp_password");
      expect(err.message).toBe("the SMTP server refused the login for bot@acme.test: 535 5.7.8 Authentication credentials invalid");
    });

    it("names the host field when nothing listens on the port", async () => {
      const port = await closedPort();
      const err = await setupError(
        adapter.connect({ channelId: "c", settings: settings({ smtpPort: String(port) }), secrets: { smtpPassword: "s3cret" }, webhookUrl: "" }),
      );
      expect(err.field).toBe("email.smtp_host");
      expect(err.message).toMatch(new RegExp(`^cannot reach 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    });

    it("checks the settings before dialling anything", async () => {
      const cases: Array<[Record<string, string>, Record<string, string>, string]> = [
        [{ smtpHost: "" }, { smtpPassword: "s3cret" }, "email.smtp_host"],
        [{ smtpHost: "smtp://mail.acme.test:587" }, { smtpPassword: "s3cret" }, "email.smtp_host"],
        [{ fromAddress: "" }, { smtpPassword: "s3cret" }, "email.from_address"],
        [{ fromAddress: "support at acme" }, { smtpPassword: "s3cret" }, "email.from_address"],
        [{ smtpPort: "70000" }, { smtpPassword: "s3cret" }, "email.smtp_port"],
        [{ smtpPort: "25a" }, { smtpPassword: "s3cret" }, "email.smtp_port"],
        [{ smtpSecure: "yes" }, { smtpPassword: "s3cret" }, "email.smtp_secure"],
        [{}, {}, "email.smtp_password"],
      ];
      for (const [overrides, secrets, field] of cases) {
        const err = await setupError(adapter.connect({ channelId: "c", settings: settings(overrides), secrets, webhookUrl: "" }));
        expect([overrides, err.field]).toEqual([overrides, field]);
      }
      expect(sink.connectionsOpened).toBe(0);
    });

    it("defaults the port to 587, or 465 with TLS, and treats 465 as TLS", async () => {
      const port = await closedPort();
      // Unreachable on purpose: the error names the port the defaults chose.
      const attempt = async (overrides: Record<string, string>) =>
        (await setupError(adapter.connect({ channelId: "c", settings: settings({ smtpHost: "127.0.0.1", ...overrides }), secrets: { smtpPassword: "s3cret" }, webhookUrl: "" })))
          .message;
      expect(await attempt({ smtpPort: "", smtpSecure: "" })).toMatch(/^cannot reach 127\.0\.0\.1:587: /);
      expect(await attempt({ smtpPort: "", smtpSecure: "true" })).toMatch(/^cannot reach 127\.0\.0\.1:465: /);
      expect(await attempt({ smtpPort: String(port), smtpSecure: "true" })).toMatch(new RegExp(`^cannot reach 127\\.0\\.0\\.1:${port}: `));
    });
  });

  describe("send", () => {
    it("delivers the text with link buttons as lines from the account's address", async () => {
      const result = await adapter.send(
        account(),
        outbound({
          subject: "Re: Order #42",
          text: "Your order has shipped.",
          buttons: [
            { $typeName: "chatcrm.channels.v1.Button", text: "Track order", payload: "", url: "https://acme.test/orders/42" },
            { $typeName: "chatcrm.channels.v1.Button", text: "Talk to a human", payload: "handoff", url: "" },
          ],
        }),
      );
      expect(result).toEqual({ ok: true, providerMessageId: "cmd-0001@acme.test" });
      const [mail] = await sink.waitForMessages(1);
      expect(mail).toMatchObject({
        from: '"Acme Support" <support@acme.test>',
        envelopeFrom: "support@acme.test",
        to: ["client@example.com"],
        subject: "Re: Order #42",
        // The text part ends with the line break that ends every SMTP body; mail clients show the same.
        text: "Your order has shipped.\n\nTrack order: https://acme.test/orders/42\nTalk to a human\n",
        messageId: "cmd-0001@acme.test",
        attachments: [],
      });
      expect(mail?.html).toBeUndefined();
    });

    it("uses the account's default subject, then a generic one", async () => {
      await adapter.send(account(), outbound({ subject: "  " }));
      await adapter.send(account({ settings: settings({ defaultSubject: "" }) }), outbound({ commandId: "cmd-0002" }));
      expect(sink.messages.map((m) => m.subject)).toEqual(["Your question to Acme", "Message"]);
    });

    it("keeps one SMTP connection per account and closes it on disconnect", async () => {
      const acc = account({ id: "ch-email-pool" });
      for (const id of ["a1", "a2", "a3"]) expect(await adapter.send(acc, outbound({ commandId: id }))).toMatchObject({ ok: true });
      expect(sink.connectionsOpened).toBe(1);
      await adapter.disconnect(acc);
      expect(await adapter.send(acc, outbound({ commandId: "a4" }))).toMatchObject({ ok: true });
      expect(sink.connectionsOpened).toBe(2);
      expect(sink.messages.map((m) => m.messageId)).toEqual(["a1@acme.test", "a2@acme.test", "a3@acme.test", "a4@acme.test"]);
      await adapter.disconnect(acc);
    });

    it("attaches files downloaded from their URLs", async () => {
      const files = await FakeServer.start(() => ({ status: 200, body: "invoice body", headers: { "content-type": "application/pdf" } }));
      try {
        const result = await adapter.send(
          account(),
          outbound({
            attachments: [
              { $typeName: "chatcrm.channels.v1.Attachment", kind: MessageKind.DOCUMENT, url: `${files.baseUrl}/files/inv-42.pdf`, mimeType: "application/pdf", fileName: "", sizeBytes: 12n },
            ],
          }),
        );
        expect(result).toMatchObject({ ok: true });
        expect(files.callsTo("/files/inv-42.pdf")).toHaveLength(1);
        expect(sink.messages[0]?.attachments).toEqual([{ filename: "inv-42.pdf", contentType: "application/pdf", size: 12 }]);
      } finally {
        await files.close();
      }
    });

    it("refuses private targets unless allowed: no SMTP host or attachment URL inside the cluster's network", async () => {
      const strict = new EmailAdapter({ timeoutMs: 5_000, allowPrivateTargets: false });
      const files = await FakeServer.start(() => ({ status: 200, body: "secret" }));
      try {
        const err = await setupError(strict.connect({ channelId: "c", settings: settings(), secrets: { smtpPassword: "s3cret" }, webhookUrl: "" }));
        expect(err.field).toBe("email.smtp_host");
        expect(err.message).toMatch(/127\.0\.0\.1 is a private or local address/);
        const send = await strict.send(account(), outbound({ text: "hi" }));
        expect(send).toMatchObject({ ok: false, kind: "rejected", error: expect.stringMatching(/private or local address/) });
        const local = await strict.send(
          account(),
          outbound({ attachments: [{ $typeName: "chatcrm.channels.v1.Attachment", kind: MessageKind.DOCUMENT, url: `${files.baseUrl}/inv.pdf`, mimeType: "", fileName: "", sizeBytes: 0n }] }),
        );
        expect(local).toMatchObject({ ok: false, kind: "rejected", error: expect.stringMatching(/private or local address/) });
        expect(files.calls).toHaveLength(0);
      } finally {
        strict.close();
        await files.close();
      }
    });

    it("rejects an attachment whose download is refused", async () => {
      const files = await FakeServer.start(() => ({ status: 404, body: { error: "not found" } }));
      try {
        const result = await adapter.send(
          account(),
          outbound({
            attachments: [{ $typeName: "chatcrm.channels.v1.Attachment", kind: MessageKind.IMAGE, url: `${files.baseUrl}/gone.png`, mimeType: "", fileName: "", sizeBytes: 0n }],
          }),
        );
        expect(result).toEqual({ ok: false, kind: "rejected", error: expect.stringMatching(/^attachment "gone\.png" could not be downloaded: 127\.0\.0\.1:\d+ answered HTTP 404$/) });
        expect(sink.messages).toHaveLength(0);
      } finally {
        await files.close();
      }
    });

    it("reports a recipient the server does not know as permanent", async () => {
      sink.rejectRecipient("gone@example.com", 550, "No such user");
      const result = await adapter.send(account(), outbound({ recipientId: "Gone@Example.com" }));
      expect(result).toEqual({ ok: false, kind: "permanent", error: "550 5.1.1 No such user" });
      expect(sink.messages).toHaveLength(0);
    });

    it("reports a temporary failure as transient, and the retry goes through", async () => {
      sink.failNext(451, "Requested action aborted: try again later");
      expect(await adapter.send(account(), outbound())).toEqual({ ok: false, kind: "transient", error: "451 4.3.0 Requested action aborted: try again later" });
      expect(await adapter.send(account(), outbound())).toEqual({ ok: true, providerMessageId: "cmd-0001@acme.test" });
      expect(sink.messages).toHaveLength(1);
    });

    it("rejects a message the server refuses for another reason", async () => {
      sink.failNext(554, "Message rejected: spam score too high");
      expect(await adapter.send(account(), outbound())).toEqual({ ok: false, kind: "rejected", error: "554 5.6.0 Message rejected: spam score too high" });
    });

    it("treats a policy refusal of a recipient (550 5.7.1) as a rejected message, not a gone mailbox", async () => {
      const strict = await SmtpSink.start({ enhancedStatusCodes: false });
      try {
        strict.rejectRecipient("client@example.com", 550, "5.7.1 Relaying denied");
        const acc = account({ id: "ch-strict", settings: settings({ smtpPort: String(strict.port), smtpUser: "" }), secrets: {} });
        expect(await adapter.send(acc, outbound())).toEqual({ ok: false, kind: "rejected", error: "550 5.7.1 Relaying denied" });
        await adapter.disconnect(acc);
      } finally {
        await strict.close();
      }
    });

    it("rejects a send when the password no longer works", async () => {
      const result = await adapter.send(account({ secrets: { smtpPassword: "rotated" } }), outbound());
      expect(result).toEqual({
        ok: false,
        kind: "rejected",
        error: "the SMTP server refused the login: reconnect the channel (535 5.7.8 Authentication credentials invalid)",
      });
    });

    it("reports an unreachable server as transient", async () => {
      const port = await closedPort();
      const acc = account({ id: "ch-down", settings: settings({ smtpPort: String(port) }) });
      const result = await adapter.send(acc, outbound());
      expect(result).toMatchObject({ ok: false, kind: "transient", error: expect.stringContaining("ECONNREFUSED") });
      await adapter.disconnect(acc);
    });

    it("rejects what cannot be sent without talking to the server", async () => {
      expect(await adapter.send(account(), outbound({ recipientId: "client@" }))).toEqual({ ok: false, kind: "rejected", error: '"client@" is not a valid email address' });
      expect(await adapter.send(account(), outbound({ recipientId: "+79991234567" }))).toEqual({
        ok: false,
        kind: "rejected",
        error: '"+79991234567" is not a valid email address',
      });
      const attachment = { $typeName: "chatcrm.channels.v1.Attachment" as const, kind: MessageKind.DOCUMENT, url: "file:///etc/passwd", mimeType: "", fileName: "passwd", sizeBytes: 0n };
      expect(await adapter.send(account(), outbound({ attachments: [attachment] }))).toEqual({
        ok: false,
        kind: "rejected",
        error: 'attachment "passwd" has no http(s) URL: email can attach only files it can download',
      });
      expect(await adapter.send(account(), outbound({ text: "" }))).toEqual({ ok: false, kind: "rejected", error: "nothing to send: the message has no text, buttons or attachments" });
      expect(sink.messages).toHaveLength(0);
    });
  });

  describe("handleWebhook", () => {
    const request = (body: string, contentType: string, overrides: Partial<WebhookRequest> = {}): WebhookRequest => ({
      method: "POST",
      headers: { authorization: `Bearer ${SECRET}`, "content-type": contentType },
      query: {},
      rawBody: Buffer.from(body, "utf8"),
      ...overrides,
    });

    const multipart = CRLF([
      "Return-Path: <jane.doe@example.com>",
      'From: "Jane Doe" <Jane.Doe@Example.com>',
      "To: Acme Support <support@acme.test>",
      "Subject: =?UTF-8?B?0JfQsNC60LDQtyDihJY0Mg==?=",
      "Date: Mon, 04 Mar 2024 10:15:30 +0300",
      "Message-ID: <CAF=abc123@mail.example.com>",
      "MIME-Version: 1.0",
      'Content-Type: multipart/mixed; boundary="mixed-1"',
      "",
      "--mixed-1",
      'Content-Type: multipart/alternative; boundary="alt-1"',
      "",
      "--alt-1",
      "Content-Type: text/plain; charset=UTF-8",
      "Content-Transfer-Encoding: quoted-printable",
      "",
      "Hi, where is my order? The invoice is attached.=0A=0AJane",
      "--alt-1",
      "Content-Type: text/html; charset=UTF-8",
      "",
      "<div>Hi, where is my order? The invoice is attached.</div><div>Jane</div>",
      "--alt-1--",
      "--mixed-1",
      'Content-Type: application/pdf; name="invoice-42.pdf"',
      'Content-Disposition: attachment; filename="invoice-42.pdf"',
      "Content-Transfer-Encoding: base64",
      "",
      Buffer.from("%PDF-1.4 fake invoice").toString("base64"),
      "--mixed-1--",
      "",
    ]);

    it("normalizes a raw multipart message with an attachment", async () => {
      const outcome = await adapter.handleWebhook(account(), request(multipart, "message/rfc822"));
      expect(outcome.reply).toEqual({ status: 200, body: "ok" });
      expect(outcome.ignored).toEqual([]);
      expect(outcome.messages).toEqual([
        {
          senderId: "jane.doe@example.com",
          providerMessageId: "CAF=abc123@mail.example.com",
          sender: { firstName: "Jane", lastName: "Doe" },
          kind: MessageKind.TEXT,
          text: "Hi, where is my order? The invoice is attached.\n\nJane",
          subject: "Заказ №42",
          attachments: [{ kind: MessageKind.DOCUMENT, url: "", mimeType: "application/pdf", fileName: "invoice-42.pdf", sizeBytes: 21n }],
          sentAt: timestampFromDate(new Date("2024-03-04T07:15:30Z")),
        },
      ]);
    });

    it("cuts the quoted previous message off a reply", async () => {
      const reply = CRLF([
        "From: jane.doe@example.com",
        "Subject: Re: Order #42",
        "Date: Tue, 05 Mar 2024 09:00:00 +0000",
        "Message-ID: <reply-2@mail.example.com>",
        "In-Reply-To: <cmd-0001@acme.test>",
        "Content-Type: text/plain; charset=UTF-8",
        "",
        "Thanks, got it!",
        "",
        "On Mon, 4 Mar 2024 at 12:00, Acme Support <support@acme.test> wrote:",
        "> Your order has shipped.",
        ">",
        "> Track order: https://acme.test/orders/42",
        "",
      ]);
      const outcome = await adapter.handleWebhook(account(), request(reply, "text/plain; charset=utf-8"));
      expect(outcome.messages).toEqual([
        {
          senderId: "jane.doe@example.com",
          providerMessageId: "reply-2@mail.example.com",
          sender: { firstName: "", lastName: "" },
          kind: MessageKind.TEXT,
          text: "Thanks, got it!",
          subject: "Re: Order #42",
          attachments: [],
          sentAt: timestampFromDate(new Date("2024-03-05T09:00:00Z")),
        },
      ]);
    });

    it("flattens an HTML-only reply and drops its quote, with a wrapped attribution in the text form too", async () => {
      const html = CRLF([
        "From: Jane Doe <jane.doe@example.com>",
        "Subject: Re: Order #42",
        "Content-Type: text/html; charset=UTF-8",
        "",
        '<html><head><style>p{color:red}</style></head><body><div dir="ltr">Sounds good &amp; thanks!<br>See you</div>',
        '<div class="gmail_quote"><div class="gmail_attr">On Mon, Mar 4, 2024 at 12:00 PM Acme Support &lt;support@acme.test&gt; wrote:<br></div>',
        "<blockquote>Your order has shipped.</blockquote></div></body></html>",
      ]);
      const [fromHtml] = (await adapter.handleWebhook(account(), request(html, "message/rfc822"))).messages;
      expect(fromHtml?.text).toBe("Sounds good & thanks!\nSee you");
      expect(fromHtml?.providerMessageId).toBe(createHash("sha256").update(html).digest("hex"));
      expect(fromHtml?.sentAt).toBeUndefined();

      const wrapped = JSON.stringify({
        from: "jane.doe@example.com",
        text: "Yes, Tuesday works.\n\nOn Mon, Mar 4, 2024 at 12:00 PM Acme Support <\nsupport@acme.test> wrote:\n\n> Does Tuesday work?\n",
      });
      const [fromText] = (await adapter.handleWebhook(account(), request(wrapped, "application/json"))).messages;
      expect(fromText?.text).toBe("Yes, Tuesday works.");
    });

    it("knows Outlook's and Russian clients' quote headers, and keeps a forward whole", async () => {
      const textOf = async (subject: string, text: string) =>
        (await adapter.handleWebhook(account(), request(JSON.stringify({ from: "jane.doe@example.com", subject, text }), "application/json"))).messages[0]?.text;
      expect(
        await textOf("RE: Order #42", "Tuesday is fine.\r\n\r\n________________________________\r\nFrom: Acme Support <support@acme.test>\r\nSent: Monday, March 4, 2024 12:00 PM\r\nTo: Jane Doe\r\nSubject: Order #42\r\n\r\nDoes Tuesday work?"),
      ).toBe("Tuesday is fine.");
      expect(await textOf("Re: Заказ", "Спасибо!\n\n04.03.2024, 12:00, \"Acme Support\" <support@acme.test>:\n> Ваш заказ отправлен.")).toBe("Спасибо!");
      expect(await textOf("Re: Заказ", "Спасибо!\n\nПн, 4 мар. 2024 г. в 12:00, Acme Support <support@acme.test> пишет:\n> Ваш заказ отправлен.")).toBe("Спасибо!");
      // Bottom-posted: the answer follows the quote.
      expect(await textOf("Re: Order", "On Mon, 4 Mar 2024, Acme <support@acme.test> wrote:\n> Does Tuesday work?\n\nYes, it does.")).toBe("Yes, it does.");
      const forward = "See below.\n\n---------- Forwarded message ---------\nFrom: Billing <billing@shop.test>\nDate: Mon, Mar 4, 2024\nSubject: Invoice\n\nAmount due: 42";
      expect(await textOf("Fwd: Invoice", forward)).toBe(forward);
      // Everything quoted: better the whole text than an empty message.
      expect(await textOf("Re: Order", "> Does Tuesday work?")).toBe("> Does Tuesday work?");
    });

    it("normalizes our JSON shape, attachments by URL", async () => {
      const body = JSON.stringify({
        from: { address: "Ivan.Petrov@Example.RU", name: "Petrov, Ivan" },
        to: ["support@acme.test"],
        subject: "Photos",
        text: "",
        html: "",
        message_id: "<20240304101530.1234@example.ru>",
        date: "2024-03-04T10:15:30Z",
        attachments: [
          { filename: "front.jpg", content_type: "image/jpeg", size: 52311, url: "https://relay.acme.test/a/1" },
          { filename: "back.png", content_type: "image/png", size: 48000, url: "https://relay.acme.test/a/2" },
        ],
      });
      const outcome = await adapter.handleWebhook(account(), request(body, "application/json; charset=utf-8"));
      expect(outcome.messages).toEqual([
        {
          senderId: "ivan.petrov@example.ru",
          providerMessageId: "20240304101530.1234@example.ru",
          sender: { firstName: "Ivan", lastName: "Petrov" },
          kind: MessageKind.IMAGE,
          text: "",
          subject: "Photos",
          attachments: [
            { kind: MessageKind.IMAGE, url: "https://relay.acme.test/a/1", mimeType: "image/jpeg", fileName: "front.jpg", sizeBytes: 52311n },
            { kind: MessageKind.IMAGE, url: "https://relay.acme.test/a/2", mimeType: "image/png", fileName: "back.png", sizeBytes: 48000n },
          ],
          sentAt: timestampFromDate(new Date("2024-03-04T10:15:30Z")),
        },
      ]);
    });

    it("names a message without Message-ID by its bytes, so a redelivery is recognised", async () => {
      const body = JSON.stringify({ from: "Jane Doe <jane.doe@example.com>", text: "Hello", attachments: [{ filename: "a.pdf", content_type: "application/pdf", size: 1, url: "https://relay.acme.test/a/3" }] });
      const first = (await adapter.handleWebhook(account(), request(body, "application/json"))).messages[0];
      const again = (await adapter.handleWebhook(account(), request(body, "application/json"))).messages[0];
      expect(first?.providerMessageId).toBe(createHash("sha256").update(body).digest("hex"));
      expect(again?.providerMessageId).toBe(first?.providerMessageId);
      expect(first).toMatchObject({ senderId: "jane.doe@example.com", sender: { firstName: "Jane", lastName: "Doe" }, kind: MessageKind.TEXT, text: "Hello" });
    });

    it("refuses a missing or wrong bearer secret with 401", async () => {
      const body = JSON.stringify({ from: "jane.doe@example.com", text: "hi" });
      for (const authorization of [undefined, `Bearer ${SECRET}x`, `Basic ${SECRET}`, "Bearer "]) {
        const err = await rejection(adapter.handleWebhook(account(), request(body, "application/json", { headers: { authorization, "content-type": "application/json" } })));
        expect(err.status).toBe(401);
      }
      const noHash = await rejection(adapter.handleWebhook(account({ secrets: { smtpPassword: "s3cret" } }), request(body, "application/json")));
      expect(noHash.status).toBe(401);
    });

    it("refuses a message without a usable sender with 400", async () => {
      for (const [body, type] of [
        [JSON.stringify({ subject: "no from", text: "hi" }), "application/json"],
        [JSON.stringify({ from: "not an address", text: "hi" }), "application/json"],
        [JSON.stringify({ from: { name: "Jane" }, text: "hi" }), "application/json"],
        [CRLF(["Subject: no from", "", "hi"]), "message/rfc822"],
      ] as const) {
        const err = await rejection(adapter.handleWebhook(account(), request(body, type)));
        expect([body, err.status, err.message]).toEqual([body, 400, "the message has no valid sender: the From address is missing or malformed"]);
      }
    });

    it("refuses bodies it cannot read with 400 naming the problem", async () => {
      const cases: Array<[WebhookRequest, string]> = [
        [request("{not json", "application/json"), "the body is not valid JSON: "],
        [request("[1,2]", "application/json"), "the body must be a JSON object describing one message"],
        [request(JSON.stringify({ from: "a@b.co", subject: 5 }), "application/json"), '"subject" must be a string'],
        [request(JSON.stringify({ from: "a@b.co", attachments: [{ url: "ftp://x/y" }] }), "application/json"), '"attachments[0].url" must be an http(s) URL'],
        [request("", "message/rfc822"), "the body is empty: expected a raw MIME message"],
        [request("from=a", "application/x-www-form-urlencoded"), 'unsupported content-type "application/x-www-form-urlencoded"'],
        [request("", "application/json", { method: "GET" }), "the email webhook accepts POST only"],
      ];
      for (const [req, message] of cases) {
        const err = await rejection(adapter.handleWebhook(account(), req));
        expect([err.status, err.message.slice(0, message.length)]).toEqual([400, message]);
      }
    });
  });
});
