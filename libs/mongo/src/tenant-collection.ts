import type { FilterQuery, Model, UpdateQuery } from "mongoose";

/**
 * A query narrowed to one project. The project is applied last, over whatever the filter built, so a filter made
 * from user input can never widen or switch the scope; a missing project is a programming error.
 */
export function scopeToProject<Q extends object>(projectId: string, query: Q): Q & { projectId: string } {
  if (!projectId) throw new Error("a project id is required for every query");
  return { ...query, projectId };
}

/** A document that belongs to one project (tenant). */
export interface TenantDocument {
  projectId: string;
}

/**
 * A collection every read and write of which names the project: the project id is a required argument and is
 * applied last, so a filter built from user input can never widen or switch the scope.
 */
export class TenantCollection<T extends TenantDocument> {
  constructor(readonly model: Model<T>) {}

  private scope(projectId: string, filter: FilterQuery<T> = {}): FilterQuery<T> {
    return scopeToProject(projectId, filter);
  }

  find(projectId: string, filter?: FilterQuery<T>) {
    return this.model.find(this.scope(projectId, filter));
  }

  findOne(projectId: string, filter?: FilterQuery<T>) {
    return this.model.findOne(this.scope(projectId, filter));
  }

  countDocuments(projectId: string, filter?: FilterQuery<T>) {
    return this.model.countDocuments(this.scope(projectId, filter));
  }

  async create(projectId: string, doc: Omit<T, "projectId">): Promise<T> {
    const created = await this.model.create({ ...doc, projectId });
    return created.toObject() as T;
  }

  updateOne(projectId: string, filter: FilterQuery<T>, update: UpdateQuery<T>) {
    return this.model.updateOne(this.scope(projectId, filter), update);
  }

  deleteOne(projectId: string, filter: FilterQuery<T>) {
    return this.model.deleteOne(this.scope(projectId, filter));
  }
}
