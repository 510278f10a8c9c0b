import { createHash } from "node:crypto";
import { equalSecret } from "../../crypto/secret-box";
import { connect as connectTcp, isIP, type Socket } from "node:net";
import { Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { assertTargetAllowed, fetchPublic, FetchFailed, guardedLookup, PrivateTargetRefused } from "@chatcrm/safe-http";
import nodemailer, { type Transporter } from "nodemailer";
import type SMTPPool from "nodemailer/lib/smtp-pool";
import type SMTPTransport from "nodemailer/lib/smtp-transport";
import {
  ChannelSetupError,
  emptyOutcome,
  WebhookRejected,
  type AccountView,
  type ConnectInput,
  type ConnectResult,
  type OutboundMessage,
  type ProviderAdapter,
  type SendResult,
  type WebhookOutcome,
  type WebhookRequest,
} from "../provider";
import { isEmailAddress, parseJsonEmail, parseMimeEmail } from "./email-inbound";

/**
 * Email as a channel: replies go out over the account's own SMTP server, messages come in through a webhook that
 * a mail provider (or our relay in front of it) posts received mail to, authenticated by a per-channel secret.
 *
 * settings: smtpHost, smtpPort, smtpSecure ("true" = TLS from the first byte, else STARTTLS when offered), smtpUser,
 *           fromAddress, fromName, defaultSubject
 * secrets:  smtpPassword, inboundSecretHash (hex SHA-256 of the webhook secret, see hashInboundSecret)
 */

/** What secrets.inboundSecretHash holds: the service shows the secret once and keeps only this. */
/** Larger files are refused: most mail servers refuse messages over 25 MB anyway. */
const MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024;

export function hashInboundSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

interface SmtpConfig {
  host: string;
  port: number;
  secure: boolean;
  user: string;
  password: string;
  fromAddress: string;
  fromName: string;
  defaultSubject: string;
}

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$/i;

/** The account's SMTP settings with their defaults applied; throws ChannelSetupError naming the bad field. */
function readConfig(settings: Record<string, string>, secrets: Record<string, string>): SmtpConfig {
  const host = (settings.smtpHost ?? "").trim();
  if (!host) throw new ChannelSetupError("email.smtp_host", "enter the SMTP server's host name, e.g. smtp.example.com");
  if (!HOST_NAME.test(host) && !isIP(host)) {
    throw new ChannelSetupError("email.smtp_host", `"${host}" is not a host name: enter it without a scheme or port, e.g. smtp.example.com`);
  }
  const fromAddress = (settings.fromAddress ?? "").trim();
  if (!fromAddress) throw new ChannelSetupError("email.from_address", "enter the address replies are sent from");
  if (!isEmailAddress(fromAddress)) throw new ChannelSetupError("email.from_address", `"${fromAddress}" is not an email address`);

  const secureSetting = (settings.smtpSecure ?? "").trim().toLowerCase();
  if (secureSetting && secureSetting !== "true" && secureSetting !== "false") {
    throw new ChannelSetupError("email.smtp_secure", `smtpSecure must be "true" or "false", not "${settings.smtpSecure}"`);
  }
  const portSetting = (settings.smtpPort ?? "").trim();
  let port: number;
  if (portSetting) {
    port = Number(portSetting);
    if (!/^\d+$/.test(portSetting) || port < 1 || port > 65535) {
      throw new ChannelSetupError("email.smtp_port", `the SMTP port must be a number from 1 to 65535, not "${portSetting}"`);
    }
  } else {
    port = secureSetting === "true" ? 465 : 587;
  }
  // Port 465 speaks TLS from the first byte; talking plain SMTP to it just hangs until the timeout.
  const secure = secureSetting ? secureSetting === "true" : port === 465;

  const user = (settings.smtpUser ?? "").trim();
  const password = secrets.smtpPassword ?? "";
  if (user && !password) throw new ChannelSetupError("email.smtp_password", `enter the SMTP password for ${user}`);
  if (password && !user) throw new ChannelSetupError("email.smtp_user", "enter the SMTP user name the password belongs to");

  return { host, port, secure, user, password, fromAddress, fromName: (settings.fromName ?? "").trim(), defaultSubject: (settings.defaultSubject ?? "").trim() };
}

function smtpOptions(config: SmtpConfig, timeoutMs: number): SMTPTransport.Options {
  return {
    host: config.host,
    port: config.port,
    secure: config.secure,
    ...(config.user ? { auth: { user: config.user, pass: config.password } } : {}),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    dnsTimeout: timeoutMs,
    // Attachments come from URLs in send commands; a local path must never be read into a message.
    disableFileAccess: true,
  };
}

/**
 * Sockets for the send pools, with Nagle's algorithm off. nodemailer writes a message and its closing "." separately,
 * so with Nagle on the "." waits for the server's delayed ACK: 40 ms per message on Linux, a ceiling of ~25 messages
 * a second per connection. TLS (port 465) is layered on this socket by nodemailer as usual.
 */
function noDelaySockets(host: string, port: number, timeoutMs: number, allowPrivate: boolean): SMTPPool.Options["getSocket"] {
  return (_options, callback: (err: Error | null, socketOptions?: { connection: Socket }) => void) => {
    // The SMTP host is the user's choice: it must not be a way into the cluster's own network.
    try {
      assertTargetAllowed(host, allowPrivate);
    } catch (err) {
      return callback(err as Error);
    }
    const socket = connectTcp({ host, port, noDelay: true, keepAlive: true, lookup: guardedLookup(allowPrivate) });
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`Connection timeout to ${host}:${port}`), { code: "ETIMEDOUT" })), timeoutMs);
    const failed = (err: Error) => {
      clearTimeout(timer);
      callback(err);
    };
    socket.once("error", failed);
    socket.once("connect", () => {
      clearTimeout(timer);
      // nodemailer attaches its own error handling synchronously inside the callback.
      socket.removeListener("error", failed);
      callback(null, { connection: socket });
    });
  };
}

/** The fields of a nodemailer error we look at (SMTP errors carry the server's reply). */
interface SmtpFailure {
  message: string;
  code?: string;
  responseCode?: number;
  response?: string;
}

function asFailure(err: unknown): SmtpFailure {
  return err instanceof Error ? (err as SmtpFailure) : { message: String(err) };
}

/** The server's own words when it answered, else what went wrong on the way. */
const serverSaid = (e: SmtpFailure) => e.response?.trim() || e.message;

const isAuthFailure = (e: SmtpFailure) => e.code === "EAUTH" || e.responseCode === 535;

/** The connection never got as far as an SMTP answer: a retry may well get through. */
const CONNECTION_CODES = new Set([
  "ECONNECTION", "ETIMEDOUT", "ESOCKET", "EDNS", "ETLS", "EPROTOCOL", // nodemailer's
  "ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", // the socket's own
]);

/** 550/551/553 say the mailbox does not exist, unless the enhanced code is 5.7.x: a policy refusal, not the address. */
const MAILBOX_GONE = new Set([550, 551, 553]);

function classifySendError(err: unknown): SendResult {
  const e = asFailure(err);
  if (isAuthFailure(e)) return { ok: false, kind: "rejected", error: `the SMTP server refused the login: reconnect the channel (${serverSaid(e)})` };
  const said = serverSaid(e);
  const code = e.responseCode;
  if (code) {
    // Every 4xx reply is temporary by definition (421 closing, 450/451 try later, 452 out of storage…).
    if (code >= 400 && code < 500) return { ok: false, kind: "transient", error: said };
    if (MAILBOX_GONE.has(code) && !/\b5\.7\.\d{1,3}\b/.test(said)) return { ok: false, kind: "permanent", error: said };
    return { ok: false, kind: "rejected", error: said };
  }
  // A private SMTP host is a setting to fix, not a network hiccup (nodemailer may wrap our refusal in its own error).
  if (err instanceof PrivateTargetRefused || e.code === "EPRIVATETARGET" || /private or local address/.test(e.message)) return { ok: false, kind: "rejected", error: e.message };
  if (e.code && CONNECTION_CODES.has(e.code)) return { ok: false, kind: "transient", error: e.message };
  if (e.code === "EENVELOPE" || e.code === "EMESSAGE" || e.code === "EREQUIRETLS") return { ok: false, kind: "rejected", error: e.message };
  return { ok: false, kind: "transient", error: e.message };
}

/** Email has no buttons: a link becomes a "label: url" line, a payload button its label (a suggested answer). */
function composeText(message: OutboundMessage): string {
  const lines = message.buttons
    .map((b) => {
      const label = b.text.trim();
      if (b.url) return label ? `${label}: ${b.url}` : b.url;
      return label;
    })
    .filter(Boolean);
  return [message.text.trim(), lines.join("\n")].filter(Boolean).join("\n\n");
}

/** A Message-ID derived from the command, so a retried send carries the same id and mail clients show it once. */
function messageIdFor(commandId: string, fromAddress: string): string | undefined {
  const local = commandId.replace(/[^A-Za-z0-9._-]/g, "");
  return local ? `<${local}@${fromAddress.slice(fromAddress.lastIndexOf("@") + 1)}>` : undefined;
}

function httpUrl(value: string): URL | undefined {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url : undefined;
  } catch {
    return undefined;
  }
}

function fileNameOf(url: URL): string {
  const last = url.pathname.split("/").pop() ?? "";
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

const stripBrackets = (id: string) => id.trim().replace(/^<|>$/g, "");

type Pool = Transporter<SMTPPool.SentMessageInfo, SMTPPool.Options>;

export class EmailAdapter implements ProviderAdapter {
  readonly messenger = Messenger.EMAIL;
  /** One connection pool per account; the fingerprint notices changed settings or password after a reconnect. */
  private readonly pools = new Map<string, { fingerprint: string; transport: Pool }>();

  constructor(private readonly options: { timeoutMs: number; allowPrivateTargets: boolean }) {}

  async connect(input: ConnectInput): Promise<ConnectResult> {
    const config = readConfig(input.settings, input.secrets);
    const transport = nodemailer.createTransport({ ...smtpOptions(config, this.options.timeoutMs), getSocket: noDelaySockets(config.host, config.port, this.options.timeoutMs, this.options.allowPrivateTargets) });
    try {
      await transport.verify();
    } catch (err) {
      const e = asFailure(err);
      if (err instanceof PrivateTargetRefused) throw new ChannelSetupError("email.smtp_host", err.message);
      if (isAuthFailure(e)) {
        throw new ChannelSetupError("email.smtp_password", `the SMTP server refused the login for ${config.user || "(no user)"}: ${serverSaid(e)}`);
      }
      throw new ChannelSetupError("email.smtp_host", `cannot reach ${config.host}:${config.port}: ${serverSaid(e)}`);
    } finally {
      transport.close();
    }
    return {
      settings: {
        ...input.settings,
        smtpHost: config.host,
        smtpPort: String(config.port),
        smtpSecure: String(config.secure),
        smtpUser: config.user,
        fromAddress: config.fromAddress,
        fromName: config.fromName,
        defaultSubject: config.defaultSubject,
      },
      // inboundSecretHash comes from the service, which generated the secret; the adapter only carries it through.
      secrets: { ...input.secrets },
      accountLabel: config.fromAddress,
    };
  }

  async disconnect(account: AccountView): Promise<void> {
    this.pools.get(account.id)?.transport.close();
    this.pools.delete(account.id);
  }

  /** Closes every account's SMTP connections (service shutdown); messages being sent finish first. */
  close(): void {
    for (const { transport } of this.pools.values()) transport.close();
    this.pools.clear();
  }

  async handleWebhook(account: AccountView, request: WebhookRequest): Promise<WebhookOutcome> {
    if (request.method !== "POST") throw new WebhookRejected(400, "the email webhook accepts POST only");
    verifyBearer(request.headers.authorization, account.secrets.inboundSecretHash);
    const contentType = (request.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
    let message;
    if (contentType === "message/rfc822" || contentType === "text/plain") message = await parseMimeEmail(request.rawBody);
    else if (contentType === "application/json") message = parseJsonEmail(request.rawBody);
    else {
      throw new WebhookRejected(
        400,
        `unsupported content-type "${contentType || "(none)"}": post a raw message as message/rfc822 or a parsed one as application/json`,
      );
    }
    const outcome = emptyOutcome();
    outcome.messages.push(message);
    return outcome;
  }

  async send(account: AccountView, message: OutboundMessage): Promise<SendResult> {
    let config: SmtpConfig;
    try {
      config = readConfig(account.settings, account.secrets);
    } catch (err) {
      return { ok: false, kind: "rejected", error: `the channel's SMTP settings are invalid: ${(err as Error).message}` };
    }
    const to = message.recipientId.trim();
    if (!isEmailAddress(to)) return { ok: false, kind: "rejected", error: `"${message.recipientId}" is not a valid email address` };
    const attachments = [];
    for (const a of message.attachments) {
      const url = httpUrl(a.url);
      if (!url) {
        return { ok: false, kind: "rejected", error: `attachment "${a.fileName || a.url || "(unnamed)"}" has no http(s) URL: email can attach only files it can download` };
      }
      // Downloaded here, not by nodemailer: the URL is the user's choice and must not reach private addresses.
      let file;
      try {
        file = await fetchPublic(a.url, { timeoutMs: this.options.timeoutMs, maxBytes: MAX_ATTACHMENT_BYTES, allowPrivate: this.options.allowPrivateTargets });
      } catch (err) {
        const name = a.fileName || fileNameOf(url) || a.url;
        const refused = err instanceof PrivateTargetRefused || (err instanceof FetchFailed && err.status !== undefined && err.status < 500);
        return { ok: false, kind: refused ? "rejected" : "transient", error: `attachment "${name}" could not be downloaded: ${(err as Error).message}` };
      }
      attachments.push({ filename: a.fileName || fileNameOf(url) || "attachment", content: file.body, contentType: a.mimeType || file.contentType });
    }
    const text = composeText(message);
    if (!text && attachments.length === 0) return { ok: false, kind: "rejected", error: "nothing to send: the message has no text, buttons or attachments" };
    const messageId = messageIdFor(message.commandId, config.fromAddress);
    try {
      const info = await this.poolFor(account.id, config).sendMail({
        from: { name: config.fromName, address: config.fromAddress },
        to,
        subject: message.subject.trim() || config.defaultSubject || "Message",
        text,
        attachments,
        ...(messageId ? { messageId } : {}),
      });
      return { ok: true, providerMessageId: stripBrackets(info.messageId) };
    } catch (err) {
      return classifySendError(err);
    }
  }

  private poolFor(accountId: string, config: SmtpConfig): Pool {
    const fingerprint = createHash("sha256")
      .update(JSON.stringify([config.host, config.port, config.secure, config.user, config.password]))
      .digest("hex");
    const cached = this.pools.get(accountId);
    if (cached?.fingerprint === fingerprint) return cached.transport;
    cached?.transport.close();
    const transport = nodemailer.createTransport({
      ...smtpOptions(config, this.options.timeoutMs),
      pool: true,
      getSocket: noDelaySockets(config.host, config.port, this.options.timeoutMs, this.options.allowPrivateTargets),
    });
    this.pools.set(accountId, { fingerprint, transport });
    return transport;
  }
}

/** Authorization: Bearer <secret>, compared by hash in constant time (the service keeps only the hash). */
function verifyBearer(header: string | undefined, expectedHash: string | undefined): void {
  const token = /^Bearer\s+(.+)$/i.exec(header?.trim() ?? "")?.[1]?.trim();
  if (!token) throw new WebhookRejected(401, "missing credentials: send Authorization: Bearer <the channel's inbound secret>");
  if (!equalSecret(hashInboundSecret(token), expectedHash?.toLowerCase())) {
    throw new WebhookRejected(401, "the bearer token is not this channel's inbound secret");
  }
}
