import { ChannelsService } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { subscribeBatch, Topics } from "@chatcrm/kafka";
import { startBackend } from "@chatcrm/lifecycle";
import type { Logger } from "@chatcrm/logging";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import { ChannelRegistry } from "./accounts/channel-registry";
import type { MessengerName } from "./accounts/messengers";
import type { Config } from "./config";
import { SecretBox } from "./crypto/secret-box";
import { MediaLinks, registerMediaRoutes } from "./http/media-links";
import { registerWebhookRoutes } from "./http/webhook-routes";
import { createHttpServer } from "./http/webhook-server";
import { WebhookAcceptor } from "./inbound/accept-webhook";
import { DurablePublisher } from "./inbound/durable-publisher";
import { MessageLogWriter } from "./log/message-log-writer";
import { Dispatcher } from "./outbound/dispatcher";
import { limitsFromConfig, RateLimiter } from "./outbound/rate-limiter";
import { EmailAdapter } from "./providers/email/email-adapter";
import type { ProviderAdapter } from "./providers/provider";
import { TelegramAdapter } from "./providers/telegram/telegram-adapter";
import { VkAdapter } from "./providers/vk/vk-adapter";
import { WebWidgetAdapter } from "./providers/web/web-adapter";
import { WhatsAppAdapter } from "./providers/whatsapp/whatsapp-adapter";
import { ResendJobs, resendJobModel } from "./resend/resend-jobs";
import { channelsServiceHandlers } from "./rpc/channels-service";
import { channelModels } from "./store/models";
import { WidgetHub } from "./widget/widget-hub";
import { registerWidgetRoutes } from "./widget/widget-routes";

/** Starts the channels service; main.ts runs it, tests start it on ephemeral ports. */
export function startChannels(config: Config, logger: Logger) {
  const limits = limitsFromConfig(config.CHANNEL_RATE_LIMITS);
  return startBackend({
    name: "channels",
    config,
    logger,
    topics: [Topics.inboundMessages, Topics.sendCommands, Topics.deliveryStatuses, Topics.subscriberStatuses, Topics.widgetReplies],
    register: async (ctx) => {
      const models = channelModels(ctx.mongo.connection);
      const resendJobsModel = resendJobModel(ctx.mongo.connection);
      ctx.addModels(...Object.values(models), resendJobsModel);

      const box = new SecretBox(config.CHANNEL_SECRETS_KEY);
      const timeoutMs = config.PROVIDER_TIMEOUT_MS;
      const email = new EmailAdapter({ timeoutMs, allowPrivateTargets: config.ALLOW_PRIVATE_NETWORK_TARGETS });
      const adapters: Record<MessengerName, ProviderAdapter> = {
        telegram: new TelegramAdapter({ apiBaseUrl: config.TELEGRAM_API_URL, timeoutMs }),
        whatsapp: new WhatsAppAdapter({ apiBaseUrl: config.WHATSAPP_API_URL, timeoutMs }),
        vk: new VkAdapter({ apiBaseUrl: config.VK_API_URL, timeoutMs }),
        email,
        web: new WebWidgetAdapter(ctx.publisher),
      };
      const registry = new ChannelRegistry(models.channels, adapters, box, config.PUBLIC_WEBHOOK_BASE_URL, logger);
      const durable = new DurablePublisher(ctx.publisher, models.pendingEvents, logger);
      const media = new MediaLinks(box, config.PUBLIC_WEBHOOK_BASE_URL);
      const acceptor = new WebhookAcceptor(durable, models.providerRefs, { rewrite: (channel, attachments) => media.rewrite(channel, registry, attachments) }, logger);
      const dispatcher = new Dispatcher(registry, durable, models.messages, models.providerRefs, new RateLimiter(), {
        limits,
        maxInFlight: config.DISPATCH_MAX_IN_FLIGHT,
        maxAttempts: config.SEND_MAX_ATTEMPTS,
        maxBackoffMs: config.SEND_MAX_BACKOFF_MS,
        maxRateLimitWaitMs: config.SEND_MAX_RATE_LIMIT_WAIT_MS,
      }, logger);
      const log = new MessageLogWriter(models);
      const resend = new ResendJobs(resendJobsModel, models, registry, ctx.publisher, logger, { leaseMs: 30_000, pollIntervalMs: config.RESEND_POLL_INTERVAL_MS });
      const hub = new WidgetHub();

      ctx.grpc.addService(ChannelsService, channelsServiceHandlers({ registry, models, publisher: ctx.publisher, resend }));
      ctx.addConsumer({
        groupId: config.KAFKA_CONSUMER_GROUP,
        partitionsConsumedConcurrently: config.CONSUMER_CONCURRENCY,
        subscriptions: [subscribeBatch(Topics.sendCommands, dispatcher.handleBatch)],
      });
      ctx.addConsumer({
        groupId: config.MESSAGE_LOG_CONSUMER_GROUP,
        partitionsConsumedConcurrently: config.CONSUMER_CONCURRENCY,
        subscriptions: [subscribeBatch(Topics.inboundMessages, log.inbound), subscribeBatch(Topics.sendCommands, log.commands), subscribeBatch(Topics.deliveryStatuses, log.statuses)],
      });
      // Every replica reads every widget reply (its own group, from now on) and pushes those whose visitor it holds.
      // A batch subscription: pushing is cheap and harmless to repeat, so no processed-event record per reply.
      ctx.addConsumer({
        groupId: `${config.KAFKA_CONSUMER_GROUP}-widget-${hostname()}-${randomUUID().slice(0, 8)}`,
        fromBeginning: false,
        subscriptions: [subscribeBatch(Topics.widgetReplies, async (events) => events.forEach((e) => hub.deliver(e.value)))],
      });

      const http = await createHttpServer({ bodyLimitBytes: config.WEBHOOK_BODY_LIMIT_BYTES, trustProxy: config.WEBHOOK_TRUST_PROXY, logger }, (app) => {
        registerWebhookRoutes(app, registry, acceptor, logger);
        registerMediaRoutes(app, registry, media, config.PROVIDER_TIMEOUT_MS, logger);
        registerWidgetRoutes(app, { registry, box, acceptor, hub, messages: models.messages, enforceOrigins: config.WIDGET_ENFORCE_ORIGINS,
          logger,
          perAddress: { ratePerSec: config.WIDGET_MESSAGES_PER_SEC_PER_ADDRESS, burst: config.WIDGET_BURST_PER_ADDRESS },
        });
      });
      const parts = { registry, models, acceptor, dispatcher, durable, resend, hub, webhookPort: 0 };

      ctx.onStarted(async () => {
        // What a crash left stored goes out before new webhooks, so they do not overtake it.
        while ((await durable.relay()) > 0);
        await http.listen({ host: config.WEBHOOK_HOST, port: config.WEBHOOK_PORT });
        parts.webhookPort = (http.server.address() as AddressInfo).port;
        logger.info({ webhookPort: parts.webhookPort }, "channels accepts webhooks and widget connections");
        resend.runner.start();
      });
      ctx.onShutdown("webhooks", async () => {
        hub.closeAll();
        await http.close();
      });
      // Registered after the webhooks hook, so at shutdown it stops first (hooks run last-added first).
      ctx.every("relay of stored webhook events", config.INBOUND_RELAY_INTERVAL_MS, () => durable.relay());
      ctx.onShutdown("resend jobs", () => resend.runner.stop());
      ctx.onShutdown("SMTP pools", () => email.close());
      return parts;
    },
  });
}
