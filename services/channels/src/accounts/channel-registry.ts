import { randomBytes, randomUUID } from "node:crypto";
import type { ConnectChannelRequest } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { failedPrecondition, invalidArgument, notFound } from "@chatcrm/grpc";
import type { Logger } from "@chatcrm/logging";
import { scopeToProject } from "@chatcrm/mongo";
import type { Model } from "mongoose";
import type { SecretBox } from "../crypto/secret-box";
import { hashInboundSecret } from "../providers/email/email-adapter";
import { ChannelSetupError, type AccountView, type ProviderAdapter } from "../providers/provider";
import type { ChannelDoc } from "../store/models";
import { messengerOf, webhookPath, type MessengerName } from "./messengers";
import { settingsFromRequest } from "./connect-settings";
import { widgetKeyFor } from "../widget/widget-key";

/** A channel as the hot paths use it: its record and the adapter's view with decrypted secrets. */
export interface ResolvedChannel {
  doc: ChannelDoc;
  account: AccountView;
  messenger: MessengerName;
}

/** Records are re-read this often, so a disconnect made on another replica takes effect within it. */
const CACHE_TTL_MS = 10_000;
/** Webhooks name channel ids from the outside (a made-up id is cached as missing): the cache stays bounded. */
const CACHE_MAX_ENTRIES = 20_000;

interface CacheEntry {
  at: number;
  channel: ResolvedChannel | null;
  refreshing?: Promise<unknown>;
}

/**
 * Connects, disconnects and resolves channel accounts. Webhooks and sends resolve their channel through a short
 * cache: a record is a scan on FerretDB and a round trip on MongoDB, and both paths run thousands of times a second.
 */
export class ChannelRegistry {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly loading = new Map<string, Promise<ResolvedChannel | null>>();

  constructor(
    private readonly channels: Model<ChannelDoc>,
    private readonly adapters: Record<MessengerName, ProviderAdapter>,
    private readonly box: SecretBox,
    private readonly publicBaseUrl: string,
    private readonly logger: Logger,
  ) {}

  adapter(messenger: MessengerName): ProviderAdapter {
    return this.adapters[messenger];
  }

  async connect(projectId: string, request: ConnectChannelRequest): Promise<{ doc: ChannelDoc; inboundSecret: string }> {
    const name = request.name.trim();
    if (!name || name.length > 100) throw invalidArgument("name", "give the channel a name of 1 to 100 characters");
    const { messenger, settings, secrets, allowedOrigins } = settingsFromRequest(request);
    const channelId = `ch_${randomUUID().replaceAll("-", "")}`;
    let inboundSecret = "";
    if (messenger === "email") {
      // The inbound mail relay presents it; only its hash is kept, so it is shown once.
      inboundSecret = randomBytes(24).toString("base64url");
      secrets["inboundSecretHash"] = hashInboundSecret(inboundSecret);
    }
    let connected = { settings, secrets, accountLabel: name };
    if (messenger !== "web") {
      try {
        connected = await this.adapters[messenger].connect({ channelId, settings, secrets, webhookUrl: `${this.publicBaseUrl.replace(/\/$/, "")}${webhookPath(messenger, channelId)}` });
      } catch (err) {
        if (err instanceof ChannelSetupError) throw invalidArgument(err.field, err.message);
        throw err;
      }
    }
    const doc: ChannelDoc = {
      _id: channelId,
      projectId,
      messenger,
      name,
      state: "connected",
      settings: connected.settings,
      sealedSecrets: this.box.seal(connected.secrets, channelId),
      accountLabel: connected.accountLabel,
      widgetKey: messenger === "web" ? widgetKeyFor(this.box, channelId) : "",
      allowedOrigins,
      createdAt: new Date(),
      disconnectedAt: null,
    };
    try {
      await this.channels.create(doc);
    } catch (err) {
      // The provider side is registered but the record is not: undo it so the webhook does not point nowhere.
      await this.adapters[messenger].disconnect(this.view(doc)).catch(() => undefined);
      throw err;
    }
    this.logger.info({ projectId, channelId, messenger }, "channel connected");
    return { doc, inboundSecret };
  }

  async disconnect(projectId: string, channelId: string): Promise<ChannelDoc> {
    const doc = await this.findOwned(projectId, channelId);
    if (doc.state === "disconnected") return doc;
    await this.adapters[doc.messenger as MessengerName].disconnect(this.view(doc)).catch((err: unknown) =>
      this.logger.warn({ err, channelId }, "the provider did not confirm removing the webhook; the channel is disconnected anyway"),
    );
    const disconnectedAt = new Date();
    await this.channels.updateOne({ _id: channelId }, { $set: { state: "disconnected", disconnectedAt } });
    this.cache.delete(channelId);
    this.logger.info({ projectId, channelId }, "channel disconnected");
    return { ...doc, state: "disconnected", disconnectedAt };
  }

  /** A project's channel, or NOT_FOUND: another project's id is indistinguishable from a missing one. */
  async findOwned(projectId: string, channelId: string): Promise<ChannelDoc> {
    const doc = channelId ? await this.channels.findById(channelId).lean<ChannelDoc>() : null;
    if (!doc || doc.projectId !== projectId) throw notFound(`channel ${channelId || "(empty id)"}`);
    return doc;
  }

  list(projectId: string, includeDisconnected: boolean) {
    return this.channels
      .find(scopeToProject(projectId, includeDisconnected ? {} : { state: "connected" }))
      .sort({ createdAt: 1 })
      .lean<ChannelDoc[]>();
  }

  /**
   * The channel for a webhook or a send, cached; null when it does not exist. Disconnected channels resolve too.
   * One read per channel is in flight however many callers miss at once, and an expired entry keeps serving while
   * it is re-read in the background, so thousands of sends a second never queue behind the database.
   */
  resolve(channelId: string): Promise<ResolvedChannel | null> {
    const hit = this.cache.get(channelId);
    if (hit) {
      if (Date.now() - hit.at >= CACHE_TTL_MS && !hit.refreshing) {
        hit.refreshing = this.load(channelId).catch((err: unknown) => {
          hit.refreshing = undefined;
          this.logger.warn({ err, channelId }, "could not re-read a channel; serving the cached record");
        });
      }
      return Promise.resolve(hit.channel);
    }
    let pending = this.loading.get(channelId);
    if (!pending) {
      pending = this.load(channelId).finally(() => this.loading.delete(channelId));
      this.loading.set(channelId, pending);
    }
    return pending;
  }

  private async load(channelId: string): Promise<ResolvedChannel | null> {
    const doc = await this.channels.findById(channelId).lean<ChannelDoc>();
    const channel = doc ? { doc, account: this.view(doc), messenger: doc.messenger as MessengerName } : null;
    this.cache.delete(channelId);
    this.cache.set(channelId, { at: Date.now(), channel });
    // A Map iterates in insertion order: the first entries are the least recently loaded.
    for (const key of this.cache.keys()) {
      if (this.cache.size <= CACHE_MAX_ENTRIES) break;
      this.cache.delete(key);
    }
    return channel;
  }

  /** A connected channel of the project for an operator's send; FAILED_PRECONDITION when it is disconnected. */
  async connectedOwned(projectId: string, channelId: string): Promise<ResolvedChannel> {
    const doc = await this.findOwned(projectId, channelId);
    if (doc.state !== "connected") throw failedPrecondition(`channel ${channelId} is disconnected; connect it again to send`);
    return { doc, account: this.view(doc), messenger: doc.messenger as MessengerName };
  }

  private view(doc: ChannelDoc): AccountView {
    return { id: doc._id, projectId: doc.projectId, messenger: messengerOf(doc.messenger), settings: doc.settings ?? {}, secrets: this.box.open(doc.sealedSecrets, doc._id) };
  }
}
