import type { Interceptor } from "@connectrpc/connect";
import type { ChannelsService } from "@chatcrm/contracts/chatcrm/channels/v1/channels_service_pb";
import type { ContactsService } from "@chatcrm/contracts/chatcrm/contacts/v1/contacts_service_pb";
import { RpcError, Status, type GrpcClient } from "@chatcrm/grpc";
import { backendCall } from "../proxy/connect-errors";
import type { Authenticator } from "./authenticator";
import { audienceOf, backendMetadata, callerKey, type Caller } from "./caller";
import { ruleFor, type Rule } from "./policy";
import type { RequestLimits } from "./request-limits";

export interface GuardDeps {
  authenticator: Authenticator;
  limits: RequestLimits;
  contacts: GrpcClient<typeof ContactsService>;
  channels: GrpcClient<typeof ChannelsService>;
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
    if (!req.stream) {
      await checkClient(deps, rule, caller, req.message);
      await checkChannel(deps, rule, caller, req.message);
      stampAuthor(rule, caller, req.message);
    }
    req.contextValues.set(callerKey, caller);
    return next(req);
  };
}

/** Seed 002: an operator works their own clients and free ones; another operator's client is not theirs to change. */
async function checkClient(deps: GuardDeps, rule: Rule, caller: Caller, message: unknown): Promise<void> {
  if (caller.kind !== "operator" || caller.role !== "operator" || !rule.contact) return;
  const ref = rule.contact(message as never);
  if (!ref?.ref.case) return;
  const { contact } = await backendCall("contacts", deps.contacts.getContact({ contact: ref }, { metadata: backendMetadata(caller), timeoutMs: deps.timeoutMs }));
  const assignedTo = contact?.operatorId ?? "";
  if (assignedTo && assignedTo !== caller.operatorId) throw denied("this client is assigned to another operator");
}

/** A channel id the backend would take on trust must name a channel of the caller's own project. */
async function checkChannel(deps: GuardDeps, rule: Rule, caller: Caller, message: unknown): Promise<void> {
  const channelId = rule.channel?.(message as never);
  if (!channelId) return;
  await backendCall("channels", deps.channels.getChannel({ channelId }, { metadata: backendMetadata(caller), timeoutMs: deps.timeoutMs }));
}

/** People write only in their own name; a program (API key) may name the operator it acts for. */
function stampAuthor(rule: Rule, caller: Caller, message: unknown): void {
  if (!rule.author || caller.kind !== "operator") return;
  const named = rule.author.read(message as never);
  if (named && named !== caller.operatorId) throw denied("you can write only in your own name: leave the author empty or name yourself");
  rule.author.write(message as never, caller.operatorId);
}
