import { invalidArgument } from "@chatcrm/grpc";
import { newId } from "../access/secrets";
import type { IdentityModels, OperatorDoc, ProjectDoc } from "../data/identity-models";
import { createOperator } from "./operators";

/**
 * The first-run step: a project and its first admin. Not part of the public API (a tenant cannot create tenants);
 * run from the command line (`create-project`, see README).
 */
export async function createProject(models: IdentityModels, input: { name: string; adminEmail: string; adminName: string; adminPassword: string }): Promise<{ project: ProjectDoc; admin: OperatorDoc }> {
  const name = input.name.trim();
  if (!name) throw invalidArgument("name", "is required");
  const project: ProjectDoc = { _id: newId("prj"), name, createdAt: new Date() };
  // The admin is checked (email, password rules) before the project exists, so a bad input leaves nothing behind.
  const admin = await createOperator(models, project._id, { email: input.adminEmail, name: input.adminName, role: "admin", password: input.adminPassword });
  await models.projects.create(project);
  return { project, admin };
}
