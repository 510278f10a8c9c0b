import Fastify, { type FastifyInstance } from "fastify";
import websocket from "@fastify/websocket";
import type { Logger } from "@chatcrm/logging";

export interface HttpServerOptions {
  bodyLimitBytes: number;
  trustProxy: boolean;
  logger: Logger;
}

/**
 * The HTTP listener for provider webhooks and the web widget. Bodies stay raw bytes: signatures (WhatsApp's HMAC)
 * are computed over the exact body, and each adapter parses its own format. Fastify answers an oversized body with
 * 413 before any of our code runs; errors a client sees never carry a stack or an internal address.
 */
export async function createHttpServer(options: HttpServerOptions, register: (app: FastifyInstance) => void | Promise<void>): Promise<FastifyInstance> {
  const app = Fastify({ bodyLimit: options.bodyLimitBytes, logger: false, return503OnClosing: true, keepAliveTimeout: 30_000, trustProxy: options.trustProxy });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));
  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) options.logger.error({ err, url: request.url }, "webhook handler failed");
    const message = status === 413 ? `the body is larger than the ${options.bodyLimitBytes} bytes this endpoint accepts` : status === 500 ? "internal error" : err.message;
    return reply.code(status).send({ error: message });
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: `nothing at ${request.method} ${request.url.split("?")[0]}` }));
  app.get("/healthz", () => ({ ok: true }));
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  await register(app);
  return app;
}
