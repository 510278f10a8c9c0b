import type { MessengerName } from "../accounts/messengers";

export interface Rate {
  ratePerSec: number;
  burst: number;
}

export interface ProviderLimits {
  perAccount: Rate;
  perChat: Rate;
}

/**
 * What each provider allows, by its own documentation. Telegram: about 30 messages/s per bot and one per second
 * per chat, with short bursts tolerated. WhatsApp Cloud API: 80 messages/s per business number by default, and the
 * pair limit of one message per 6 s to one user after a burst of 45. VK: 20 calls/s per community token. Email and
 * the web widget have no provider limit; theirs only keep a runaway flow from flooding a mailbox or a socket.
 */
export const DEFAULT_LIMITS: Record<MessengerName, ProviderLimits> = {
  telegram: { perAccount: { ratePerSec: 30, burst: 30 }, perChat: { ratePerSec: 1, burst: 3 } },
  whatsapp: { perAccount: { ratePerSec: 80, burst: 80 }, perChat: { ratePerSec: 1 / 6, burst: 45 } },
  vk: { perAccount: { ratePerSec: 20, burst: 20 }, perChat: { ratePerSec: 5, burst: 5 } },
  email: { perAccount: { ratePerSec: 10, burst: 20 }, perChat: { ratePerSec: 1, burst: 5 } },
  web: { perAccount: { ratePerSec: 1_000, burst: 1_000 }, perChat: { ratePerSec: 20, burst: 20 } },
};

/** Parses CHANNEL_RATE_LIMITS over the defaults; a bad value is a start-up error naming it. */
export function limitsFromConfig(json: string): Record<MessengerName, ProviderLimits> {
  let overrides: Record<string, Partial<ProviderLimits>>;
  try {
    overrides = JSON.parse(json) as Record<string, Partial<ProviderLimits>>;
  } catch {
    throw new Error("CHANNEL_RATE_LIMITS is not valid JSON");
  }
  const limits = structuredClone(DEFAULT_LIMITS);
  for (const [messenger, override] of Object.entries(overrides)) {
    if (!(messenger in limits)) throw new Error(`CHANNEL_RATE_LIMITS: unknown messenger "${messenger}" (expected telegram, whatsapp, vk, email or web)`);
    for (const scope of ["perAccount", "perChat"] as const) {
      const rate = override[scope];
      if (!rate) continue;
      if (!(rate.ratePerSec > 0) || !(rate.burst >= 1)) throw new Error(`CHANNEL_RATE_LIMITS.${messenger}.${scope}: expected ratePerSec > 0 and burst >= 1`);
      limits[messenger as MessengerName][scope] = { ratePerSec: rate.ratePerSec, burst: rate.burst };
    }
  }
  return limits;
}

/**
 * Two-level limiting (account and chat) by the generic cell rate algorithm: each key keeps the theoretical arrival
 * time of its next message, and a burst up to `burst` goes out at once. A slot is booked in both levels only at
 * the moment of sending: booking ahead for a chat that must wait would hold the whole account (every other chat of
 * the bot) until then, and booking one level before the other lets the real gap between two messages of a chat
 * shrink below the limit.
 */
/**
 * Slots are spaced this much wider than the provider's limit: the provider counts arrivals, and network jitter can
 * bring two requests we spaced exactly a few milliseconds closer at its end.
 */
const SAFETY = 1.05;

const intervalOf = (rate: Rate) => (1_000 / rate.ratePerSec) * SAFETY;

export class RateLimiter {
  private readonly tat = new Map<string, number>();
  private lastSweep = Date.now();

  /** 0 when both levels allow a message now (the slot is booked); otherwise how long to wait before asking again. */
  tryAcquire(accountKey: string, account: Rate, chatKey: string, chat: Rate, now = Date.now()): number {
    const at = Math.max(now, this.allowedAt(accountKey, account, now), this.allowedAt(chatKey, chat, now));
    if (at > now) return Math.ceil(at - now);
    this.book(accountKey, account, now);
    this.book(chatKey, chat, now);
    this.sweep(now);
    return 0;
  }

  /** One-level form of tryAcquire, for a single limit (a widget visitor's address). */
  tryTake(key: string, rate: Rate, now = Date.now()): number {
    const at = Math.max(now, this.allowedAt(key, rate, now));
    if (at > now) return Math.ceil(at - now);
    this.book(key, rate, now);
    this.sweep(now);
    return 0;
  }

  /** Pushes a key's next slot to at least `until` (a provider said "retry after"). */
  holdUntil(key: string, rate: Rate, until: number): void {
    const interval = intervalOf(rate);
    const tolerance = (rate.burst - 1) * interval;
    this.tat.set(key, Math.max(this.tat.get(key) ?? 0, until + tolerance));
  }

  private allowedAt(key: string, rate: Rate, now: number): number {
    const interval = intervalOf(rate);
    const tat = Math.max(this.tat.get(key) ?? now, now);
    return tat - (rate.burst - 1) * interval;
  }

  private book(key: string, rate: Rate, at: number): void {
    const interval = intervalOf(rate);
    this.tat.set(key, Math.max(this.tat.get(key) ?? at, at) + interval);
  }

  /** Keys whose next slot is in the past hold no information any more; dropping them keeps memory flat. */
  private sweep(now: number): void {
    if (now - this.lastSweep < 10_000) return;
    this.lastSweep = now;
    for (const [key, tat] of this.tat) if (tat < now) this.tat.delete(key);
  }
}
