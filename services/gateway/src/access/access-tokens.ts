import { errors, jwtVerify, SignJWT } from "jose";
import { unauthenticated } from "@chatcrm/grpc";
import type { RoleName } from "../data/identity-models";

export interface AccessClaims {
  projectId: string;
  operatorId: string;
  role: RoleName;
  sessionId: string;
}

const ISSUER = "chatcrm-gateway";
const AUDIENCE = "chatcrm-api";

/**
 * Short-lived access tokens: JWTs signed with HMAC-SHA256 under the gateway's secret, so any replica checks one
 * without a database read. Logout still takes effect at once: the token names its session, and revoked
 * sessions are refused (see Revocations).
 */
export class AccessTokens {
  private readonly key: Uint8Array;

  constructor(
    secret: string,
    readonly ttlSec: number,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  async issue(claims: AccessClaims): Promise<{ token: string; expiresAt: Date }> {
    const expiresAt = new Date(Math.floor(Date.now() / 1000 + this.ttlSec) * 1000);
    const token = await new SignJWT({ pid: claims.projectId, role: claims.role, sid: claims.sessionId })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(claims.operatorId)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(expiresAt.getTime() / 1000)
      .sign(this.key);
    return { token, expiresAt };
  }

  async verify(token: string): Promise<AccessClaims> {
    try {
      const { payload } = await jwtVerify(token, this.key, { issuer: ISSUER, audience: AUDIENCE, algorithms: ["HS256"] });
      const { pid, role, sid, sub } = payload as { pid?: unknown; role?: unknown; sid?: unknown; sub?: unknown };
      if (typeof pid !== "string" || typeof sid !== "string" || typeof sub !== "string" || (role !== "admin" && role !== "operator")) {
        throw unauthenticated("the access token is not valid");
      }
      return { projectId: pid, operatorId: sub, role, sessionId: sid };
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw unauthenticated("the access token has expired: refresh the session or log in again");
      if (err instanceof errors.JOSEError) throw unauthenticated("the access token is not valid");
      throw err;
    }
  }
}

/** A JWT has three base64url parts; our API keys and refresh tokens have a kind prefix instead. */
export const looksLikeJwt = (token: string) => /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token) && token.startsWith("eyJ");
