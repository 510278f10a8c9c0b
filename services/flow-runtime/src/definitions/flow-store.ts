import { randomUUID } from "node:crypto";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { FlowSchema, type Flow, type FlowDefinition } from "@chatcrm/contracts/chatcrm/flows/v1/flow_pb";
import { failedPrecondition, notFound } from "@chatcrm/grpc";
import { storedBytes, TenantCollection } from "@chatcrm/mongo";
import { Schema, type Connection, type Model } from "mongoose";
import { FlowShape } from "./flow-shape";

/** The latest state of a flow; its versions are stored whole and never change. */
interface FlowHeadDoc {
  _id: string;
  projectId: string;
  name: string;
  version: number;
  archived: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** One immutable version: the Flow message as protobuf binary, read back exactly as written. _id "<flow>:<version>". */
interface FlowVersionDoc {
  _id: string;
  projectId: string;
  flowId: string;
  version: number;
  flow: Buffer;
}

export function flowModels(connection: Connection) {
  const heads = new Schema<FlowHeadDoc>(
    { _id: String, projectId: { type: String, required: true }, name: String, version: Number, archived: Boolean, createdAt: Date, updatedAt: Date },
    { versionKey: false },
  );
  // ListFlows and trigger matching: a project's flows by name.
  heads.index({ projectId: 1, name: 1 });
  const versions = new Schema<FlowVersionDoc>({ _id: String, projectId: { type: String, required: true }, flowId: String, version: Number, flow: Buffer }, { versionKey: false });
  return {
    heads: connection.model<FlowHeadDoc>("Flow", heads, "flows"),
    versions: connection.model<FlowVersionDoc>("FlowVersion", versions, "flow_versions"),
  };
}

const versionId = (flowId: string, version: number) => `${flowId}:${version}`;

/**
 * Flow definitions, versioned. Versions are immutable, so the engine caches them for good; the list of a
 * project's active flows (for triggers) is cached briefly and dropped on every local change.
 */
export class FlowStore {
  private readonly heads: TenantCollection<FlowHeadDoc>;
  private readonly shapes = new Map<string, FlowShape>();
  private readonly active = new Map<string, { at: number; flows: Promise<FlowShape[]> }>();

  constructor(
    private readonly models: { heads: Model<FlowHeadDoc>; versions: Model<FlowVersionDoc> },
    private readonly activeCacheMs = 5_000,
  ) {
    this.heads = new TenantCollection(models.heads);
  }

  async create(projectId: string, def: FlowDefinition): Promise<Flow> {
    const now = new Date();
    const flowId = `flw_${randomUUID().replace(/-/g, "")}`;
    const flow = this.toFlow(flowId, 1, def, now, now);
    await this.models.versions.create({ _id: versionId(flowId, 1), projectId, flowId, version: 1, flow: Buffer.from(toBinary(FlowSchema, flow)) });
    await this.heads.create(projectId, { _id: flowId, name: flow.name, version: 1, archived: false, createdAt: now, updatedAt: now });
    this.active.delete(projectId);
    return flow;
  }

  async update(projectId: string, flowId: string, def: FlowDefinition, expectedVersion: number): Promise<Flow> {
    const head = await this.head(projectId, flowId);
    if (expectedVersion && expectedVersion !== head.version) throw failedPrecondition(`the flow is at version ${head.version}, not ${expectedVersion}; reload it and apply your change again`);
    const now = new Date();
    const flow = this.toFlow(flowId, head.version + 1, def, head.createdAt, now);
    flow.archived = head.archived;
    // The version document goes first: a crash between the two writes leaves an unreferenced version, never a head
    // pointing at nothing. Its _id makes two concurrent updates of the same version collide instead of both winning.
    await this.models.versions.create({ _id: versionId(flowId, flow.version), projectId, flowId, version: flow.version, flow: Buffer.from(toBinary(FlowSchema, flow)) });
    await this.heads.updateOne(projectId, { _id: flowId }, { $set: { name: flow.name, version: flow.version, updatedAt: now } });
    this.active.delete(projectId);
    return flow;
  }

  async archive(projectId: string, flowId: string): Promise<Flow> {
    await this.head(projectId, flowId);
    await this.heads.updateOne(projectId, { _id: flowId }, { $set: { archived: true, updatedAt: new Date() } });
    this.active.delete(projectId);
    return this.get(projectId, flowId);
  }

  /** A version (the latest when 0), with the head's archived flag. */
  async get(projectId: string, flowId: string, version = 0): Promise<Flow> {
    const head = await this.head(projectId, flowId);
    const shape = await this.shape(projectId, flowId, version || head.version);
    if (!shape) throw notFound(`flow ${flowId} has no version ${version}`);
    return { ...shape.flow, archived: head.archived, updatedAt: timestampFromDate(head.updatedAt) };
  }

  async list(projectId: string, includeArchived: boolean): Promise<Flow[]> {
    const heads = await this.heads.find(projectId, includeArchived ? {} : { archived: false }).sort({ name: 1, _id: 1 }).lean();
    const flows = await Promise.all(heads.map((h) => this.shape(projectId, h._id, h.version)));
    return flows.flatMap((s, i) => (s ? [{ ...s.flow, archived: heads[i]!.archived }] : []));
  }

  /** One version for the engine; undefined when the flow or version does not exist in this project. */
  async shape(projectId: string, flowId: string, version: number): Promise<FlowShape | undefined> {
    const key = `${projectId}:${versionId(flowId, version)}`;
    const cached = this.shapes.get(key);
    if (cached) return cached;
    const doc = await this.models.versions.findOne({ _id: versionId(flowId, version), projectId }).lean();
    if (!doc) return undefined;
    const shape = new FlowShape(fromBinary(FlowSchema, storedBytes(doc.flow)));
    if (this.shapes.size > 10_000) this.shapes.clear();
    this.shapes.set(key, shape);
    return shape;
  }

  /** The latest version of a flow that is not archived; undefined otherwise. */
  async latestActive(projectId: string, flowId: string): Promise<FlowShape | undefined> {
    return (await this.activeFlows(projectId)).find((s) => s.flow.flowId === flowId);
  }

  /** The latest versions of the project's flows that are not archived, for trigger matching. */
  activeFlows(projectId: string): Promise<FlowShape[]> {
    const hit = this.active.get(projectId);
    if (hit && Date.now() - hit.at < this.activeCacheMs) return hit.flows;
    const flows = this.heads
      .find(projectId, { archived: false })
      .sort({ name: 1, _id: 1 })
      .lean()
      .then((heads) => Promise.all(heads.map((h) => this.shape(projectId, h._id, h.version))))
      .then((shapes) => shapes.filter((s): s is FlowShape => !!s));
    flows.catch(() => this.active.delete(projectId));
    this.active.set(projectId, { at: Date.now(), flows });
    return flows;
  }

  private async head(projectId: string, flowId: string): Promise<FlowHeadDoc> {
    const head = flowId ? await this.heads.findOne(projectId, { _id: flowId }).lean() : null;
    if (!head) throw notFound(`flow ${flowId || "(empty id)"} does not exist in this project`);
    return head as FlowHeadDoc;
  }

  private toFlow(flowId: string, version: number, def: FlowDefinition, createdAt: Date, updatedAt: Date): Flow {
    return create(FlowSchema, {
      flowId,
      name: def.name.trim(),
      version,
      entryBlockId: def.entryBlockId,
      blocks: def.blocks,
      edges: def.edges,
      triggers: def.triggers,
      defaultRegion: def.defaultRegion,
      createdAt: timestampFromDate(createdAt),
      updatedAt: timestampFromDate(updatedAt),
    });
  }
}
