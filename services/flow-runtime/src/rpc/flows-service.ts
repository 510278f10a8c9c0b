import { createHash, randomUUID } from "node:crypto";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { FlowCommandAction } from "@chatcrm/contracts/chatcrm/flows/v1/events_pb";
import { SessionWait, type FlowDefinition } from "@chatcrm/contracts/chatcrm/flows/v1/flow_pb";
import { FlowsService } from "@chatcrm/contracts/chatcrm/flows/v1/flows_service_pb";
import { invalidArgument, RpcError, Status, type ServiceHandlers } from "@chatcrm/grpc";
import { Topics, type EventPublisher } from "@chatcrm/kafka";
import type { FlowStore } from "../definitions/flow-store";
import { validateFlow, type Problem } from "../definitions/validate-flow";
import type { SalesPlans } from "../effects/sales-plans";
import type { StateStore, WaitKind } from "../sessions/state-store";

export interface FlowsServiceDeps {
  flows: FlowStore;
  states: StateStore;
  salesPlans: SalesPlans;
  publisher: EventPublisher;
}

const WAITS: Record<WaitKind, SessionWait> = { "": SessionWait.UNSPECIFIED, answer: SessionWait.ANSWER, delay: SessionWait.DELAY, integration: SessionWait.INTEGRATION };

/** Refuses a definition with every problem listed; the first one's field is named for clients that show one. */
function checked(def: FlowDefinition | undefined): FlowDefinition {
  if (!def) throw invalidArgument("definition", "is required");
  const problems = validateFlow(def);
  if (problems.length) {
    const list = problems.map((p: Problem) => `${p.field}: ${p.message}`).join("; ");
    throw new RpcError(Status.INVALID_ARGUMENT, `the flow has ${problems.length} problem(s): ${list}`, `definition.${problems[0]!.field}`);
  }
  return def;
}

const required = (value: string, field: string) => {
  if (!value.trim()) throw invalidArgument(field, "is required");
  return value;
};

/** A command id from the caller's idempotency key, so a retried request is the same command. */
const commandId = (projectId: string, kind: string, key: string, fallback: string) =>
  key ? `${kind}:${createHash("sha256").update(`${projectId}|${key}`).digest("hex").slice(0, 32)}` : fallback;

/** gRPC handlers: the project comes from the call; flow definitions are validated before anything is stored. */
export function flowsServiceHandlers(deps: FlowsServiceDeps): ServiceHandlers<typeof FlowsService> {
  const { flows } = deps;
  const command = async (projectId: string, action: FlowCommandAction, contactId: string, flowId: string, blockId: string, key: string) => {
    required(contactId, "contact_id");
    required(flowId, "flow_id");
    // Stopping names the flow too: an unknown or foreign flow is NOT_FOUND, not a command that does nothing.
    const flow = await flows.get(projectId, flowId);
    if (action === FlowCommandAction.START) {
      if (flow.archived) throw new RpcError(Status.FAILED_PRECONDITION, `flow ${flowId} is archived; no new sessions start in it`);
      if (blockId && !flow.blocks.some((b) => b.blockId === blockId)) throw invalidArgument("block_id", `flow ${flowId} has no block "${blockId}"`);
    }
    const id = commandId(projectId, FlowCommandAction[action], key, `${FlowCommandAction[action]}:${randomUUID()}`);
    await deps.publisher.publish(Topics.flowCommands, { key: contactId, projectId, eventId: id, value: { commandId: id, projectId, contactId, flowId, blockId, action } });
    return { commandId: id };
  };
  return {
    async createFlow(request, ctx) {
      return { flow: await flows.create(ctx.projectId(), checked(request.definition)) };
    },
    async updateFlow(request, ctx) {
      return { flow: await flows.update(ctx.projectId(), required(request.flowId, "flow_id"), checked(request.definition), request.expectedVersion) };
    },
    async getFlow(request, ctx) {
      if (request.version < 0) throw invalidArgument("version", "cannot be negative");
      return { flow: await flows.get(ctx.projectId(), required(request.flowId, "flow_id"), request.version) };
    },
    async listFlows(request, ctx) {
      return { flows: await flows.list(ctx.projectId(), request.includeArchived) };
    },
    async validateFlow(request) {
      return { problems: request.definition ? validateFlow(request.definition) : [{ field: "definition", blockId: "", message: "is required" }] };
    },
    async archiveFlow(request, ctx) {
      return { flow: await flows.archive(ctx.projectId(), required(request.flowId, "flow_id")) };
    },
    async startFlow(request, ctx) {
      return command(ctx.projectId(), FlowCommandAction.START, request.contactId, request.flowId, request.blockId, request.idempotencyKey);
    },
    async stopFlow(request, ctx) {
      return command(ctx.projectId(), FlowCommandAction.STOP, request.contactId, request.flowId, "", request.idempotencyKey);
    },
    async listSessions(request, ctx) {
      const state = await deps.states.load(ctx.projectId(), required(request.contactId, "contact_id"));
      return {
        sessions: state.sessions.map((s) => ({
          sessionId: s.id,
          flowId: s.flowId,
          flowVersion: s.version,
          blockId: s.blockId,
          wait: WAITS[s.wait],
          deadline: s.deadlineMs ? timestampFromMs(s.deadlineMs) : undefined,
          invalidAnswers: s.invalidAnswers,
          startedAt: timestampFromMs(new Date(s.startedAt).getTime()),
        })),
      };
    },
    async getSalesPlan(request, ctx) {
      const plan = required(request.plan, "plan").trim();
      return { plan, contacts: BigInt(await deps.salesPlans.count(ctx.projectId(), plan)) };
    },
  };
}
