import type { Logger } from "@chatcrm/logging";
import type { IdentityModels } from "../data/identity-models";

// Polls overlap by this much so a revocation written with a slightly earlier clock on another replica is seen.
const OVERLAP_MS = 5_000;

/**
 * Sessions and API keys revoked anywhere. Access tokens and cached keys are checked without a database read, so
 * each replica learns of revocations by polling; the replica that revokes knows at once. A session needs
 * remembering only as long as an access token of it can live.
 */
export class Revocations {
  private readonly sessions = new Map<string, number>();
  private readonly keys = new Map<string, number>();
  private since: Date;

  constructor(
    private readonly models: IdentityModels,
    private readonly rememberMs: number,
    private readonly logger: Logger,
  ) {
    this.since = new Date(Date.now() - rememberMs);
  }

  sessionRevoked = (sessionId: string) => this.sessions.has(sessionId);
  keyRevoked = (keyId: string) => this.keys.has(keyId);

  noteSession(sessionId: string): void {
    this.sessions.set(sessionId, Date.now());
  }

  noteKey(keyId: string): void {
    this.keys.set(keyId, Date.now());
  }

  /** One pass: picks up what was revoked since the last one and forgets sessions whose tokens have expired. */
  async poll(): Promise<void> {
    const from = new Date(this.since.getTime() - OVERLAP_MS);
    const startedAt = new Date();
    const [sessions, keys] = await Promise.all([
      this.models.sessions.find({ revokedAt: { $gt: from } }, { _id: 1 }).lean(),
      this.models.apiKeys.find({ revokedAt: { $gt: from } }, { _id: 1 }).lean(),
    ]);
    for (const s of sessions) if (!this.sessions.has(s._id)) this.noteSession(s._id);
    for (const k of keys) if (!this.keys.has(k._id)) this.noteKey(k._id);
    this.since = startedAt;
    const cutoff = Date.now() - this.rememberMs;
    for (const [id, at] of this.sessions) if (at < cutoff) this.sessions.delete(id);
    if (sessions.length || keys.length) this.logger.debug({ sessions: sessions.length, keys: keys.length }, "revocations picked up");
  }
}
