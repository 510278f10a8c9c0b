import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Role, type ApiKeySchema, type OperatorSchema, type ProjectSchema } from "@chatcrm/contracts/chatcrm/gateway/v1/identity_pb";
import { invalidArgument } from "@chatcrm/grpc";
import type { ApiKeyDoc, OperatorDoc, ProjectDoc, RoleName } from "../data/identity-models";
import type { IssuedTokens } from "../usecases/sessions";

const ROLES: Record<RoleName, Role> = { admin: Role.ADMIN, operator: Role.OPERATOR };

export const toOperatorProto = (o: OperatorDoc): MessageInitShape<typeof OperatorSchema> => ({
  operatorId: o._id,
  email: o.email,
  name: o.name,
  role: ROLES[o.role],
  disabled: o.disabled,
  createdAt: timestampFromDate(o.createdAt),
});

export const toApiKeyProto = (k: ApiKeyDoc): MessageInitShape<typeof ApiKeySchema> => ({
  keyId: k._id,
  name: k.name,
  prefix: k.prefix,
  createdBy: k.createdBy,
  createdAt: timestampFromDate(k.createdAt),
  revokedAt: k.revokedAt ? timestampFromDate(k.revokedAt) : undefined,
});

export const toProjectProto = (p: ProjectDoc): MessageInitShape<typeof ProjectSchema> => ({ projectId: p._id, name: p.name, createdAt: timestampFromDate(p.createdAt) });

export const toTokensProto = (t: IssuedTokens) => ({
  accessToken: t.accessToken,
  accessTokenExpiresAt: timestampFromDate(t.accessTokenExpiresAt),
  refreshToken: t.refreshToken,
  refreshTokenExpiresAt: timestampFromDate(t.refreshTokenExpiresAt),
});

/** A role from a request; unspecified is undefined (the caller decides whether that is allowed). */
export function roleFromProto(role: Role, field = "role"): RoleName | undefined {
  if (role === Role.UNSPECIFIED) return undefined;
  if (role === Role.ADMIN) return "admin";
  if (role === Role.OPERATOR) return "operator";
  throw invalidArgument(field, `unknown role ${role}`);
}
