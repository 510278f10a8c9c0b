import { hash, verify } from "@node-rs/argon2";
import { invalidArgument } from "@chatcrm/grpc";

// Argon2id (the library's default algorithm) with OWASP's minimum profile: 19 MiB, 2 passes, 1 lane. About
// 30 ms on this machine, cheap for a login and costly for anyone guessing offline.
const PARAMS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

export const MIN_PASSWORD_LENGTH = 12;
const MAX_PASSWORD_LENGTH = 256;

export function checkNewPassword(password: string, field: string): void {
  if ([...password].length < MIN_PASSWORD_LENGTH) throw invalidArgument(field, `must be at least ${MIN_PASSWORD_LENGTH} characters`);
  if (password.length > MAX_PASSWORD_LENGTH) throw invalidArgument(field, `must be at most ${MAX_PASSWORD_LENGTH} characters`);
  if (!password.trim()) throw invalidArgument(field, "must not be only spaces");
}

export const hashPassword = (password: string) => hash(password, PARAMS);

// Checked when the email is unknown, so a wrong email takes as long as a wrong password and does not reveal
// which emails have accounts.
let decoy: Promise<string> | undefined;

export async function verifyPassword(storedHash: string | undefined, password: string): Promise<boolean> {
  if (password.length > MAX_PASSWORD_LENGTH) return false;
  if (!storedHash) {
    decoy ??= hashPassword("decoy password, never matches");
    await verify(await decoy, password).catch(() => false);
    return false;
  }
  return verify(storedHash, password).catch(() => false);
}
