import type { ServiceImpl } from "@connectrpc/connect";
import { AuthService } from "@chatcrm/contracts/chatcrm/gateway/v1/auth_service_pb";
import { invalidArgument, notFound } from "@chatcrm/grpc";
import { clientAddressKey } from "../access/caller";
import type { IdentityModels } from "../data/identity-models";
import { callerOf } from "../proxy/forward";
import { login, type LoginDeps } from "../usecases/login";
import type { Sessions } from "../usecases/sessions";
import { toApiKeyProto, toOperatorProto, toProjectProto, toTokensProto } from "./identity-to-proto";

export function authService(deps: LoginDeps & { models: IdentityModels; sessions: Sessions }): ServiceImpl<typeof AuthService> {
  const project = async (projectId: string) => {
    const doc = await deps.models.projects.findOne({ _id: projectId }).lean();
    if (!doc) throw notFound("project");
    return toProjectProto(doc);
  };
  return {
    login: async (req, ctx) => {
      const { operator, tokens } = await login(deps, req, ctx.values.get(clientAddressKey));
      return { tokens: toTokensProto(tokens), operator: toOperatorProto(operator), project: await project(operator.projectId) };
    },
    refreshSession: async (req) => {
      if (!req.refreshToken.trim()) throw invalidArgument("refresh_token", "is required");
      return { tokens: toTokensProto(await deps.sessions.refresh(req.refreshToken)) };
    },
    logout: async (_req, ctx) => {
      const caller = callerOf(ctx);
      if (caller.kind === "operator") await deps.sessions.end(caller.sessionId);
      return {};
    },
    getCurrentIdentity: async (_req, ctx) => {
      const caller = callerOf(ctx);
      if (caller.kind === "api-key") {
        const key = await deps.models.apiKeys.findOne({ _id: caller.keyId, projectId: caller.projectId }).lean();
        if (!key) throw notFound("API key");
        return { project: await project(caller.projectId), who: { case: "apiKey", value: toApiKeyProto(key) } };
      }
      const operator = await deps.models.operators.findOne({ _id: caller.operatorId, projectId: caller.projectId }).lean();
      if (!operator) throw notFound("operator");
      return { project: await project(caller.projectId), who: { case: "operator", value: toOperatorProto(operator) } };
    },
  };
}
