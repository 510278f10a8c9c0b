import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ChannelsService } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import { invalidArgument, notFound, type ServiceHandlers } from "@chatcrm/grpc";
import type { EventPublisher } from "@chatcrm/kafka";
import { scopeToProject } from "@chatcrm/mongo";
import type { ChannelRegistry } from "../accounts/channel-registry";
import { operatorSend } from "../outbound/operator-send";
import type { ResendJobs } from "../resend/resend-jobs";
import type { ChannelModels, MessageDoc } from "../store/models";
import { channelToProto, messageToProto, resendJobToProto } from "./to-proto";

export interface ChannelsServiceDeps {
  registry: ChannelRegistry;
  models: ChannelModels;
  publisher: EventPublisher;
  resend: ResendJobs;
}

interface PageToken {
  at: number;
  id: string;
}

function decodePageToken(token: string): PageToken | null {
  if (!token) return null;
  try {
    const parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as PageToken;
    if (typeof parsed.at === "number" && typeof parsed.id === "string") return parsed;
  } catch {
    // Falls through to the error below.
  }
  throw invalidArgument("page_token", "not a token this service issued; start from the first page");
}

/** gRPC handlers: the project (and the sending operator) come from the call; use cases validate. */
export function channelsServiceHandlers(deps: ChannelsServiceDeps): ServiceHandlers<typeof ChannelsService> {
  const { registry, models } = deps;
  return {
    async connectChannel(request, ctx) {
      const { doc, inboundSecret } = await registry.connect(ctx.projectId(), request);
      return { channel: channelToProto(doc), inboundSecret };
    },
    async disconnectChannel(request, ctx) {
      return { channel: channelToProto(await registry.disconnect(ctx.projectId(), request.channelId)) };
    },
    async getChannel(request, ctx) {
      return { channel: channelToProto(await registry.findOwned(ctx.projectId(), request.channelId)) };
    },
    async listChannels(request, ctx) {
      return { channels: (await registry.list(ctx.projectId(), request.includeDisconnected)).map(channelToProto) };
    },
    async sendMessage(request, ctx) {
      return operatorSend({ registry, publisher: deps.publisher, sendRequests: models.sendRequests }, ctx.projectId(), ctx.viewer().operatorId, request);
    },
    async listMessages(request, ctx) {
      const projectId = ctx.projectId();
      await registry.findOwned(projectId, request.channelId);
      if (!request.peerId) throw invalidArgument("peer_id", "name the chat: the subscriber's id in the messenger");
      if (request.pageSize > 200) throw invalidArgument("page_size", "at most 200");
      const size = request.pageSize || 50;
      const after = decodePageToken(request.pageToken);
      const keyset = after ? { $or: [{ createdAt: { $lt: new Date(after.at) } }, { createdAt: new Date(after.at), _id: { $lt: after.id } }] } : {};
      const docs = await models.messages
        .find(scopeToProject(projectId, { channelId: request.channelId, peerId: request.peerId, ...keyset }))
        .sort({ createdAt: -1, _id: -1 })
        .limit(size + 1)
        .lean<MessageDoc[]>();
      const page = docs.slice(0, size);
      const last = page[page.length - 1];
      return {
        messages: page.map(messageToProto),
        nextPageToken: docs.length > size && last ? Buffer.from(JSON.stringify({ at: last.createdAt.getTime(), id: last._id })).toString("base64url") : "",
      };
    },
    async startResendFailed(request, ctx) {
      const job = await deps.resend.start(ctx.projectId(), {
        messenger: request.messenger,
        channelId: request.channelId,
        failedFrom: request.failedFrom ? timestampDate(request.failedFrom) : null,
        failedTo: request.failedTo ? timestampDate(request.failedTo) : null,
        intervalMs: request.intervalMs,
        idempotencyKey: request.idempotencyKey,
      });
      return { job: resendJobToProto(job) };
    },
    async getResendJob(request, ctx) {
      const job = await deps.resend.get(ctx.projectId(), request.jobId);
      if (!job) throw notFound(`resend job ${request.jobId || "(empty id)"}`);
      return { job: resendJobToProto(job) };
    },
    async listResendJobs(_request, ctx) {
      return { jobs: (await deps.resend.list(ctx.projectId())).map(resendJobToProto) };
    },
  };
}
