import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import type { Logger } from "@chatcrm/logging";
import { request } from "undici";
import type { Attachment } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import type { ChannelRegistry, ResolvedChannel } from "../accounts/channel-registry";
import type { SecretBox } from "../crypto/secret-box";

/**
 * Inbound media that a messenger gives as a reference (a Telegram file id, a WhatsApp media id) become links to this
 * service: /media/<channel>/<reference>?sig=<HMAC>. A UI shows them like any URL; the service fetches the file from
 * the messenger with the channel's token when asked, so the token never leaves it, and the signature keeps anyone
 * from fetching files by guessing references.
 */
export class MediaLinks {
  constructor(
    private readonly box: SecretBox,
    private readonly publicBaseUrl: string,
  ) {}

  private sign = (channelId: string, ref: string) => this.box.sign(`media:${channelId}:${ref}`);

  // The reference travels in the path and the tag in the query (a ref may hold dots), so signedId does not fit.
  link(channelId: string, ref: string): string {
    return `${this.publicBaseUrl.replace(/\/$/, "")}/media/${channelId}/${encodeURIComponent(ref)}?sig=${this.sign(channelId, ref)}`;
  }

  verify(channelId: string, ref: string, sig: string): boolean {
    return this.box.verify(`media:${channelId}:${ref}`, sig);
  }

  /** The attachments with every messenger reference turned into a link. */
  rewrite(channel: ResolvedChannel, registry: ChannelRegistry, attachments: Attachment[] | undefined): Attachment[] | undefined {
    const adapter = registry.adapter(channel.messenger);
    if (!attachments || !adapter.isMediaRef) return attachments;
    return attachments.map((a) => (adapter.isMediaRef!(a.url) ? { ...a, url: this.link(channel.doc._id, a.url) } : a));
  }
}

export function registerMediaRoutes(app: FastifyInstance, registry: ChannelRegistry, links: MediaLinks, timeoutMs: number, logger: Logger): void {
  app.get<{ Params: { channelId: string; ref: string }; Querystring: { sig?: string } }>("/media/:channelId/:ref", async (req, reply) => {
    const { channelId, ref } = req.params;
    if (!links.verify(channelId, ref, req.query.sig ?? "")) return reply.code(403).send({ error: "this media link is not valid" });
    const channel = await registry.resolve(channelId);
    const adapter = channel ? registry.adapter(channel.messenger) : undefined;
    if (!channel || !adapter?.resolveMedia) return reply.code(404).send({ error: "the channel of this file no longer exists" });
    let res;
    try {
      const source = await adapter.resolveMedia(channel.account, ref);
      res = await request(source.url, { headers: source.headers, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    } catch (err) {
      logger.warn({ err, channelId }, "the messenger did not give a media file");
      return reply.code(502).send({ error: `the messenger did not give the file: ${(err as Error).message.replace(/bot\d+:[\w-]+/g, "bot***")}` });
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      return reply.code(502).send({ error: `the messenger answered HTTP ${res.statusCode} for the file` });
    }
    const type = res.headers["content-type"];
    reply.header("content-type", (Array.isArray(type) ? type[0] : type) ?? "application/octet-stream").header("cache-control", "private, max-age=3600");
    return reply.send(Readable.from(res.body));
  });
}
