import type { Interceptor } from "@connectrpc/connect";
import type { ContactsService } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { RpcError, Status, type GrpcClient } from "@chatcrm/grpc";
import { fromBackend } from "../proxy/connect-errors";
import type { Authenticator } from "./authenticator";
import { audienceOf, backendMetadata, callerKey, type Caller } from "./caller";
import { ruleFor, type Rule } from "./policy";
import type { RequestLimits } from "./request-limits";

export interface GuardDeps {
  authenticator: Authenticator;
  limits: RequestLimits;
  contacts: GrpcClient<typeof ContactsService>;
  timeoutMs: number;
}

const denied = (why: string) => new RpcError(Status.PERMISSION_DENIED, why);

const AUDIENCE_WORDS = { admin: "an admin", operator: "an operator", "api-key": "an API key" } as const;

/**
 * The one place access is decided, before any handler runs: who the caller is, whether they are within their
 * request budget, whether their role may call the method, and for an operator acting on a client, whether the
 * client is theirs or free. Handlers then read the caller from the context values.
 */
export function accessGuard(deps: GuardDeps): Interceptor {
  return (next) => async (req) => {
    const rule = ruleFor(req.method);
    if (!rule) throw new RpcError(Status.UNIMPLEMENTED, `${req.method.name} is not part of the public API`);
    if (rule.public) return next(req);

    const caller = await deps.authenticator.authenticate(req.header.get("authorization"));
    await deps.limits.take(caller);
    const audience = audienceOf(caller);
    if (!rule.allow.has(audience)) throw denied(`${AUDIENCE_WORDS[audience]} may not call ${req.method.name}`);
    if (!req.stream) await checkClient(deps, rule, caller, req.message);
    req.contextValues.set(callerKey, caller);
    return next(req);
  };
}

/** Seed 002: an operator works their own clients and free ones; another operator's client is not theirs to change. */
async function checkClient(deps: GuardDeps, rule: Rule, caller: Caller, message: unknown): Promise<void> {
  if (caller.kind !== "operator" || caller.role !== "operator" || !rule.contact) return;
  const ref = rule.contact(message as never);
  if (!ref?.ref.case) return;
  let assignedTo: string;
  try {
    const { contact } = await deps.contacts.getContact({ contact: ref }, { metadata: backendMetadata(caller), timeoutMs: deps.timeoutMs });
    assignedTo = contact?.operatorId ?? "";
  } catch (err) {
    throw fromBackend("contacts", err);
  }
  if (assignedTo && assignedTo !== caller.operatorId) throw denied("this client is assigned to another operator");
}
