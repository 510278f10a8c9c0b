import { buffer } from "node:stream/consumers";
import type { AddressInfo } from "node:net";
import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";

/** One message the sink accepted, parsed the way a receiving mail client would see it. */
export interface SinkMessage {
  /** The From header as text, e.g. `"Acme Support" <support@acme.test>`. */
  from: string;
  /** The envelope's MAIL FROM address. */
  envelopeFrom: string;
  /** The envelope recipients the sink accepted (RCPT TO), the addresses the message is delivered to. */
  to: string[];
  subject: string;
  text: string;
  html?: string;
  /** The Message-ID header without angle brackets. */
  messageId: string;
  /** The In-Reply-To header without angle brackets. */
  inReplyTo?: string;
  attachments: Array<{ filename: string; contentType: string; size: number }>;
  /** The message exactly as it came in the DATA command. */
  raw: Buffer;
}

export interface SmtpSinkOptions {
  /** When set, AUTH PLAIN/LOGIN with user/password is required before MAIL FROM; otherwise any login is accepted. */
  user?: string;
  password?: string;
  /** Advertised with SIZE; a larger message gets 552. Default 10 MiB. */
  maxMessageBytes?: number;
  /** Simultaneous connections; more are refused with 421. Default unlimited. */
  maxClients?: number;
  /**
   * Prefix replies with RFC 3463 codes ("550 5.1.1 …"), as most servers do; default true. Turn off to script replies
   * that carry their own enhanced code, e.g. rejectRecipient(a, 550, "5.7.1 Relaying denied").
   */
  enhancedStatusCodes?: boolean;
}

interface ScriptedFailure {
  code: number;
  message: string;
  remaining: number;
}

const stripBrackets = (id: string | undefined) => (id ?? "").trim().replace(/^<|>$/g, "");

function smtpError(code: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode: code });
}


/**
 * A local SMTP server that keeps what it receives: the email channel's counterpart of the HTTP provider fakes. Plain
 * SMTP on 127.0.0.1 (no TLS, STARTTLS not offered, so clients do not upgrade), real AUTH and real reply codes, and
 * scripted refusals: a recipient that does not exist, or DATA answered with a temporary or permanent failure.
 */
export class SmtpSink {
  readonly host = "127.0.0.1";
  readonly messages: SinkMessage[] = [];
  /** Connections accepted so far (a pooling client opens few; verify() opens one of its own). */
  connectionsOpened = 0;
  private readonly rejected = new Map<string, { code: number; message: string }>();
  private readonly failures: ScriptedFailure[] = [];
  private readonly waiters = new Set<() => void>();

  private readonly server: SMTPServer;
  private listeningPort = 0;

  private constructor(options: SmtpSinkOptions) {
    const { user, password } = options;
    this.server = new SMTPServer({
      secure: false,
      disabledCommands: ["STARTTLS"],
      authMethods: ["PLAIN", "LOGIN"],
      authOptional: user === undefined,
      allowInsecureAuth: true,
      // A reverse DNS lookup per connection would dominate a throughput run on loopback.
      disableReverseLookup: true,
      size: options.maxMessageBytes ?? 10 * 1024 * 1024,
      hideENHANCEDSTATUSCODES: options.enhancedStatusCodes === false,
      ...(options.maxClients ? { maxClients: options.maxClients } : {}),
      logger: false,
      onConnect: (_session, callback) => {
        this.connectionsOpened++;
        callback();
      },
      onAuth: (auth, _session, callback) => {
        if (user === undefined || (auth.username === user && auth.password === password)) {
          callback(null, { user: auth.username ?? "" });
          return;
        }
        callback(smtpError(535, "Authentication credentials invalid"));
      },
      onRcptTo: (address, _session, callback) => {
        const refusal = this.rejected.get(address.address.toLowerCase());
        callback(refusal ? smtpError(refusal.code, refusal.message) : null);
      },
      onData: (stream, session, callback) => {
        buffer(stream)
          .then(async (raw) => {
            // An oversized message is refused by smtp-server itself once the stream ends.
            if (stream.sizeExceeded) return callback();
            const failure = this.failures.find((f) => f.remaining > 0);
            if (failure) {
              failure.remaining--;
              return callback(smtpError(failure.code, failure.message));
            }
            const parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true, skipTextLinks: true });
            this.messages.push({
              from: parsed.from?.text ?? "",
              envelopeFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
              to: session.envelope.rcptTo.map((r) => r.address),
              subject: parsed.subject ?? "",
              text: parsed.text ?? "",
              ...(parsed.html ? { html: parsed.html } : {}),
              messageId: stripBrackets(parsed.messageId),
              ...(parsed.inReplyTo ? { inReplyTo: stripBrackets(parsed.inReplyTo) } : {}),
              attachments: parsed.attachments.map((a) => ({ filename: a.filename ?? "", contentType: a.contentType, size: a.size })),
              raw,
            });
            for (const wake of this.waiters) wake();
            callback(null, `OK: queued as ${this.messages.length}`);
          })
          .catch((err: Error) => callback(smtpError(451, `local error in processing: ${err.message}`)));
      },
    });
  }

  static async start(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
    const sink = new SmtpSink(options);
    await new Promise<void>((resolve, reject) => {
      sink.server.once("error", reject);
      sink.server.listen(0, "127.0.0.1", () => resolve());
    });
    // Client errors (a peer resetting the connection) are normal for a test server; they must not crash the run.
    sink.server.on("error", () => undefined);
    sink.listeningPort = (sink.server.server.address() as AddressInfo).port;
    return sink;
  }

  get port(): number {
    return this.listeningPort;
  }

  /** RCPT TO for `address` (any case) is answered with `code` and `message` from now on, e.g. 550 "No such user". */
  rejectRecipient(address: string, code: number, message: string): void {
    this.rejected.set(address.toLowerCase(), { code, message });
  }

  /** The next `times` DATA commands are answered with `code` and `message` (451 = try later, 554 = refused). */
  failNext(code: number, message: string, times = 1): void {
    this.failures.push({ code, message, remaining: times });
  }

  /** Forgets received messages, counted connections, rejected recipients and pending failures. */
  reset(): void {
    this.messages.length = 0;
    this.connectionsOpened = 0;
    this.rejected.clear();
    this.failures.length = 0;
  }

  /** Resolves with the messages once `count` have arrived; rejects after `timeoutMs`. */
  async waitForMessages(count: number, timeoutMs = 10_000): Promise<SinkMessage[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} messages at the SMTP sink, got ${this.messages.length}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 200));
        this.waiters.add(wake);
      });
    }
    return this.messages;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // smtp-server waits up to 30 s for clients to quit; pooled clients idle far longer, so tell them and hang up.
    for (const connection of this.server.connections) {
      connection.send(421, "Server shutting down");
      connection.close();
    }
    await closed;
  }
}
