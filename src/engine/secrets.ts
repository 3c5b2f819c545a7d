/**
 * Named secrets: stored encrypted (AES-256-GCM under SECRETS_KEY), set by admins, referenced
 * as `{{secrets.NAME}}` in http-action headers and in an agent's API key. A value is only
 * decrypted for the call that sends it, and whatever that call returns or throws has every
 * resolved value cut out before it is stored, published or logged.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { SECRET_NAME } from "../domain/access.ts";
import { AppError, BadInputError, NotFoundError } from "../domain/errors.ts";
import type { JsonValue } from "../domain/json.ts";
import type { AdminStore } from "../store/admin.ts";
import { NodeError, PermanentError } from "./errors.ts";

/** `{{secrets.NAME}}`, spaces allowed inside the braces as Mustache allows them. */
const REFERENCE = /\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;
/** What a secret's value is replaced with wherever it would have shown. */
export const REDACTED = "[secret]";

/** Names referenced in a text, in order, each once. */
export function secretReferences(text: string): string[] {
  return [...new Set([...text.matchAll(REFERENCE)].map((m) => m[1]!))];
}

export const mentionsSecrets = (text: string): boolean => /\{\{\s*secrets\./.test(text);

/** Decrypts the named secrets for one call; what the call sends and returns goes through it. */
export interface SecretResolver {
  /** @throws {PermanentError} SECRET_MISSING naming the secret (never a value) */
  resolve(names: readonly string[]): Promise<ReadonlyMap<string, string>>;
}

function encrypt(key: Buffer, plain: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const data = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), data]).toString("base64");
}

function decrypt(key: Buffer, stored: string): string {
  const raw = Buffer.from(stored, "base64");
  const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
}

/** The secrets of one store under one key. */
export class SecretVault implements SecretResolver {
  readonly #store: AdminStore;
  readonly #key: Buffer | undefined;

  constructor(store: AdminStore, key: Buffer | undefined) {
    this.#store = store;
    this.#key = key;
  }

  get configured(): boolean {
    return this.#key !== undefined;
  }

  #requireKey(): Buffer {
    if (!this.#key)
      throw new AppError(
        "SECRETS_NOT_CONFIGURED",
        "secrets need SECRETS_KEY (32 bytes, e.g. from openssl rand -hex 32) in the server's environment",
      );
    return this.#key;
  }

  /** Stores (or replaces) a secret; the value is never returned. */
  async set(name: string, value: string): Promise<{ name: string; updatedAt: Date }> {
    if (!SECRET_NAME.test(name))
      throw new BadInputError(
        `a secret name is letters, digits and _ (not first), at most 64, got "${name}"`,
      );
    if (value === "") throw new BadInputError(`secret "${name}" cannot be empty`);
    if (value.length > 16_384)
      throw new BadInputError(`secret "${name}" is longer than 16384 characters`);
    const stored = await this.#store.putSecret(
      name,
      encrypt(this.#requireKey(), value),
      new Date(),
    );
    return { name: stored.name, updatedAt: stored.updatedAt };
  }

  async delete(name: string): Promise<boolean> {
    return this.#store.deleteSecret(name);
  }

  list() {
    return this.#store.listSecrets();
  }

  async resolve(names: readonly string[]): Promise<ReadonlyMap<string, string>> {
    if (names.length === 0) return new Map();
    if (!this.#key)
      throw new PermanentError(
        `secrets ${names.map((n) => `"${n}"`).join(", ")} cannot be read: the server has no SECRETS_KEY`,
        "SECRET_MISSING",
      );
    const stored = await this.#store.getSecrets(names);
    const values = new Map<string, string>();
    for (const name of names) {
      const secret = stored.get(name);
      if (!secret) throw new PermanentError(`secret "${name}" is not set`, "SECRET_MISSING");
      try {
        values.set(name, decrypt(this.#key, secret.value));
      } catch {
        throw new PermanentError(
          `secret "${name}" cannot be decrypted with this SECRETS_KEY`,
          "SECRET_MISSING",
        );
      }
    }
    return values;
  }
}

/** A resolver for engines without a store of secrets: every reference fails. */
export const noSecrets: SecretResolver = {
  async resolve(names) {
    if (names.length > 0) throw new NotFoundError("secret", names[0]!);
    return new Map();
  },
};

/** The text with every value cut out. */
export function redactText(text: string, values: Iterable<string>): string {
  let out = text;
  for (const value of values) if (value.length > 0) out = out.split(value).join(REDACTED);
  return out;
}

/** A JSON value with every value cut out of its strings (keys included). */
export function redactJson(value: JsonValue, values: readonly string[]): JsonValue {
  if (values.length === 0) return value;
  if (typeof value === "string") return redactText(value, values);
  if (Array.isArray(value)) return value.map((item) => redactJson(item, values));
  if (value !== null && typeof value === "object")
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [redactText(k, values), redactJson(v, values)]),
    );
  return value;
}

/**
 * Runs a call that sends secret values; its result and any error it throws come back with
 * those values cut out (an error keeps its class, code and retryability).
 */
export async function withRedaction<T extends JsonValue>(
  values: ReadonlyMap<string, string>,
  call: () => Promise<T>,
): Promise<T> {
  const secrets = [...values.values()];
  if (secrets.length === 0) return call();
  try {
    return redactJson(await call(), secrets) as T;
  } catch (error) {
    if (error instanceof Error && secrets.some((s) => error.message.includes(s))) {
      const message = redactText(error.message, secrets);
      if (error instanceof NodeError) throw new NodeError(message, error.retryable, error.code);
      throw new Error(message);
    }
    throw error;
  }
}
