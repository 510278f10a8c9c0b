import { z } from "zod";
import { failedPrecondition, invalidArgument, notFound, RpcError, Status } from "@chatcrm/grpc";
import { isDuplicateKey } from "@chatcrm/mongo";
import { checkNewPassword, hashPassword } from "../access/passwords";
import { newId } from "../access/secrets";
import type { IdentityModels, OperatorDoc, RoleName } from "../data/identity-models";
import { normaliseEmail } from "./login";
import type { Sessions } from "./sessions";

const emailSchema = z.email();

export function checkEmail(email: string, field = "email"): string {
  const normalised = normaliseEmail(email);
  if (!normalised) throw invalidArgument(field, "is required");
  if (!emailSchema.safeParse(normalised).success) throw invalidArgument(field, `"${email}" is not an email address`);
  return normalised;
}

function checkName(name: string, field = "name"): string {
  const trimmed = name.trim();
  if (trimmed.length > 200) throw invalidArgument(field, "must be at most 200 characters");
  return trimmed;
}

export interface NewOperator {
  email: string;
  name: string;
  role: RoleName | undefined;
  password: string;
}

/** Adds a person to a project. Every field is checked before anything is written. */
export async function createOperator(models: IdentityModels, projectId: string, input: NewOperator): Promise<OperatorDoc> {
  const email = checkEmail(input.email);
  const name = checkName(input.name);
  if (!input.role) throw invalidArgument("role", "is required: ROLE_ADMIN or ROLE_OPERATOR");
  checkNewPassword(input.password, "password");
  const doc: OperatorDoc = {
    _id: newId("op"),
    projectId,
    email,
    name,
    role: input.role,
    passwordHash: await hashPassword(input.password),
    disabled: false,
    createdAt: new Date(),
  };
  try {
    await models.operators.create(doc);
  } catch (err) {
    if (isDuplicateKey(err)) throw new RpcError(Status.ALREADY_EXISTS, `${email} is already an operator of this project`, "email");
    throw err;
  }
  return doc;
}

export const listOperators = (models: IdentityModels, projectId: string) => models.operators.find({ projectId }).sort({ createdAt: 1 }).lean();

export interface OperatorChanges {
  role: RoleName | undefined;
  name: string;
  newPassword: string;
  disabled: boolean | undefined;
}

/** Changes what an admin may change; a new role, password or disabling ends the operator's sessions. */
export async function updateOperator(models: IdentityModels, sessions: Sessions, projectId: string, actingOperatorId: string, operatorId: string, changes: OperatorChanges) {
  if (!operatorId.trim()) throw invalidArgument("operator_id", "is required");
  const current = await models.operators.findOne({ _id: operatorId, projectId }).lean();
  if (!current) throw notFound("operator");
  const name = changes.name ? checkName(changes.name) : undefined;
  if (changes.newPassword) checkNewPassword(changes.newPassword, "new_password");
  const demotesSelf = operatorId === actingOperatorId && ((changes.role && changes.role !== "admin") || changes.disabled === true);
  if (demotesSelf) throw failedPrecondition("you cannot demote or disable yourself: another admin has to, so the project always keeps an admin");

  const set: Partial<OperatorDoc> = {};
  if (changes.role && changes.role !== current.role) set.role = changes.role;
  if (name !== undefined && name !== current.name) set.name = name;
  if (changes.newPassword) set.passwordHash = await hashPassword(changes.newPassword);
  if (changes.disabled !== undefined && changes.disabled !== current.disabled) set.disabled = changes.disabled;
  if (Object.keys(set).length) await models.operators.updateOne({ _id: operatorId, projectId }, { $set: set });
  if (set.role || set.passwordHash || set.disabled) await sessions.endAllOf(projectId, operatorId);
  return { ...current, ...set };
}
