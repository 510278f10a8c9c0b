import { invalidArgument, unauthenticated } from "@chatcrm/grpc";
import type { LoginLockout } from "../access/login-lockout";
import { verifyPassword } from "../access/passwords";
import type { RequestLimits } from "../access/request-limits";
import type { IdentityModels, OperatorDoc } from "../data/identity-models";
import type { IssuedTokens, Sessions } from "./sessions";

export interface LoginDeps {
  models: IdentityModels;
  sessions: Sessions;
  lockout: LoginLockout;
  limits: RequestLimits;
}

export const normaliseEmail = (email: string) => email.trim().toLowerCase();

/** Email and password to a session. Every failure reads the same, so it does not tell which part was wrong. */
export async function login(
  deps: LoginDeps,
  request: { email: string; password: string; projectId: string },
  clientAddress: string,
): Promise<{ operator: OperatorDoc; tokens: IssuedTokens }> {
  const email = normaliseEmail(request.email);
  if (!email) throw invalidArgument("email", "is required");
  if (!request.password) throw invalidArgument("password", "is required");
  await deps.limits.takeLogin(clientAddress);
  await deps.lockout.assertOpen(email);

  const projectId = request.projectId.trim();
  const accounts = await deps.models.operators.find({ email, ...(projectId && { projectId }), disabled: false }).lean();
  const matching: OperatorDoc[] = [];
  if (!accounts.length) await verifyPassword(undefined, request.password);
  for (const account of accounts) if (await verifyPassword(account.passwordHash, request.password)) matching.push(account);

  if (!matching.length) {
    await deps.lockout.recordFailure(email);
    throw unauthenticated("wrong email or password");
  }
  if (matching.length > 1) {
    throw invalidArgument("project_id", `this email signs in to several projects; name one of: ${matching.map((a) => a.projectId).join(", ")}`);
  }
  await deps.lockout.clear(email);
  const operator = matching[0]!;
  return { operator, tokens: await deps.sessions.open(operator) };
}
