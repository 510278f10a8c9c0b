import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { randomUUID } from "node:crypto";
import type { Model } from "mongoose";
import { FlowCommandAction } from "@chatcrm/contracts/chatcrm/flows/v1/events_pb";
import { MassActionSchema, SelectionSchema, type MassAction, type Selection } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { RpcError, type Viewer } from "@chatcrm/grpc";
import { Topics, type EventPublisher } from "@chatcrm/kafka";
import { bulkWriteInSlices, insertManyIgnoringDuplicates, isDuplicateKey, LeasedJobRunner, scopeToProject } from "@chatcrm/mongo";
import type { Logger } from "@chatcrm/logging";
import { contactChanged, publishContactEvents } from "../events/contact-events";
import type { ContactDoc, ContactQuery } from "../store/contact-document";
import type { ContactStore } from "../usecases/contact-store";
import type { ContactDeleter } from "../usecases/delete-contacts";
import { planAction, type ActionPlan } from "./action-plan";
import type { MassActionJobDoc } from "./job-model";
import { selectionQuery } from "./selection";

export interface JobRunnerOptions {
  batchSize: number;
  leaseMs: number;
  pollIntervalMs: number;
}

/**
 * Runs mass actions in the background. A job walks its frozen selection in _id order through one cursor, applies
 * a batch, publishes the batch's events and timeline lines, then records how far it got. A crash or restart at
 * any point resumes after the last recorded contact; the batch in flight is redone, which is harmless because
 * every update is idempotent and every event, timeline line and flow command carries an id derived from the job
 * and the contact. Leasing (libs/mongo LeasedJobRunner) lets another replica take over a job whose runner died.
 */
export class MassActionRunner {
  private readonly runner: LeasedJobRunner<MassActionJobDoc>;

  constructor(
    private readonly jobs: Model<MassActionJobDoc>,
    private readonly store: ContactStore,
    private readonly deleter: ContactDeleter,
    private readonly publisher: EventPublisher,
    private readonly logger: Logger,
    private readonly options: JobRunnerOptions,
  ) {
    this.runner = new LeasedJobRunner<MassActionJobDoc>({
      collection: jobs.collection,
      name: "mass action",
      leaseMs: options.leaseMs,
      pollIntervalMs: options.pollIntervalMs,
      logger,
      run: (job, alive) => this.run(job, alive),
      // A refused action (validation) cannot succeed later; MongoDB or Kafka trouble pauses and resumes the job.
      isFinal: (err) => err instanceof RpcError,
      onFailed: (job, error) => this.audit(job, "mass_action_failed", { error }),
    });
  }

  start(): void {
    this.runner.start();
  }

  /** Stops taking jobs and lets the batches in flight finish; their jobs resume on the next start. */
  stop(): Promise<void> {
    return this.runner.stop();
  }

  /** Records a new job and starts it at once; the same idempotency key returns the first job. */
  async create(projectId: string, viewer: Viewer, action: MassAction, selection: Selection, idempotencyKey: string): Promise<MassActionJobDoc> {
    planAction(action);
    const query = selectionQuery(selection, viewer);
    const now = new Date();
    const jobId = idempotencyKey ? `key-${Buffer.from(`${projectId}|${idempotencyKey}`).toString("base64url").slice(0, 80)}` : randomUUID();
    const existing = await this.jobs.collection.findOne({ _id: jobId as never });
    if (existing) return existing as unknown as MassActionJobDoc;
    const total = await this.store.contacts.collection.countDocuments(frozenSelection(projectId, query, now));
    const job: MassActionJobDoc = {
      _id: jobId,
      projectId,
      action: toJson(MassActionSchema, action) as JsonValue,
      selection: toJson(SelectionSchema, selection) as JsonValue,
      viewer,
      state: "running",
      done: 0,
      total,
      lastId: "",
      cutoff: now,
      error: "",
      startedBy: actorOf(viewer),
      createdAt: now,
      finishedAt: null,
      leaseUntil: new Date(0),
    };
    try {
      await this.jobs.collection.insertOne(job as never);
    } catch (err) {
      if (isDuplicateKey(err)) return (await this.jobs.collection.findOne({ _id: jobId as never })) as unknown as MassActionJobDoc;
      throw err;
    }
    await this.audit(job, "mass_action_started", { action: job.action, selection: job.selection, total });
    this.runner.nudge();
    return job;
  }

  private async run(job: MassActionJobDoc, alive: () => Promise<boolean>): Promise<void> {
    const plan = planAction(fromJson(MassActionSchema, job.action as JsonValue));
    const selection = fromJson(SelectionSchema, job.selection as JsonValue);
    const resumeAt: ContactQuery = { $and: [frozenSelection(job.projectId, selectionQuery(selection, job.viewer), job.cutoff), ...(job.lastId ? [{ _id: { $gt: job.lastId } }] : [])] };
    let done = job.done;
    const cursor = this.store.contacts.collection.find(resumeAt).sort({ _id: 1 }).batchSize(this.options.batchSize);
    try {
      let batch: ContactDoc[] = [];
      for await (const doc of cursor) {
        batch.push(doc as unknown as ContactDoc);
        if (batch.length < this.options.batchSize) continue;
        if (!(await alive())) return;
        done = await this.commit(job, plan, batch, done);
        batch = [];
      }
      if (batch.length) {
        if (!(await alive())) return;
        done = await this.commit(job, plan, batch, done);
      }
    } finally {
      await cursor.close();
    }
    await this.jobs.collection.updateOne({ _id: job._id as never }, { $set: { state: "done", error: "", finishedAt: new Date(), total: Math.max(job.total, done) } });
    await this.audit(job, "mass_action_done", { done });
    this.logger.info({ jobId: job._id, done }, "mass action done");
  }

  private async commit(job: MassActionJobDoc, plan: ActionPlan, batch: ContactDoc[], done: number): Promise<number> {
    await this.apply(job, plan, batch);
    const next = done + batch.length;
    await this.jobs.collection.updateOne({ _id: job._id as never }, { $set: { lastId: batch[batch.length - 1]!._id, done: next } });
    return next;
  }

  private async apply(job: MassActionJobDoc, plan: ActionPlan, batch: ContactDoc[]): Promise<void> {
    const actor = `mass-action:${job._id}`;
    const eventId = (doc: ContactDoc) => `${job._id}:${doc._id}`;
    if (plan.type === "delete") return this.deleter.delete(batch, { blacklist: plan.blacklist, actor });
    if (plan.type === "start-flow") {
      await this.publisher.publishBatch(
        Topics.flowCommands,
        batch.map((doc) => ({
          key: doc._id,
          projectId: doc.projectId,
          eventId: eventId(doc),
          value: { commandId: eventId(doc), projectId: doc.projectId, contactId: doc._id, flowId: plan.flowId, blockId: plan.blockId, action: FlowCommandAction.START },
        })),
      );
      return;
    }
    const now = new Date();
    const changed = batch.flatMap((doc) => {
      const change = plan.plan.decide(doc);
      return change ? [{ doc, change }] : [];
    });
    if (changed.length === 0) return;
    await bulkWriteInSlices(
      this.store.contacts.collection,
      changed.map(({ doc, change }) => ({ updateOne: { filter: { _id: doc._id as never }, update: withUpdatedAt(plan.plan.update(change), now) } })),
    );
    await insertManyIgnoringDuplicates(
      this.store.support.timeline.collection,
      changed.flatMap(({ doc, change }) => change.timeline.map((t, i) => ({ ...t, actor, _id: `${eventId(doc)}:${i}`, projectId: doc.projectId, contactId: doc._id, at: now }))),
    );
    await publishContactEvents(
      this.publisher,
      changed.map(({ doc, change }) => contactChanged({ ...doc, ...change.set, updatedAt: now }, "updated", eventId(doc), change.changedFields, now)),
    );
  }

  private async audit(job: MassActionJobDoc, action: string, details: unknown): Promise<void> {
    await this.store.support.audit.collection.insertOne({ _id: randomUUID(), projectId: job.projectId, actor: job.startedBy, action, details: { jobId: job._id, ...(details as object) }, at: new Date() } as never);
  }
}

/** A selection as of the job's start: contacts created later are not in it. */
const frozenSelection = (projectId: string, query: ContactQuery, cutoff: Date): ContactQuery => scopeToProject(projectId, { $and: [query, { createdAt: { $lte: cutoff } }] });

export const actorOf = (viewer: Viewer) => (viewer.operatorId ? `operator:${viewer.operatorId}` : viewer.role);

function withUpdatedAt(update: Record<string, unknown>, now: Date): Record<string, unknown> {
  return { ...update, $set: { ...((update.$set as object) ?? {}), updatedAt: now } };
}
