import { z } from "zod";
import { bool, port, positiveInt, serviceBaseSchema } from "@chatcrm/config";

const httpUrl = (fallback: string) => z.url({ error: "expected an http(s) URL" }).default(fallback);

/** Environment of the channels service; see .env.example. */
export const configSchema = serviceBaseSchema({ grpcPort: 50051, database: "chatcrm_channels" }).extend({
  /** Webhooks from the messengers and the web chat widget (HTTP and WebSocket). */
  WEBHOOK_HOST: z.string().default("0.0.0.0"),
  WEBHOOK_PORT: port(8081),
  /** How the messengers reach WEBHOOK_PORT from outside (behind the ingress); Telegram webhooks are registered under it. */
  PUBLIC_WEBHOOK_BASE_URL: httpUrl("http://127.0.0.1:8081"),
  /**
   * Behind an ingress or load balancer: take the client's address from X-Forwarded-For (the widget's per-address
   * limit needs it). Leave off when the port is reachable directly, or clients could claim any address.
   */
  WEBHOOK_TRUST_PROXY: bool(false),
  /** Largest webhook body accepted; a bigger one is answered 413. Raw emails with attachments are the largest. */
  WEBHOOK_BODY_LIMIT_BYTES: positiveInt(10 * 1024 * 1024),
  /**
   * Required: 32 random bytes, base64, that encrypt the channels' secrets (tokens, passwords) at rest and sign web
   * widget visitor ids. Generate with `openssl rand -base64 32`; keep it in the cluster's secret store.
   */
  CHANNEL_SECRETS_KEY: z
    .string({ error: "is required: 32 random bytes in base64 (openssl rand -base64 32)" })
    .refine((v) => Buffer.from(v, "base64").length === 32, { error: "expected 32 bytes in base64 (openssl rand -base64 32)" }),
  TELEGRAM_API_URL: httpUrl("https://api.telegram.org"),
  WHATSAPP_API_URL: httpUrl("https://graph.facebook.com"),
  VK_API_URL: httpUrl("https://api.vk.com"),
  /** One provider call (or SMTP session step) may take this long before it counts as a network error. */
  PROVIDER_TIMEOUT_MS: positiveInt(15_000),
  /** The consumer group of the outbound dispatcher; replicas share it. */
  KAFKA_CONSUMER_GROUP: z.string().min(1).default("channels"),
  /** The consumer group that writes the message log. */
  MESSAGE_LOG_CONSUMER_GROUP: z.string().min(1).default("channels-message-log"),
  /** Kafka partitions handled at once by each consumer. */
  CONSUMER_CONCURRENCY: positiveInt(6),
  /** Provider calls in flight at once across all chats. */
  DISPATCH_MAX_IN_FLIGHT: positiveInt(256),
  /** Tries of a send that keeps failing with a network error or 5xx before it is reported failed. */
  SEND_MAX_ATTEMPTS: positiveInt(8),
  /** Cap of the exponential backoff between those tries. */
  SEND_MAX_BACKOFF_MS: positiveInt(60_000),
  /** The longest a send keeps waiting on "too many requests" answers before it is reported failed. */
  SEND_MAX_RATE_LIMIT_WAIT_MS: positiveInt(15 * 60_000),
  /**
   * Overrides of the built-in provider limits, as JSON: {"telegram":{"perAccount":{"ratePerSec":30,"burst":30},
   * "perChat":{"ratePerSec":1,"burst":3}}, …}. Keys: telegram, whatsapp, vk, email, web.
   */
  CHANNEL_RATE_LIMITS: z.string().default("{}"),
  /** Accepted webhooks that could not be published at once (Kafka away) are retried this often. */
  INBOUND_RELAY_INTERVAL_MS: positiveInt(5_000),
  RESEND_POLL_INTERVAL_MS: positiveInt(2_000),
  /**
   * Lets user-chosen targets (an SMTP host, an email attachment URL) be private or loopback addresses. Off in
   * production: a tenant must not reach the cluster's own network through the platform. Tests and local SMTP relays
   * turn it on.
   */
  ALLOW_PRIVATE_NETWORK_TARGETS: bool(false),
  /** Whether the web widget's HTTP fallback and WebSocket answer CORS / Origin checks for allowed origins only. */
  WIDGET_ENFORCE_ORIGINS: bool(true),
  /** Messages a second one client address may send through the widget, and the burst above it. */
  WIDGET_MESSAGES_PER_SEC_PER_ADDRESS: positiveInt(5),
  WIDGET_BURST_PER_ADDRESS: positiveInt(20),
});

export type Config = z.infer<typeof configSchema>;
