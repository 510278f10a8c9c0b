import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import { RpcError, Status } from "@chatcrm/grpc";
import type { Caller } from "./caller";

export interface RequestLimitSettings {
  perApiKeyPerSec: number;
  perOperatorPerSec: number;
  loginsPerMinutePerAddress: number;
}

const tooMany = (what: string, res: unknown) => {
  const seconds = res instanceof RateLimiterRes ? Math.max(1, Math.ceil(res.msBeforeNext / 1000)) : 1;
  return new RpcError(Status.RESOURCE_EXHAUSTED, `${what}: try again in ${seconds} s`);
};

/**
 * Per-replica request budgets: each API key and each signed-in operator, and login attempts per client address.
 * Windows of two seconds allow a burst of twice the per-second rate.
 */
export class RequestLimits {
  private readonly apiKeys: RateLimiterMemory;
  private readonly operators: RateLimiterMemory;
  private readonly logins: RateLimiterMemory;

  constructor(private readonly settings: RequestLimitSettings) {
    this.apiKeys = new RateLimiterMemory({ points: settings.perApiKeyPerSec * 2, duration: 2 });
    this.operators = new RateLimiterMemory({ points: settings.perOperatorPerSec * 2, duration: 2 });
    this.logins = new RateLimiterMemory({ points: settings.loginsPerMinutePerAddress, duration: 60 });
  }

  async take(caller: Caller): Promise<void> {
    if (caller.kind === "api-key") {
      await this.apiKeys.consume(caller.keyId).catch((res) => {
        throw tooMany(`too many requests with this API key (at most ${this.settings.perApiKeyPerSec} a second)`, res);
      });
    } else {
      await this.operators.consume(caller.operatorId).catch((res) => {
        throw tooMany(`too many requests from this login (at most ${this.settings.perOperatorPerSec} a second)`, res);
      });
    }
  }

  async takeLogin(address: string): Promise<void> {
    await this.logins.consume(address).catch((res) => {
      throw tooMany("too many login attempts from this address", res);
    });
  }
}
