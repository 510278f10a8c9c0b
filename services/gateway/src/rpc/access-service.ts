import type { ServiceImpl } from "@connectrpc/connect";
import { AccessService } from "@chatcrm/contracts/chatcrm/gateway/v1/access_service_pb";
import { callerName } from "../access/caller";
import type { Revocations } from "../access/revocations";
import type { IdentityModels } from "../data/identity-models";
import { callerOf } from "../proxy/forward";
import { createApiKey, listApiKeys, revokeApiKey } from "../usecases/api-keys";
import { createOperator, listOperators, updateOperator } from "../usecases/operators";
import type { Sessions } from "../usecases/sessions";
import { roleFromProto, toApiKeyProto, toOperatorProto } from "./identity-to-proto";

/** Admin-only (see access/policy.ts); the project is the caller's. */
export function accessService(deps: { models: IdentityModels; sessions: Sessions; revocations: Revocations }): ServiceImpl<typeof AccessService> {
  const { models } = deps;
  return {
    createOperator: async (req, ctx) => {
      const operator = await createOperator(models, callerOf(ctx).projectId, { email: req.email, name: req.name, role: roleFromProto(req.role), password: req.password });
      return { operator: toOperatorProto(operator) };
    },
    listOperators: async (_req, ctx) => ({ operators: (await listOperators(models, callerOf(ctx).projectId)).map(toOperatorProto) }),
    updateOperator: async (req, ctx) => {
      const caller = callerOf(ctx);
      const changes = { role: roleFromProto(req.role), name: req.name, newPassword: req.newPassword, disabled: req.disabled };
      const operator = await updateOperator(models, deps.sessions, caller.projectId, callerName(caller), req.operatorId, changes);
      return { operator: toOperatorProto(operator) };
    },
    createApiKey: async (req, ctx) => {
      const caller = callerOf(ctx);
      const { key, secret } = await createApiKey(models, caller.projectId, callerName(caller), req.name);
      return { apiKey: toApiKeyProto(key), secret };
    },
    listApiKeys: async (_req, ctx) => ({ apiKeys: (await listApiKeys(models, callerOf(ctx).projectId)).map(toApiKeyProto) }),
    revokeApiKey: async (req, ctx) => ({ apiKey: toApiKeyProto(await revokeApiKey(models, deps.revocations, callerOf(ctx).projectId, req.keyId)) }),
  };
}
