/**
 * Who may do what: the three roles, API keys and named secrets as stored, and the principal a
 * request acts as.
 */

/** Each role may do everything the roles before it may. */
export const ROLES = ["viewer", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** What each role adds, for docs and error messages. */
export const ROLE_DESCRIPTIONS: Readonly<Record<Role, string>> = {
  viewer: "reads pipelines, runs, events and breakers, and subscribes to run events",
  operator: "also runs, re-runs and cancels runs, resets breakers and validates definitions",
  admin: "also creates, updates and deletes pipelines, and manages API keys and secrets",
};

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}

/** True when `role` includes the rights of `needed`. */
export function roleAllows(role: Role | null, needed: Role): boolean {
  return role !== null && ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** An API key as stored: never the key itself, only its hash. */
export interface ApiKeyRecord {
  readonly id: string;
  readonly label: string;
  readonly role: Role;
  /** Hex SHA-256 of the whole key. */
  readonly hash: string;
  /** The key's first characters (its public part), to tell keys apart. */
  readonly prefix: string;
  readonly createdAt: Date;
  readonly expiresAt: Date | null;
  readonly revokedAt: Date | null;
  readonly lastUsedAt: Date | null;
}

/** A secret as stored: its value encrypted. */
export interface SecretRecord {
  readonly name: string;
  /** base64 of iv ‖ auth tag ‖ ciphertext (AES-256-GCM). */
  readonly value: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Secret names: what `{{secrets.NAME}}` may reference. */
export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Who a request acts as. */
export interface Principal {
  /**
   * `key`: an API key; `jwt`: a verified token; `local`: nobody, auth being off (a local bind
   * with no key, or AUTH=off); `anonymous`: nobody, auth being on (every field refuses).
   */
  readonly kind: "key" | "jwt" | "local" | "anonymous";
  /** null: no rights (anonymous). */
  readonly role: Role | null;
  /** The key id or the token subject; what rate limits and subscription caps count by. */
  readonly id: string;
  readonly label?: string;
  /** Why an anonymous request was refused (a key expired, revoked, unknown…). */
  readonly failure?: string;
}
