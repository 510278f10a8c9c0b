import { randomBytes } from "node:crypto";
import type { SecretBox } from "../crypto/secret-box";

/**
 * The key a site embeds names its channel and carries a signature, so a widget connection finds its channel by _id
 * and a made-up key is refused without a lookup. It is public by nature (it sits in the page), hence not a secret.
 */
export const widgetKeyFor = (box: SecretBox, channelId: string) => box.signedId("widget-key", channelId);

export const channelOfWidgetKey = (box: SecretBox, key: string): string | null => box.idOfSigned("widget-key", key);

/**
 * A visitor keeps their id across page loads by storing this token (localStorage); the signature, bound to the
 * channel, stops one visitor from reading another's dialog by guessing an id.
 */
export function newVisitorToken(box: SecretBox, channelId: string): { visitorId: string; token: string } {
  const visitorId = `v_${randomBytes(12).toString("base64url")}`;
  return { visitorId, token: box.signedId(`visitor:${channelId}`, visitorId) };
}

export const visitorOfToken = (box: SecretBox, channelId: string, token: string): string | null => box.idOfSigned(`visitor:${channelId}`, token);
