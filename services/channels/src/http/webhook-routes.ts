import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "@chatcrm/logging";
import type { ChannelRegistry } from "../accounts/channel-registry";
import { isMessengerName } from "../accounts/messengers";
import type { WebhookAcceptor } from "../inbound/accept-webhook";
import { WebhookRejected, type WebhookRequest } from "../providers/provider";

interface WebhookParams {
  messenger: string;
  channelId: string;
}

/**
 * /webhooks/<messenger>/<channel id>: the adapter verifies and parses, the acceptor makes the result durable, and
 * only then the provider gets its answer. A refused request publishes nothing; when neither Kafka nor MongoDB takes
 * the events the provider gets 503 and delivers again later.
 */
export function registerWebhookRoutes(app: FastifyInstance, registry: ChannelRegistry, acceptor: WebhookAcceptor, logger: Logger): void {
  const handle = async (request: FastifyRequest<{ Params: WebhookParams }>, reply: FastifyReply) => {
    const { messenger, channelId } = request.params;
    const channel = isMessengerName(messenger) && messenger !== "web" ? await registry.resolve(channelId) : null;
    if (!channel || channel.messenger !== messenger || channel.doc.state !== "connected") {
      return reply.code(404).send({ error: `no connected ${messenger} channel ${channelId}` });
    }
    const webhook: WebhookRequest = {
      method: request.method === "GET" ? "GET" : "POST",
      headers: request.headers as Record<string, string | undefined>,
      query: request.query as Record<string, string | undefined>,
      rawBody: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
    };
    let outcome;
    try {
      outcome = await registry.adapter(channel.messenger).handleWebhook(channel.account, webhook);
    } catch (err) {
      if (err instanceof WebhookRejected) {
        logger.warn({ channelId, messenger, status: err.status, reason: err.message }, "webhook refused");
        return reply.code(err.status).send({ error: err.message });
      }
      throw err;
    }
    try {
      await acceptor.accept(channel, outcome);
    } catch (err) {
      logger.error({ err, channelId }, "could not make the webhook's events durable; the provider will deliver again");
      return reply.code(503).send({ error: "temporarily unavailable; deliver again later" });
    }
    const { status, body, contentType } = outcome.reply;
    if (contentType) reply.type(contentType);
    return reply.code(status).send(body ?? "");
  };
  app.get<{ Params: WebhookParams }>("/webhooks/:messenger/:channelId", handle);
  app.post<{ Params: WebhookParams }>("/webhooks/:messenger/:channelId", handle);
}
