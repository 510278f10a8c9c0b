import { RpcError, Status, unauthenticated } from "@chatcrm/grpc";
import type { AccessTokens } from "../access/access-tokens";
import type { Revocations } from "../access/revocations";
import { compositeToken, hashSecret, newId, newSecret, parseCompositeToken, sameHash } from "../access/secrets";
import type { IdentityModels, OperatorDoc } from "../data/identity-models";

const REFRESH_KIND = "rt";

export interface IssuedTokens {
  accessToken: string;
  accessTokenExpiresAt: Date;
  refreshToken: string;
  refreshTokenExpiresAt: Date;
}

/**
 * Operator sessions: a refresh token (stored hashed, rotated on every use, lifetime fixed at login) and the
 * short-lived access tokens issued under it. Ending a session reaches every replica through Revocations.
 */
export class Sessions {
  constructor(
    private readonly models: IdentityModels,
    private readonly tokens: AccessTokens,
    private readonly revocations: Revocations,
    private readonly refreshTtlSec: number,
  ) {}

  async open(operator: OperatorDoc): Promise<IssuedTokens> {
    const sessionId = newId("ses");
    const secret = newSecret();
    const refreshTokenExpiresAt = new Date(Date.now() + this.refreshTtlSec * 1000);
    await this.models.sessions.create({
      _id: sessionId,
      projectId: operator.projectId,
      operatorId: operator._id,
      refreshHash: hashSecret(secret),
      previousRefreshHash: "",
      refreshExpiresAt: refreshTokenExpiresAt,
      createdAt: new Date(),
      revokedAt: null,
    });
    return this.tokensFor(operator, sessionId, secret, refreshTokenExpiresAt);
  }

  async refresh(refreshToken: string): Promise<IssuedTokens> {
    const refused = unauthenticated("the refresh token is not valid, has expired or was revoked: log in again");
    const parsed = parseCompositeToken(refreshToken.trim(), REFRESH_KIND);
    if (!parsed) throw refused;
    const session = await this.models.sessions.findOne({ _id: parsed.id }).lean();
    if (!session || session.revokedAt || session.refreshExpiresAt.getTime() <= Date.now()) throw refused;
    const presented = hashSecret(parsed.secret);
    if (session.previousRefreshHash && sameHash(session.previousRefreshHash, presented)) {
      // A rotated-out token came back: someone holds a copy. End the session for both holders.
      await this.end(session._id);
      throw unauthenticated("this refresh token was already used, so the session was ended for safety: log in again");
    }
    if (!sameHash(session.refreshHash, presented)) throw refused;
    const operator = await this.models.operators.findOne({ _id: session.operatorId, projectId: session.projectId }).lean();
    if (!operator || operator.disabled) {
      await this.end(session._id);
      throw refused;
    }
    const secret = newSecret();
    // Compare-and-set on the current hash: of two concurrent refreshes with the same token only one wins.
    const { modifiedCount } = await this.models.sessions.updateOne(
      { _id: session._id, refreshHash: session.refreshHash },
      { $set: { refreshHash: hashSecret(secret), previousRefreshHash: session.refreshHash } },
    );
    if (modifiedCount !== 1) throw new RpcError(Status.ABORTED, "the session was refreshed at the same moment by another call: use the tokens it got");
    return this.tokensFor(operator, session._id, secret, session.refreshExpiresAt);
  }

  async end(sessionId: string): Promise<void> {
    await this.models.sessions.updateOne({ _id: sessionId, revokedAt: null }, { $set: { revokedAt: new Date() } });
    this.revocations.noteSession(sessionId);
  }

  /** Every open session of an operator, when their access changed (disabled, new role or password). */
  async endAllOf(projectId: string, operatorId: string): Promise<void> {
    const open = await this.models.sessions.find({ projectId, operatorId, revokedAt: null }, { _id: 1 }).lean();
    if (!open.length) return;
    await this.models.sessions.updateMany({ _id: { $in: open.map((s) => s._id) } }, { $set: { revokedAt: new Date() } });
    for (const s of open) this.revocations.noteSession(s._id);
  }

  private async tokensFor(operator: OperatorDoc, sessionId: string, secret: string, refreshTokenExpiresAt: Date): Promise<IssuedTokens> {
    const access = await this.tokens.issue({ projectId: operator.projectId, operatorId: operator._id, role: operator.role, sessionId });
    return { accessToken: access.token, accessTokenExpiresAt: access.expiresAt, refreshToken: compositeToken(REFRESH_KIND, sessionId, secret), refreshTokenExpiresAt };
  }
}
