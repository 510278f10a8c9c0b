import { Schema, type Connection, type Model } from "mongoose";
import type { Viewer } from "@chatcrm/grpc";

export type JobState = "running" | "done" | "failed";

/** A mass action: what to do, to whom (frozen at start), and how far it got. */
export interface MassActionJobDoc {
  _id: string;
  projectId: string;
  /** MassAction and Selection as protobuf JSON, read back through the same validation as a request. */
  action: unknown;
  selection: unknown;
  /** Who started it; tabs like Mine are relative to them. */
  viewer: Viewer;
  state: JobState;
  done: number;
  total: number;
  /** The last contact _id handled; the job resumes after it. */
  lastId: string;
  /** Contacts created after the job started are not part of its selection. */
  cutoff: Date;
  error: string;
  startedBy: string;
  createdAt: Date;
  finishedAt: Date | null;
  /** A runner owns the job until then; another replica takes it over when the lease runs out. */
  leaseUntil: Date;
}

export function massActionJobModel(connection: Connection): Model<MassActionJobDoc> {
  const schema = new Schema<MassActionJobDoc>(
    {
      _id: String,
      projectId: String,
      action: Schema.Types.Mixed,
      selection: Schema.Types.Mixed,
      viewer: { type: { role: String, operatorId: String }, _id: false },
      state: String,
      done: Number,
      total: Number,
      lastId: String,
      cutoff: Date,
      error: String,
      startedBy: String,
      createdAt: Date,
      finishedAt: Date,
      leaseUntil: Date,
    },
    { versionKey: false, collection: "mass_actions" },
  );
  // ListMassActions: a project's jobs, newest first.
  schema.index({ projectId: 1, createdAt: -1 });
  // The runner picks up running jobs whose lease ran out.
  schema.index({ state: 1, leaseUntil: 1 });
  return connection.model<MassActionJobDoc>("MassActionJob", schema);
}
