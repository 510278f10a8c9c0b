import { OPERATOR_METADATA_KEY, PROJECT_METADATA_KEY, ROLE_METADATA_KEY } from "@chatcrm/grpc";
import { createContextKey } from "@connectrpc/connect";
import type { RoleName } from "../data/identity-models";

/** Who is calling, as proven by their credentials. The project always comes from here. */
export type Caller =
  | { kind: "operator"; projectId: string; operatorId: string; role: RoleName; sessionId: string }
  | { kind: "api-key"; projectId: string; keyId: string };

/** The kinds of caller a policy rule names. */
export type Audience = RoleName | "api-key";

export const audienceOf = (caller: Caller): Audience => (caller.kind === "api-key" ? "api-key" : caller.role);

/** Set by the guard for every authenticated call; handlers read it, never a request field. */
export const callerKey = createContextKey<Caller | undefined>(undefined, { description: "the authenticated caller" });

/** Client address for per-address login limits (set per HTTP request, see http-server.ts). */
export const clientAddressKey = createContextKey<string>("unknown", { description: "the client's address" });

/**
 * The scope the backends re-check: the project, and for people the operator and role (seed 002 rules live in the
 * services). An API key calls as a service acting for the whole project.
 */
export function backendMetadata(caller: Caller): Record<string, string> {
  if (caller.kind === "api-key") return { [PROJECT_METADATA_KEY]: caller.projectId, [ROLE_METADATA_KEY]: "service" };
  return { [PROJECT_METADATA_KEY]: caller.projectId, [OPERATOR_METADATA_KEY]: caller.operatorId, [ROLE_METADATA_KEY]: caller.role };
}

/** How the caller is named in logs and as a record's creator. */
export const callerName = (caller: Caller) => (caller.kind === "api-key" ? `api-key:${caller.keyId}` : caller.operatorId);
