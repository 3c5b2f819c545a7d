/**
 * Authentication: who a request acts as, from `Authorization: Bearer <key or JWT>` over HTTP
 * and SSE, or `connectionParams.authorization` over graphql-ws.
 *
 * Whether auth is on: AUTH=on always, AUTH=off never; by default (auto) it is on as soon as
 * an API key exists or JWT is configured, and always when the server binds beyond loopback
 * (start() refuses such a bind while nothing could authenticate). While it is off, every
 * request acts as a local admin.
 */
import type { Logger } from "pino";
import type { Config } from "../config.ts";
import { isRole, type Principal } from "../domain/access.ts";
import { hashApiKey, looksLikeApiKey } from "../domain/api-keys.ts";
import type { AdminStore } from "../store/admin.ts";

/** How long another instance's new or revoked key may take to switch auth on or off here. */
const KEYS_RECHECK_MS = 2_000;
/** lastUsedAt is written at most this often per key. */
const TOUCH_EVERY_MS = 60_000;

export interface Authenticator {
  /**
   * `authorization`: the header or connection parameter as sent; `address`: the peer's;
   * `jwtPayload`: what the JWT plugin verified (jwt.ts), read only for a token that is no key.
   */
  authenticate(
    authorization: unknown,
    address: string,
    jwtPayload?: () => unknown,
  ): Promise<Principal>;
  /** Whether a request without credentials is refused now. */
  required(): Promise<boolean>;
  keysChanged(): void;
  /** One line for the start log. */
  describe(): Promise<string>;
}

/** start() beyond loopback while nothing can authenticate; the message is the one line. */
export class AuthSetupError extends Error {
  override readonly name = "AuthSetupError";
  readonly code = "AUTH_REQUIRED";
  constructor(host: string) {
    super(
      `refusing to listen on ${host} without authentication: create an admin key (npm run keys -- create --role admin), set JWT_SECRET or JWT_JWKS_URL, or set AUTH=off (unsafe: anyone who reaches the port may do everything)`,
    );
  }
}

export const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);

export function createAuthenticator(options: {
  readonly config: Config;
  readonly admin: AdminStore;
  readonly logger: Logger;
  /** The interface the server listens on (start() may be given another than config.host). */
  host(): string;
}): Authenticator {
  const { config, admin } = options;
  const jwt = config.security.jwt;
  const mode = config.security.auth;
  let keysExist: { value: boolean; at: number } | undefined;
  const touched = new Map<string, number>();

  const anyKey = async (): Promise<boolean> => {
    const now = Date.now();
    if (!keysExist || now - keysExist.at > KEYS_RECHECK_MS) {
      try {
        keysExist = { value: await admin.hasActiveApiKey(new Date()), at: now };
      } catch (error) {
        // The database is away: what was last known holds until it answers again (a
        // subscription opened during an outage is not refused for it).
        if (!keysExist) throw error;
      }
    }
    return keysExist.value;
  };
  const required = async (): Promise<boolean> => {
    if (mode === "off") return false;
    if (mode === "on" || jwt || !isLoopback(options.host())) return true;
    return anyKey();
  };
  const anonymous = (address: string, failure?: string): Principal => ({
    kind: "anonymous",
    role: null,
    id: `address:${address}`,
    failure,
  });

  async function fromKey(token: string, address: string): Promise<Principal> {
    const key = await admin.apiKeyByHash(hashApiKey(token));
    const now = new Date();
    if (!key) return anonymous(address, "this API key is not valid");
    if (key.revokedAt)
      return anonymous(
        address,
        `API key ${key.prefix}… was revoked at ${key.revokedAt.toISOString()}`,
      );
    if (key.expiresAt && key.expiresAt <= now)
      return anonymous(address, `API key ${key.prefix}… expired at ${key.expiresAt.toISOString()}`);
    if (now.getTime() - (touched.get(key.id) ?? 0) > TOUCH_EVERY_MS) {
      touched.set(key.id, now.getTime());
      admin
        .touchApiKey(key.id, now)
        .catch((error: unknown) =>
          options.logger.warn({ err: error, keyId: key.id }, "could not record a key's last use"),
        );
    }
    return { kind: "key", role: key.role, id: `key:${key.id}`, label: key.label };
  }

  return {
    required,
    keysChanged: () => {
      keysExist = undefined;
    },
    async authenticate(authorization, address, jwtPayload) {
      if (!(await required())) return { kind: "local", role: "admin", id: `address:${address}` };
      if (authorization === undefined || authorization === null || authorization === "")
        return anonymous(address);
      const match = typeof authorization === "string" && /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!match) return anonymous(address, "the authorization must read: Bearer <API key>");
      const token = match[1]!;
      if (looksLikeApiKey(token)) return fromKey(token, address);
      if (!jwt) return anonymous(address, "this API key is not valid");
      const payload = jwtPayload?.() as Record<string, unknown> | undefined;
      if (!payload) return anonymous(address, "this token could not be verified");
      const role = payload[jwt.roleClaim];
      if (!isRole(role))
        return anonymous(
          address,
          `the token's "${jwt.roleClaim}" claim must be viewer, operator or admin, got ${JSON.stringify(role ?? null)}`,
        );
      const subject = typeof payload.sub === "string" ? payload.sub : "unknown";
      return { kind: "jwt", role, id: `jwt:${subject}`, label: subject };
    },
    async describe() {
      if (mode === "off")
        return "auth is off (AUTH=off, unsafe): every client that reaches the port may do everything";
      if (await required()) return `auth is on: ${jwt ? "API keys and JWTs" : "API keys"}`;
      return "auth is off because the server is local and no API key exists (npm run keys -- create --role admin turns it on)";
    },
  };
}
