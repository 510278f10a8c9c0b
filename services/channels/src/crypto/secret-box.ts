import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";

const VERSION = "v1";

/**
 * Compares a secret someone presented with the one we hold, in constant time (no early exit that would leak how
 * much matched). Anything but a non-empty string, or a missing expectation, is a mismatch. Every webhook secret,
 * signature and token check goes through here.
 */
export function equalSecret(given: unknown, expected: string | undefined): boolean {
  if (typeof given !== "string" || !given || !expected) return false;
  const a = Buffer.from(given, "utf8");
  const b = Buffer.from(expected, "utf8");
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A channel's stored secrets cannot be read with this replica's key (a changed or mismatched CHANNEL_SECRETS_KEY). */
export class SecretsUnreadable extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SecretsUnreadable";
  }
}

/**
 * Encrypts the channels' secrets at rest with AES-256-GCM under a key from the environment (CHANNEL_SECRETS_KEY).
 * The stored form is "v1:<iv>:<tag>:<ciphertext>" (base64url) so the key can be rotated later by version. The
 * channel id is bound as associated data: a ciphertext copied onto another channel's record does not decrypt.
 * The same master key also derives (HKDF) a separate key for signing web widget visitor ids.
 */
export class SecretBox {
  private readonly encryptionKey: Buffer;
  private readonly signingKey: Buffer;

  constructor(masterKeyBase64: string) {
    const master = Buffer.from(masterKeyBase64, "base64");
    if (master.length !== 32) throw new Error("CHANNEL_SECRETS_KEY must be 32 bytes in base64");
    this.encryptionKey = Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), "chatcrm channels secrets v1", 32));
    this.signingKey = Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), "chatcrm widget visitors v1", 32));
  }

  seal(secrets: Record<string, string>, channelId: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.encryptionKey, iv);
    cipher.setAAD(Buffer.from(channelId));
    const body = Buffer.concat([cipher.update(JSON.stringify(secrets), "utf8"), cipher.final()]);
    return [VERSION, iv.toString("base64url"), cipher.getAuthTag().toString("base64url"), body.toString("base64url")].join(":");
  }

  open(sealed: string, channelId: string): Record<string, string> {
    const [version, iv, tag, body] = sealed.split(":");
    if (version !== VERSION || !iv || !tag || body === undefined) throw new SecretsUnreadable(`channel ${channelId}: its stored secrets are in an unknown format`);
    const decipher = createDecipheriv("aes-256-gcm", this.encryptionKey, Buffer.from(iv, "base64url"));
    decipher.setAAD(Buffer.from(channelId));
    decipher.setAuthTag(Buffer.from(tag, "base64url"));
    try {
      return JSON.parse(Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]).toString("utf8")) as Record<string, string>;
    } catch {
      throw new SecretsUnreadable(`channel ${channelId}: its stored secrets do not decrypt with this CHANNEL_SECRETS_KEY (was the key changed?); reconnect the channel`);
    }
  }

  /** An HMAC tag over `value`, for ids handed to browsers that must come back unforged. */
  sign(value: string): string {
    return createHmac("sha256", this.signingKey).update(value).digest("base64url").slice(0, 32);
  }

  verify(value: string, tag: string): boolean {
    return equalSecret(tag, this.sign(value));
  }

  /** "<id>.<tag>": an id handed out for `purpose` (a widget key, a visitor token) that comes back unforged. */
  signedId(purpose: string, id: string): string {
    return `${id}.${this.sign(`${purpose}:${id}`)}`;
  }

  /** The id inside a signedId of this purpose, or null when the token is not one. */
  idOfSigned(purpose: string, token: string): string | null {
    const dot = token.lastIndexOf(".");
    if (dot <= 0) return null;
    const id = token.slice(0, dot);
    return this.verify(`${purpose}:${id}`, token.slice(dot + 1)) ? id : null;
  }
}
