/**
 * API keys: 32 random bytes after a fixed prefix, shown once; only their SHA-256 is stored
 * (a key of that much entropy needs no slow hash: nobody can guess one to test).
 */
import { createHash, randomBytes } from "node:crypto";
import { v7 } from "uuid";
import type { ApiKeyRecord, Role } from "./access.ts";

/** Every key starts so: tells keys from JWTs, and lets secret scanners find leaked ones. */
export const API_KEY_PREFIX = "psk_";

export const hashApiKey = (key: string): string =>
  createHash("sha256").update(key, "utf8").digest("hex");

export const looksLikeApiKey = (token: string): boolean => token.startsWith(API_KEY_PREFIX);

export interface NewApiKey {
  /** The key itself: give it to its holder now, it cannot be read again. */
  readonly key: string;
  readonly record: ApiKeyRecord;
}

/** Makes a key; the caller stores `record`. */
export function generateApiKey(role: Role, label: string, expiresAt: Date | null): NewApiKey {
  const key = `${API_KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
  const now = new Date();
  return {
    key,
    record: {
      id: v7(),
      label,
      role,
      hash: hashApiKey(key),
      prefix: key.slice(0, API_KEY_PREFIX.length + 6),
      createdAt: now,
      expiresAt,
      revokedAt: null,
      lastUsedAt: null,
    },
  };
}
