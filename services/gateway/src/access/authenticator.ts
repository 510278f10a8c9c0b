import { unauthenticated } from "@chatcrm/grpc";
import type { ApiKeyDoc, IdentityModels } from "../data/identity-models";
import { AccessTokens } from "./access-tokens";
import type { Caller } from "./caller";
import type { Revocations } from "./revocations";
import { hashSecret, parseCompositeToken, sameHash } from "./secrets";

export const API_KEY_KIND = "ck";

// A verified key is trusted this long without a database read; revocation reaches it sooner through Revocations.
const KEY_CACHE_MS = 60_000;

/** Turns the Authorization header into a Caller, or says in words why it cannot. */
export class Authenticator {
  private readonly keyCache = new Map<string, { key: Pick<ApiKeyDoc, "projectId" | "secretHash" | "revokedAt">; at: number }>();

  constructor(
    private readonly tokens: AccessTokens,
    private readonly models: IdentityModels,
    private readonly revocations: Revocations,
  ) {}

  async authenticate(authorization: string | null): Promise<Caller> {
    if (!authorization) throw unauthenticated('this call needs credentials: send "Authorization: Bearer <access token or API key>"');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match?.[1]) throw unauthenticated('the Authorization header must read "Bearer <access token or API key>"');
    const token = match[1];
    const key = parseCompositeToken(token, API_KEY_KIND);
    return key ? this.apiKey(key.id, key.secret) : this.accessToken(token);
  }

  private async accessToken(token: string): Promise<Caller> {
    const claims = await this.tokens.verify(token);
    if (this.revocations.sessionRevoked(claims.sessionId)) throw unauthenticated("the session has ended (logged out or access changed): log in again");
    return { kind: "operator", ...claims };
  }

  private async apiKey(keyId: string, secret: string): Promise<Caller> {
    // Built only when refusing: this runs on every call made with a key.
    const refused = () => unauthenticated("the API key is not valid or has been revoked");
    if (this.revocations.keyRevoked(keyId)) throw refused();
    let cached = this.keyCache.get(keyId);
    if (!cached || Date.now() - cached.at > KEY_CACHE_MS) {
      const key = await this.models.apiKeys.findOne({ _id: keyId }, { projectId: 1, secretHash: 1, revokedAt: 1 }).lean();
      if (!key) throw refused();
      cached = { key, at: Date.now() };
      this.keyCache.set(keyId, cached);
    }
    if (cached.key.revokedAt || !sameHash(cached.key.secretHash, hashSecret(secret))) throw refused();
    return { kind: "api-key", projectId: cached.key.projectId, keyId };
  }
}
