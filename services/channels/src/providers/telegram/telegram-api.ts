import { httpCall, NetworkError } from "../http-call";
import type { SendResult } from "../provider";

/**
 * One Bot API call and what its answer means. Telegram answers every method with the same envelope
 * ({ok, result} or {ok:false, error_code, description, parameters}) and an HTTP status equal to error_code,
 * so the error mapping lives here once instead of in every send path.
 */

export type BotApiAnswer =
  | { ok: true; result: unknown }
  | { ok: false; status: number; description: string; retryAfterSec?: number }
  | { ok: false; network: string };

interface ErrorEnvelope {
  ok?: unknown;
  result?: unknown;
  error_code?: unknown;
  description?: unknown;
  parameters?: { retry_after?: unknown };
}

export async function callBotApi(apiBaseUrl: string, token: string, method: string, params: Record<string, unknown>, timeoutMs: number): Promise<BotApiAnswer> {
  let answer;
  try {
    answer = await httpCall(`${apiBaseUrl}/bot${token}/${method}`, { method: "POST", body: params, timeoutMs });
  } catch (err) {
    // The URL contains the token; NetworkError names only the host, so the message is safe to show and log.
    if (err instanceof NetworkError) return { ok: false, network: err.message };
    throw err;
  }
  const envelope = (typeof answer.json === "object" && answer.json !== null ? answer.json : {}) as ErrorEnvelope;
  if (answer.status === 200 && envelope.ok === true) return { ok: true, result: envelope.result };
  const status = typeof envelope.error_code === "number" ? envelope.error_code : answer.status;
  const description = typeof envelope.description === "string" ? envelope.description : `Telegram answered HTTP ${answer.status}`;
  const retryAfter = envelope.parameters?.retry_after;
  return typeof retryAfter === "number" ? { ok: false, status, description, retryAfterSec: retryAfter } : { ok: false, status, description };
}

/** A failed answer as the dispatcher needs it: retry later, never retry, or a message that cannot be sent as is. */
export function sendFailure(answer: Exclude<BotApiAnswer, { ok: true }>): Exclude<SendResult, { ok: true }> {
  if ("network" in answer) return { ok: false, kind: "transient", error: answer.network };
  const { status, description } = answer;
  if (status === 429) {
    return answer.retryAfterSec === undefined
      ? { ok: false, kind: "rate_limited", error: description }
      : { ok: false, kind: "rate_limited", retryAfterMs: answer.retryAfterSec * 1000, error: description };
  }
  // Blocked by the user, user deactivated, kicked from the group: the subscriber is gone, retrying cannot help.
  if (status === 403) return { ok: false, kind: "permanent", error: description };
  if (status === 400 && /chat not found/i.test(description)) return { ok: false, kind: "permanent", error: description };
  // The token was revoked or the bot deleted: every send of this channel fails until an operator reconnects it,
  // which is the channel's problem, not the subscriber's, so the contact must not be unsubscribed.
  if (status === 401) return { ok: false, kind: "rejected", error: "Telegram refused the bot token (401): reconnect the channel" };
  if (status >= 500) return { ok: false, kind: "transient", error: description };
  return { ok: false, kind: "rejected", error: description };
}
