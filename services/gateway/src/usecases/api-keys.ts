import { invalidArgument, notFound } from "@chatcrm/grpc";
import { API_KEY_KIND } from "../access/authenticator";
import type { Revocations } from "../access/revocations";
import { compositeToken, hashSecret, newId, newSecret } from "../access/secrets";
import type { ApiKeyDoc, IdentityModels } from "../data/identity-models";

/** Creates a key and returns its secret once; only the hash is kept. */
export async function createApiKey(models: IdentityModels, projectId: string, createdBy: string, name: string): Promise<{ key: ApiKeyDoc; secret: string }> {
  const trimmed = name.trim();
  if (!trimmed) throw invalidArgument("name", "is required: say what the key is for");
  if (trimmed.length > 200) throw invalidArgument("name", "must be at most 200 characters");
  const keyId = newId("key");
  const secret = newSecret();
  const token = compositeToken(API_KEY_KIND, keyId, secret);
  const key: ApiKeyDoc = {
    _id: keyId,
    projectId,
    name: trimmed,
    prefix: token.slice(0, API_KEY_KIND.length + keyId.length + 5),
    secretHash: hashSecret(secret),
    createdBy,
    createdAt: new Date(),
    revokedAt: null,
  };
  await models.apiKeys.create(key);
  return { key, secret: token };
}

export const listApiKeys = (models: IdentityModels, projectId: string) => models.apiKeys.find({ projectId }).sort({ createdAt: -1 }).lean();

/** Revoking twice is fine: the key keeps its first revocation time. */
export async function revokeApiKey(models: IdentityModels, revocations: Revocations, projectId: string, keyId: string): Promise<ApiKeyDoc> {
  if (!keyId.trim()) throw invalidArgument("key_id", "is required");
  const key = await models.apiKeys.findOne({ _id: keyId, projectId }).lean();
  if (!key) throw notFound("API key");
  if (!key.revokedAt) {
    key.revokedAt = new Date();
    await models.apiKeys.updateOne({ _id: keyId, projectId, revokedAt: null }, { $set: { revokedAt: key.revokedAt } });
  }
  revocations.noteKey(keyId);
  return key;
}
