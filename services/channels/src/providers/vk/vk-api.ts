import { httpCall } from "../http-call";
import type { SendResult } from "../provider";

/** The API version every call names; the callback server in the community settings should use the same one. */
export const VK_API_VERSION = "5.199";

/**
 * How one VK API call ended. VK answers its own errors with HTTP 200 and {error:{error_code, error_msg}}, so the
 * HTTP status only matters when there is no VK body at all (a proxy's 502, a wrong base URL).
 */
export type VkCallResult =
  | { kind: "response"; response: unknown }
  | { kind: "error"; code: number; message: string }
  | { kind: "http"; status: number };

/** Calls `POST <apiBaseUrl>/method/<method>` with form-encoded params; transport failures throw NetworkError. */
export async function callVk(
  apiBaseUrl: string,
  method: string,
  accessToken: string,
  params: Record<string, string>,
  timeoutMs: number,
): Promise<VkCallResult> {
  const body = new URLSearchParams({ ...params, access_token: accessToken, v: VK_API_VERSION });
  const answer = await httpCall(`${apiBaseUrl}/method/${method}`, { method: "POST", body, timeoutMs });
  const json = answer.json;
  if (json && typeof json === "object") {
    if ("error" in json) {
      const error = (json as { error: { error_code?: unknown; error_msg?: unknown } }).error;
      return { kind: "error", code: Number(error?.error_code ?? 0), message: String(error?.error_msg ?? "no error text") };
    }
    if ("response" in json && answer.status === 200) return { kind: "response", response: (json as { response: unknown }).response };
  }
  return { kind: "http", status: answer.status };
}

/** The error codes that mean the token itself is no good: every call with it will fail the same way. */
export const TOKEN_ERROR_CODES = new Set([5, 15, 27, 28]);

/** What a failed messages.send means for the dispatcher; the text is shown to operators as is. */
export function sendFailure(result: Exclude<VkCallResult, { kind: "response" }>): SendResult {
  if (result.kind === "http") {
    const error = `VK answered HTTP ${result.status} without an API response`;
    if (result.status === 429) return { ok: false, kind: "rate_limited", error };
    // A 4xx other than 429 is a request VK's front refuses (wrong base URL, body too large): repeating it cannot help.
    if (result.status >= 400 && result.status < 500) return { ok: false, kind: "rejected", error };
    return { ok: false, kind: "transient", error };
  }
  const error = `VK error ${result.code}: ${result.message}`;
  switch (result.code) {
    // 6: more than 20 calls a second with one community token; 9: flood control on this dialog. Neither names a wait.
    case 6:
    case 9:
      return { ok: false, kind: "rate_limited", error };
    // 901: the user never wrote to the community or turned its messages off; 902: their privacy settings;
    // 936: the contact does not exist. Retrying cannot help until the user acts.
    case 901:
    case 902:
    case 936:
      return { ok: false, kind: "permanent", error };
    case 1:
    case 10:
      return { ok: false, kind: "transient", error };
    default:
      if (TOKEN_ERROR_CODES.has(result.code)) return { ok: false, kind: "rejected", error: `VK refused the community token: reconnect the channel (${error})` };
      return { ok: false, kind: "rejected", error };
  }
}
