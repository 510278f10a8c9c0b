import { createHash } from "node:crypto";
import { randomUUID } from "node:crypto";
import { MessageKind, MessageOrigin, type Messenger } from "@chatcrm/contracts/chatcrm/channels/v1/events_pb";
import { invalidArgument, RpcError } from "@chatcrm/grpc";
import { Topics, type EventPublisher } from "@chatcrm/kafka";
import type { Logger } from "@chatcrm/logging";
import { isDuplicateKey, LeasedJobRunner, scopeToProject } from "@chatcrm/mongo";
import { Schema, type Connection, type Model } from "mongoose";
import type { ChannelRegistry } from "../accounts/channel-registry";
import { nameOfMessenger } from "../accounts/messengers";
import { originOf } from "../outbound/status-events";
import type { ChannelModels, LastBotMessageDoc, MessageDoc } from "../store/models";

export interface ResendJobDoc {
  _id: string;
  projectId: string;
  messenger: string;
  channelId: string;
  failedFrom: Date | null;
  failedTo: Date | null;
  intervalMs: number;
  state: "running" | "done" | "failed";
  total: number;
  done: number;
  resent: number;
  /** The last chat (_id of last_bot_messages) handled; the job resumes after it. */
  lastId: string;
  /** Chats whose message failed after this instant are not part of the job (the selection is frozen at start). */
  cutoff: Date;
  error: string;
  createdAt: Date;
  finishedAt: Date | null;
  leaseUntil: Date;
  owner?: string;
}

export function resendJobModel(connection: Connection): Model<ResendJobDoc> {
  const schema = new Schema<ResendJobDoc>(
    {
      _id: String,
      projectId: String,
      messenger: String,
      channelId: String,
      failedFrom: Date,
      failedTo: Date,
      intervalMs: Number,
      state: String,
      total: Number,
      done: Number,
      resent: Number,
      lastId: String,
      cutoff: Date,
      error: String,
      createdAt: Date,
      finishedAt: Date,
      leaseUntil: Date,
      owner: String,
    },
    { versionKey: false, collection: "resend_jobs" },
  );
  // ListResendJobs: a project's jobs newest first. The runner's pick-up (state, leaseUntil) reads a handful of jobs.
  schema.index({ projectId: 1, createdAt: -1 });
  schema.index({ state: 1, leaseUntil: 1 });
  return connection.model<ResendJobDoc>("ResendJob", schema);
}

export interface ResendRequest {
  messenger: Messenger;
  channelId: string;
  failedFrom: Date | null;
  failedTo: Date | null;
  intervalMs: number;
  idempotencyKey: string;
}

const MAX_INTERVAL_MS = 3_600_000;

/**
 * "Resend failed messages" (seed 002): for every chat whose last bot message failed — within the dates and
 * messenger chosen — the same message goes out again, one chat at a time with the chosen pause between sends, as
 * a background job with done/total. A resent message is a new send command whose id is derived from the job and
 * the original, so a job resumed after a crash does not send twice; a chat that got a newer bot message meanwhile
 * is skipped.
 */
export class ResendJobs {
  readonly runner: LeasedJobRunner<ResendJobDoc>;

  constructor(
    private readonly jobs: Model<ResendJobDoc>,
    private readonly models: ChannelModels,
    private readonly registry: ChannelRegistry,
    private readonly publisher: EventPublisher,
    private readonly logger: Logger,
    options: { leaseMs: number; pollIntervalMs: number },
  ) {
    this.runner = new LeasedJobRunner<ResendJobDoc>({
      collection: jobs.collection,
      name: "resend job",
      leaseMs: options.leaseMs,
      pollIntervalMs: options.pollIntervalMs,
      logger,
      run: (job, alive) => this.run(job, alive),
      isFinal: (err) => err instanceof RpcError,
    });
  }

  async start(projectId: string, request: ResendRequest): Promise<ResendJobDoc> {
    if (request.intervalMs > MAX_INTERVAL_MS) throw invalidArgument("interval_ms", `at most ${MAX_INTERVAL_MS} ms (an hour) between sends`);
    if (request.failedFrom && request.failedTo && request.failedFrom >= request.failedTo) throw invalidArgument("failed_from", "must be before failed_to");
    if (request.channelId) await this.registry.findOwned(projectId, request.channelId);
    const messenger = request.messenger ? nameOfMessenger(request.messenger) : "";
    if (messenger === undefined) throw invalidArgument("messenger", "choose telegram, whatsapp, vk, email or web");
    if (request.idempotencyKey.length > 200) throw invalidArgument("idempotency_key", "at most 200 characters");
    const jobId = request.idempotencyKey ? `key-${createHash("sha256").update(`${projectId}|${request.idempotencyKey}`).digest("hex").slice(0, 40)}` : randomUUID();
    const existing = await this.jobs.findById(jobId).lean<ResendJobDoc>();
    if (existing) return existing;
    const now = new Date();
    const job: ResendJobDoc = {
      _id: jobId,
      projectId,
      messenger,
      channelId: request.channelId,
      failedFrom: request.failedFrom,
      failedTo: request.failedTo,
      intervalMs: request.intervalMs,
      state: "running",
      total: 0,
      done: 0,
      resent: 0,
      lastId: "",
      cutoff: now,
      error: "",
      createdAt: now,
      finishedAt: null,
      leaseUntil: new Date(0),
    };
    job.total = await this.models.lastBotMessages.countDocuments(this.selection(job));
    try {
      await this.jobs.create(job);
    } catch (err) {
      if (isDuplicateKey(err)) return (await this.jobs.findById(jobId).lean<ResendJobDoc>())!;
      throw err;
    }
    this.logger.info({ projectId, jobId, total: job.total }, "resend of failed messages started");
    this.runner.nudge();
    return job;
  }

  get(projectId: string, jobId: string) {
    return this.jobs.findOne(scopeToProject(projectId, { _id: jobId })).lean<ResendJobDoc>();
  }

  list(projectId: string) {
    return this.jobs.find(scopeToProject(projectId, {})).sort({ createdAt: -1 }).limit(100).lean<ResendJobDoc[]>();
  }

  private selection(job: ResendJobDoc) {
    const sentAt: Record<string, Date> = { $lte: job.failedTo && job.failedTo < job.cutoff ? job.failedTo : job.cutoff };
    if (job.failedFrom) sentAt["$gte"] = job.failedFrom;
    return scopeToProject(job.projectId, {
      failed: true,
      sentAt,
      ...(job.messenger ? { messenger: job.messenger } : {}),
      ...(job.channelId ? { channelId: job.channelId } : {}),
    });
  }

  private async run(job: ResendJobDoc, alive: () => Promise<boolean>): Promise<void> {
    let { lastId, done, resent } = job;
    for (;;) {
      const chats = await this.models.lastBotMessages
        .find({ $and: [this.selection(job), ...(lastId ? [{ _id: { $gt: lastId } }] : [])] })
        .sort({ _id: 1 })
        .limit(50)
        .lean<LastBotMessageDoc[]>();
      if (chats.length === 0) break;
      // The page's original messages in one read, not one per chat.
      const originals = new Map(
        (await this.models.messages.find({ _id: { $in: chats.map((c) => c.commandId) } }).lean<MessageDoc[]>()).map((m) => [m._id, m]),
      );
      for (const chat of chats) {
        if (!(await alive())) return;
        const sent = await this.resendOne(job, chat, originals.get(chat.commandId));
        lastId = chat._id;
        done++;
        if (sent) resent++;
        await this.jobs.updateOne({ _id: job._id }, { $set: { lastId, done, resent } });
        if (sent && job.intervalMs > 0 && !(await this.pause(job.intervalMs, alive))) return;
      }
    }
    await this.jobs.updateOne({ _id: job._id }, { $set: { state: "done", error: "", finishedAt: new Date(), total: Math.max(job.total, done) } });
    this.logger.info({ jobId: job._id, done, resent }, "resend of failed messages done");
  }

  /** The chosen pause between sends, slept in pieces that keep the lease and notice a stop; false = stop. */
  private async pause(ms: number, alive: () => Promise<boolean>): Promise<boolean> {
    const until = Date.now() + ms;
    for (let left = ms; left > 0; left = until - Date.now()) {
      await new Promise((r) => setTimeout(r, Math.min(left, 5_000)));
      if (!(await alive())) return false;
    }
    return true;
  }

  private async resendOne(job: ResendJobDoc, chat: LastBotMessageDoc, original: MessageDoc | undefined): Promise<boolean> {
    const channel = await this.registry.resolve(chat.channelId);
    if (!original || !channel || channel.doc.state !== "connected") return false;
    const commandId = createHash("sha256").update(`${job._id}|${original._id}`).digest("hex").slice(0, 32);
    await this.publisher.publish(Topics.sendCommands, {
      key: `${chat.channelId}:${chat.peerId}`,
      projectId: job.projectId,
      eventId: commandId,
      value: {
        commandId,
        projectId: job.projectId,
        channelId: chat.channelId,
        recipientId: chat.peerId,
        contactId: original.contactId,
        text: original.text,
        subject: original.subject,
        attachments: original.attachments.map((a) => ({ kind: MessageKind[a.kind.toUpperCase() as keyof typeof MessageKind] ?? MessageKind.DOCUMENT, url: a.url, mimeType: a.mimeType, fileName: a.fileName, sizeBytes: BigInt(a.sizeBytes ?? 0) })),
        buttons: original.buttons,
        origin: originOf(original.origin) || MessageOrigin.FLOW,
      },
    });
    return true;
  }
}
