import type { UtmDoc } from "../store/contact-document";

const UTM_KEYS = ["source", "medium", "campaign", "content", "term"] as const;

/**
 * UTM tags from a start payload. Web widgets pass a query string ("utm_source=vk&utm_campaign=spring");
 * Telegram deep links allow only [A-Za-z0-9_-], so there the convention is "utm_source-vk__utm_campaign-spring"
 * (the "utm_" prefix is optional in both). A payload that names no UTM key is taken whole as the source, which is
 * how most bot builders label "where did this subscriber come from". Returns null for an empty payload.
 */
export function parseUtm(payload: string): UtmDoc | null {
  const raw = payload.trim();
  if (!raw) return null;
  const utm: UtmDoc = { source: "", medium: "", campaign: "", content: "", term: "" };
  const pairs = raw.includes("=")
    ? [...new URLSearchParams(raw.replace(/^\?/, "")).entries()]
    : raw.split("__").map((part) => {
        const dash = part.indexOf("-");
        return dash < 0 ? [part, ""] : [part.slice(0, dash), part.slice(dash + 1)];
      });
  let found = false;
  for (const [key, value] of pairs) {
    const name = key!.toLowerCase().replace(/^utm_/, "") as (typeof UTM_KEYS)[number];
    if (UTM_KEYS.includes(name) && value) {
      utm[name] = value.slice(0, 200);
      found = true;
    }
  }
  if (!found) utm.source = raw.slice(0, 200);
  return utm;
}
