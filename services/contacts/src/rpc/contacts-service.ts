import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ContactsService, MassActionSchema, MassActionState, SelectionSchema, TimelineKind } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { invalidArgument, notFound, type CallContext, type ServiceHandlers } from "@chatcrm/grpc";
import type { EventPublisher } from "@chatcrm/kafka";
import type { Model } from "mongoose";
import type { MassActionJobDoc } from "../mass-actions/job-model";
import { actorOf, type MassActionRunner } from "../mass-actions/job-runner";
import type { ContactDoc } from "../store/contact-document";
import type { TimelineDoc } from "../store/support-models";
import * as commands from "../usecases/contact-commands";
import type { ContactStore } from "../usecases/contact-store";
import type { ContactWriter, Change } from "../usecases/contact-writer";
import type { ContactDeleter } from "../usecases/delete-contacts";
import { importSubscribers } from "../usecases/import-subscribers";
import { countTabs, listContacts, streamContacts, unreadTotals } from "../usecases/list-contacts";
import { scopeToProject } from "@chatcrm/mongo";
import { createSavedFilter, deleteSavedFilter, listSavedFilters } from "../usecases/saved-filters";
import { contactQuery } from "../filters/contact-query";
import { toContactProto } from "./contact-to-proto";

export interface ContactsServiceDeps {
  store: ContactStore;
  writer: ContactWriter;
  deleter: ContactDeleter;
  runner: MassActionRunner;
  jobs: Model<MassActionJobDoc>;
  publisher: EventPublisher;
}

const TIMELINE_KINDS: Record<string, TimelineKind> = Object.fromEntries(
  Object.entries(TimelineKind)
    .filter(([k]) => Number.isNaN(Number(k)))
    .map(([k, v]) => [k.toLowerCase(), v as TimelineKind]),
);

/** gRPC handlers: validation lives in the use cases; here the project and viewer come from the call, and shapes are mapped. */
export function contactsServiceHandlers(deps: ContactsServiceDeps): ServiceHandlers<typeof ContactsService> {
  const { store, writer } = deps;
  const command =
    <R extends { contact?: Parameters<ContactStore["get"]>[1] }>(
      decide: (req: R) => (doc: ContactDoc) => Change | null,
      actor: (req: R, ctx: CallContext) => string = (_req, ctx) => actorOf(ctx.viewer()),
    ) =>
    async (req: R, ctx: CallContext) => {
      const decision = decide(req);
      const doc = await writer.mutate(ctx.projectId(), req.contact, actor(req, ctx), decision);
      return { contact: toContactProto(doc) };
    };

  return {
    getContact: async (req, ctx) => ({ contact: toContactProto(await store.get(ctx.projectId(), req.contact)) }),

    listContacts: async (req, ctx) => {
      const page = await listContacts(store.contacts, ctx.projectId(), ctx.viewer(), req);
      return { contacts: page.items.map(toContactProto), nextCursor: page.nextCursor, totalCount: BigInt(page.total) };
    },

    countTabs: async (req, ctx) => countTabs(store.contacts, ctx.projectId(), ctx.viewer(), req.filter),

    getUnreadTotals: async (_req, ctx) => unreadTotals(store.contacts, ctx.projectId(), ctx.viewer()),

    streamContacts: async function* (req, ctx) {
      const query = scopeToProject(ctx.projectId(), contactQuery(req.filter, req.tab, ctx.viewer()));
      for await (const doc of streamContacts(store.contacts, query, ctx.signal)) yield { contact: toContactProto(doc) };
    },

    listTimeline: async (req, ctx) => {
      const projectId = ctx.projectId();
      const contact = await store.get(projectId, req.contact);
      if (req.pageSize < 0 || req.pageSize > 200) throw invalidArgument("page_size", "must be between 1 and 200 (0 means 50)");
      const limit = req.pageSize || 50;
      const after = req.cursor ? decodeTimelineCursor(req.cursor) : undefined;
      const query = { projectId, contactId: contact._id, ...(after && { $or: [{ at: { $lt: after.at } }, { at: after.at, _id: { $lt: after.id } }] }) };
      const docs = (await store.support.timeline.collection.find(query as never).sort({ at: -1, _id: -1 }).limit(limit + 1).toArray()) as unknown as TimelineDoc[];
      const items = docs.slice(0, limit);
      const last = items[items.length - 1];
      return {
        entries: items.map((e) => ({ entryId: e._id, kind: TIMELINE_KINDS[e.kind] ?? TimelineKind.UNSPECIFIED, subject: e.subject, oldValue: e.oldValue, newValue: e.newValue, actor: e.actor, at: timestampFromDate(e.at) })),
        nextCursor: docs.length > limit && last ? Buffer.from(JSON.stringify({ at: last.at.getTime(), id: last._id })).toString("base64url") : "",
      };
    },

    setVariables: command((r) => commands.setVariables(r.set, r.unset)),
    setAnswer: command((r) => commands.setAnswer(r.field, r.value, r.defaultRegion)),
    modifyTags: command((r) => commands.modifySet("tags", r.add, r.remove)),
    modifyLists: command((r) => commands.modifySet("lists", r.add, r.remove)),
    setStatus: command((r) => commands.setStatus(r.status)),
    setFunnelPosition: command((r) => commands.setFunnelPosition(r.flowId, r.blockId)),
    setDealStage: command((r) => commands.setDealStage(r.dealStage)),
    setRead: command((r) => commands.setRead(r.read)),
    assignOperator: command((r) => commands.assignOperator(r.operatorId)),
    setPinned: command((r) => commands.setPinned(r.pinned)),
    addComment: command((r) => commands.addComment(r), (r) => commands.commentActor(r.authorOperatorId)),

    deleteContact: async (req, ctx) => {
      const doc = await store.get(ctx.projectId(), req.contact);
      await deps.deleter.delete([doc], { blacklist: req.blacklist, actor: actorOf(ctx.viewer()) });
      return {};
    },

    createSavedFilter: async (req, ctx) => ({ savedFilter: await createSavedFilter(store.support, ctx.projectId(), req.name, req.filter) }),
    listSavedFilters: async (_req, ctx) => ({ savedFilters: await listSavedFilters(store.support, ctx.projectId()) }),
    deleteSavedFilter: async (req, ctx) => {
      await deleteSavedFilter(store.support, ctx.projectId(), req.filterId);
      return {};
    },

    startMassAction: async (req, ctx) => {
      if (!req.action) throw invalidArgument("action", "is missing");
      if (!req.selection) throw invalidArgument("selection", "is missing");
      const job = await deps.runner.create(ctx.projectId(), ctx.viewer(), req.action, req.selection, req.idempotencyKey.trim());
      return { job: jobToProto(job) };
    },
    getMassAction: async (req, ctx) => {
      const job = (await deps.jobs.collection.findOne({ _id: req.jobId as never })) as MassActionJobDoc | null;
      if (!job || job.projectId !== ctx.projectId()) throw notFound("mass action");
      return { job: jobToProto(job) };
    },
    listMassActions: async (req, ctx) => {
      if (req.pageSize < 0 || req.pageSize > 100) throw invalidArgument("page_size", "must be between 1 and 100 (0 means 20)");
      const jobs = (await deps.jobs.collection.find({ projectId: ctx.projectId() }).sort({ createdAt: -1 }).limit(req.pageSize || 20).toArray()) as unknown as MassActionJobDoc[];
      return { jobs: jobs.map(jobToProto) };
    },

    importSubscribers: async (req, ctx) => importSubscribers(store, deps.publisher, ctx.projectId(), actorOf(ctx.viewer()), req),
  };
}

const STATES = { running: MassActionState.RUNNING, done: MassActionState.DONE, failed: MassActionState.FAILED };

function jobToProto(job: MassActionJobDoc) {
  return {
    jobId: job._id,
    action: fromJson(MassActionSchema, job.action as JsonValue),
    selection: fromJson(SelectionSchema, job.selection as JsonValue),
    state: STATES[job.state],
    done: BigInt(job.done),
    total: BigInt(job.total),
    error: job.error,
    startedBy: job.startedBy,
    createdAt: timestampFromDate(job.createdAt),
    finishedAt: job.finishedAt ? timestampFromDate(job.finishedAt) : undefined,
  };
}

function decodeTimelineCursor(cursor: string): { at: Date; id: string } {
  try {
    const { at, id } = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as { at: number; id: string };
    if (Number.isFinite(at) && typeof id === "string") return { at: new Date(at), id };
  } catch {
    // fall through to the error below
  }
  throw invalidArgument("cursor", "is not a cursor this service returned");
}
