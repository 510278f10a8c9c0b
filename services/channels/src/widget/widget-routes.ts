import { randomUUID } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MessageKind } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "@chatcrm/logging";
import type { Model } from "mongoose";
import { z } from "zod";
import type { ChannelRegistry, ResolvedChannel } from "../accounts/channel-registry";
import type { SecretBox } from "../crypto/secret-box";
import type { WebhookAcceptor } from "../inbound/accept-webhook";
import { derivedId } from "../inbound/message-ids";
import { emptyOutcome, type NormalizedInbound } from "../providers/provider";
import { stateOfRank, type MessageDoc } from "../store/models";
import { RateLimiter, type Rate } from "../outbound/rate-limiter";
import type { WidgetFrame, WidgetHub } from "./widget-hub";
import { channelOfWidgetKey, newVisitorToken, visitorOfToken } from "./widget-key";

export interface WidgetDeps {
  registry: ChannelRegistry;
  box: SecretBox;
  acceptor: WebhookAcceptor;
  hub: WidgetHub;
  messages: Model<MessageDoc>;
  enforceOrigins: boolean;
  logger: Logger;
  /** Messages a second (and burst) one client address may send; the widget key is public, so this is the brake. */
  perAddress: Rate;
}

/** What a visitor sends, over the socket or the HTTP fallback. */
const visitorMessage = z.object({
  text: z.string().max(4096, { error: "text: at most 4096 characters" }).optional(),
  button_payload: z.string().max(256, { error: "button_payload: at most 256 characters" }).optional(),
  /** The page's start parameters (utm_source=…), sent with the first message. */
  start_payload: z.string().max(512, { error: "start_payload: at most 512 characters" }).optional(),
  /** The widget's own id for the message; a retried send with the same id is taken once. */
  client_message_id: z.string().min(1).max(100, { error: "client_message_id: at most 100 characters" }).optional(),
  profile: z.object({ first_name: z.string().max(100).optional(), last_name: z.string().max(100).optional(), language: z.string().max(35).optional() }).optional(),
});
type VisitorMessage = z.infer<typeof visitorMessage>;

/** Frames one socket may have waiting to be accepted; a widget sends one message at a time. */
const MAX_QUEUED_FRAMES = 20;

class WidgetError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The web chat widget's endpoints: a WebSocket (/widget/v1/ws) that carries the visitor's messages in and the
 * bot's replies out, and an HTTP fallback (POST / GET /widget/v1/messages) for networks that block WebSockets.
 * A visitor keeps their id across page loads with the signed token from the first "hello"; the channel comes from
 * the embedded key, and a configured origin list is enforced on both.
 */
export function registerWidgetRoutes(app: FastifyInstance, deps: WidgetDeps): void {
  const { box, registry, acceptor, hub, logger } = deps;

  const channelFor = async (key: unknown, origin: string | undefined): Promise<ResolvedChannel> => {
    const channelId = typeof key === "string" ? channelOfWidgetKey(box, key) : null;
    const channel = channelId ? await registry.resolve(channelId) : null;
    if (!channel || channel.messenger !== "web" || channel.doc.state !== "connected") throw new WidgetError(404, "unknown or disconnected widget key");
    const allowed = channel.doc.allowedOrigins ?? [];
    if (deps.enforceOrigins && allowed.length > 0 && (!origin || !allowed.includes(origin))) throw new WidgetError(403, `this widget is not allowed on ${origin ?? "a page without an Origin"}`);
    return channel;
  };

  const visitorFor = (channel: ResolvedChannel, token: unknown) => {
    if (typeof token === "string" && token) {
      const visitorId = visitorOfToken(box, channel.doc._id, token);
      if (!visitorId) throw new WidgetError(401, "the visitor token is not valid for this widget; start without one to get a new visitor");
      return { visitorId, token, isNew: false };
    }
    return { ...newVisitorToken(box, channel.doc._id), isNew: true };
  };

  const limiter = new RateLimiter();
  const accept = async (channel: ResolvedChannel, visitorId: string, message: VisitorMessage, address: string): Promise<string> => {
    if (!message.text?.trim() && !message.button_payload) throw new WidgetError(400, "a message needs text or a button_payload");
    const wait = limiter.tryTake(`${channel.doc._id}|${address}`, deps.perAddress);
    if (wait > 0) throw new WidgetError(429, `too many messages; send again in ${Math.ceil(wait / 1000)} s`);
    const providerMessageId = message.client_message_id ? `${visitorId}:${message.client_message_id}` : randomUUID();
    const inbound: NormalizedInbound = {
      providerMessageId,
      senderId: visitorId,
      sender: { firstName: message.profile?.first_name ?? "", lastName: message.profile?.last_name ?? "", language: message.profile?.language ?? "" },
      kind: message.button_payload ? MessageKind.BUTTON : MessageKind.TEXT,
      text: message.text ?? "",
      buttonPayload: message.button_payload ?? "",
      startPayload: message.start_payload ?? "",
      sentAt: timestampFromDate(new Date()),
    };
    await acceptor.accept(channel, { ...emptyOutcome(), messages: [inbound] });
    // The id the message has on Kafka and in the chat history, so the widget can match what it reads back.
    return derivedId(channel.doc._id, providerMessageId);
  };

  const corsHeaders = (request: FastifyRequest, reply: FastifyReply) => {
    const origin = request.headers.origin;
    if (origin) reply.header("access-control-allow-origin", origin).header("vary", "Origin");
  };
  const fail = (reply: FastifyReply, err: unknown) => {
    if (err instanceof WidgetError) return reply.code(err.status).send({ error: err.message });
    if (err instanceof z.ZodError) return reply.code(400).send({ error: err.issues.map((i) => i.message).join("; ") });
    throw err;
  };

  app.options("/widget/v1/messages", (request, reply) => {
    corsHeaders(request, reply);
    return reply.header("access-control-allow-methods", "GET, POST").header("access-control-allow-headers", "content-type").code(204).send();
  });

  app.post("/widget/v1/messages", async (request, reply) => {
    try {
      corsHeaders(request, reply);
      let parsed: unknown;
      try {
        parsed = JSON.parse((request.body as Buffer | undefined)?.toString("utf8") || "{}");
      } catch {
        throw new WidgetError(400, "the body is not valid JSON");
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new WidgetError(400, "the body must be a JSON object");
      const body = parsed as Record<string, unknown>;
      const channel = await channelFor(body["key"], request.headers.origin);
      const visitor = visitorFor(channel, body["token"]);
      const messageId = await accept(channel, visitor.visitorId, visitorMessage.parse(body), request.ip);
      return reply.code(202).send({ visitor_id: visitor.visitorId, token: visitor.token, message_id: messageId });
    } catch (err) {
      return fail(reply, err);
    }
  });

  // The HTTP fallback's way to get replies: the chat's latest messages in both directions, oldest first.
  app.get("/widget/v1/messages", async (request, reply) => {
    try {
      corsHeaders(request, reply);
      const query = request.query as Record<string, string | undefined>;
      const channel = await channelFor(query["key"], request.headers.origin);
      if (!query["token"]) throw new WidgetError(401, "a visitor token is required to read messages");
      const { visitorId } = visitorFor(channel, query["token"]);
      const since = query["since"] ? new Date(query["since"]) : new Date(0);
      if (Number.isNaN(since.getTime())) throw new WidgetError(400, "since: expected an ISO date-time");
      const docs = await deps.messages
        .find({ projectId: channel.doc.projectId, channelId: channel.doc._id, peerId: visitorId, createdAt: { $gt: since } })
        .sort({ createdAt: -1, _id: -1 })
        .limit(50)
        .lean<MessageDoc[]>();
      return reply.send({
        messages: docs.reverse().map((d) => ({ id: d._id, direction: d.direction === "in" ? "visitor" : "bot", text: d.text, buttons: d.buttons, attachments: d.attachments, state: d.direction === "out" ? stateOfRank(d.stateRank) : "received", at: d.createdAt.toISOString() })),
      });
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.get("/widget/v1/ws", { websocket: true }, async (socket, request) => {
    const send = (frame: WidgetFrame) => socket.send(JSON.stringify(frame));
    const query = request.query as Record<string, string | undefined>;
    // Frames that arrive while the channel is being resolved are kept, not dropped.
    const early: Buffer[] = [];
    const keep = (data: Buffer) => {
      if (early.push(data) > MAX_QUEUED_FRAMES) socket.close(1008, "too many frames at once");
    };
    socket.on("message", keep);
    let channel: ResolvedChannel;
    let visitor: { visitorId: string; token: string };
    try {
      channel = await channelFor(query["key"], request.headers.origin);
      visitor = visitorFor(channel, query["token"]);
    } catch (err) {
      send({ type: "error", error: err instanceof WidgetError ? err.message : "internal error" });
      socket.close(err instanceof WidgetError ? 4000 + err.status : 1011, "refused");
      return;
    }
    // The visitor may have gone while the channel was looked up: a closed socket must not be registered.
    if (socket.readyState !== socket.OPEN) return;
    hub.add(channel.doc._id, visitor.visitorId, socket);
    send({ type: "hello", visitor_id: visitor.visitorId, token: visitor.token });
    const onFrame = async (data: Buffer) => {
      try {
        const frame = JSON.parse(data.toString("utf8")) as unknown;
        if (typeof frame !== "object" || frame === null || Array.isArray(frame)) throw new WidgetError(400, "a frame must be a JSON object");
        if ((frame as { type?: unknown }).type === "ping") return send({ type: "pong" });
        const type = (frame as { type?: unknown }).type;
        if (type !== "message") throw new WidgetError(400, `unknown frame type "${String(type)}"; expected message or ping`);
        const message = visitorMessage.parse(frame);
        const messageId = await accept(channel, visitor.visitorId, message, request.ip);
        send({ type: "accepted", client_message_id: message.client_message_id ?? "", message_id: messageId });
      } catch (err) {
        if (err instanceof SyntaxError) return send({ type: "error", error: "the frame is not valid JSON" });
        if (err instanceof WidgetError) return send({ type: "error", error: err.message });
        if (err instanceof z.ZodError) return send({ type: "error", error: err.issues.map((i) => i.message).join("; ") });
        logger.error({ err, channelId: channel.doc._id }, "widget message could not be accepted");
        send({ type: "error", error: "the message could not be accepted; send it again" });
      }
    };
    // One visitor's messages are accepted one after another, so they reach Kafka in the order they were typed.
    // A visitor who sends faster than messages are accepted is cut off rather than buffered without bound.
    let chain = Promise.resolve();
    let queued = 0;
    const enqueue = (data: Buffer) => {
      if (++queued > MAX_QUEUED_FRAMES) return socket.close(1008, "too many frames at once");
      chain = chain.then(() => onFrame(data)).finally(() => queued--);
    };
    socket.off("message", keep);
    early.forEach(enqueue);
    socket.on("message", enqueue);
  });
}
