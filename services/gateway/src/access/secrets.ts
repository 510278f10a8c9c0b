import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** An opaque id with a readable kind prefix, e.g. "op_…" for an operator. */
export const newId = (kind: string) => `${kind}_${randomBytes(12).toString("base64url")}`;

/** 256 bits from the CSPRNG: refresh tokens and API key secrets. */
export const newSecret = () => randomBytes(32).toString("base64url");

/**
 * Secrets we issue are random 256-bit values, so a fast hash is enough to store them (nothing to brute-force);
 * passwords, chosen by people, get the memory-hard hash in passwords.ts instead.
 */
export const hashSecret = (secret: string) => createHash("sha256").update(secret).digest("base64url");

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Tokens we hand out are "<kind>.<id>.<secret>": the id finds the stored hash by _id, the secret proves the
 * holder got it from us. Returns null for anything else.
 */
export function parseCompositeToken(token: string, kind: string): { id: string; secret: string } | null {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[0] !== kind || !parts[1] || !parts[2]) return null;
  return { id: parts[1], secret: parts[2] };
}

export const compositeToken = (kind: string, id: string, secret: string) => `${kind}.${id}.${secret}`;
