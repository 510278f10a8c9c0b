import { Schema, type Connection, type Model } from "mongoose";

/** One contact in one sales plan; _id "<project>|<plan>|<contact>" makes a repeated add count once. */
interface PlanMemberDoc {
  _id: string;
  projectId: string;
  plan: string;
  contactId: string;
  at: Date;
}

export function salesPlanModel(connection: Connection) {
  const schema = new Schema<PlanMemberDoc>({ _id: String, projectId: { type: String, required: true }, plan: String, contactId: String, at: Date }, { versionKey: false });
  // GetSalesPlan: the members of one plan.
  schema.index({ projectId: 1, plan: 1 });
  return connection.model<PlanMemberDoc>("SalesPlanMember", schema, "sales_plan_members");
}

/** Named counters of contacts ("add to sales plan", seed 003). */
export class SalesPlans {
  constructor(private readonly model: Model<PlanMemberDoc>) {}

  async add(projectId: string, plan: string, contactId: string): Promise<void> {
    try {
      await this.model.collection.insertOne({ _id: `${projectId}|${plan}|${contactId}` as never, projectId, plan, contactId, at: new Date() });
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
    }
  }

  count(projectId: string, plan: string): Promise<number> {
    return this.model.countDocuments({ projectId, plan });
  }
}
