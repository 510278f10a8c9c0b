import { randomBytes } from "node:crypto";
import type { SecretBox } from "../crypto/secret-box";

/**
 * The key a site embeds names its channel and carries a signature, so a widget connection finds its channel by _id
 * and a made-up key is refused without a lookup. It is public by nature (it sits in the page), hence not a secret.
 */
export const widgetKeyFor = (box: SecretBox, channelId: string) => `${channelId}.${box.sign(`widget-key:${channelId}`)}`;

export function channelOfWidgetKey(box: SecretBox, key: string): string | null {
  const dot = key.lastIndexOf(".");
  if (dot <= 0) return null;
  const channelId = key.slice(0, dot);
  return box.verify(`widget-key:${channelId}`, key.slice(dot + 1)) ? channelId : null;
}

/**
 * A visitor keeps their id across page loads by storing this token (localStorage); the signature stops one visitor
 * from reading another's dialog by guessing an id.
 */
export function newVisitorToken(box: SecretBox, channelId: string): { visitorId: string; token: string } {
  const visitorId = `v_${randomBytes(12).toString("base64url")}`;
  return { visitorId, token: `${visitorId}.${box.sign(`visitor:${channelId}:${visitorId}`)}` };
}

export function visitorOfToken(box: SecretBox, channelId: string, token: string): string | null {
  const dot = token.lastIndexOf(".");
  if (dot <= 0) return null;
  const visitorId = token.slice(0, dot);
  return box.verify(`visitor:${channelId}:${visitorId}`, token.slice(dot + 1)) ? visitorId : null;
}
