import { RpcError, Status } from "@chatcrm/grpc";
import type { IdentityModels } from "../data/identity-models";

export interface LockoutSettings {
  maxFailures: number;
  windowSec: number;
  lockoutSec: number;
}

/**
 * Locks an email after repeated wrong passwords, whichever replica saw them, and across restarts. Counted per
 * email rather than per account, so guessing cannot tell which emails exist.
 */
export class LoginLockout {
  constructor(
    private readonly models: IdentityModels,
    private readonly settings: LockoutSettings,
  ) {}

  async assertOpen(email: string): Promise<void> {
    const doc = await this.models.loginFailures.findOne({ _id: email }).lean();
    if (doc?.lockedUntil && doc.lockedUntil.getTime() > Date.now()) {
      const minutes = Math.ceil((doc.lockedUntil.getTime() - Date.now()) / 60_000);
      throw new RpcError(Status.RESOURCE_EXHAUSTED, `too many failed logins for this email: it is locked for ${minutes} more minute(s)`);
    }
  }

  async recordFailure(email: string): Promise<void> {
    const now = new Date();
    const windowStart = new Date(now.getTime() - this.settings.windowSec * 1000);
    const doc = await this.models.loginFailures.findOne({ _id: email }).lean();
    if (!doc || doc.firstAt < windowStart || (doc.lockedUntil && doc.lockedUntil <= now)) {
      await this.models.loginFailures.replaceOne({ _id: email }, { count: 1, firstAt: now, lockedUntil: null }, { upsert: true });
      if (this.settings.maxFailures <= 1) await this.lock(email, now);
      return;
    }
    await this.models.loginFailures.updateOne({ _id: email }, { $inc: { count: 1 } });
    if (doc.count + 1 >= this.settings.maxFailures) await this.lock(email, now);
  }

  async clear(email: string): Promise<void> {
    await this.models.loginFailures.deleteOne({ _id: email });
  }

  private async lock(email: string, now: Date): Promise<void> {
    await this.models.loginFailures.updateOne({ _id: email }, { $set: { lockedUntil: new Date(now.getTime() + this.settings.lockoutSec * 1000) } });
  }
}
