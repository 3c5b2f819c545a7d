/**
 * Optional JWT verification with @graphql-yoga/plugin-jwt: an HS256 shared secret
 * (JWT_SECRET) or the RS256 keys of a JWKS URL (JWT_JWKS_URL), checked for issuer and
 * audience when set. Only a bearer token that is not an API key is handed to the plugin; an
 * invalid one is refused by it, and auth.ts maps the verified payload's role claim.
 *
 * The plugin's refusals carry no code (yoga then reports GRAPHQL_VALIDATION_FAILED), a token
 * that does not decode answers 400, and a key id the JWKS lacks a plain Error (a 500): every
 * one of them becomes UNAUTHENTICATED (401) here, with the expiry when that is the reason.
 */
import {
  createInlineSigningKeyProvider,
  createRemoteJwksSigningKeyProvider,
  type ExtractTokenFunction,
  type GetSigningKeyFunction,
  useJWT,
} from "@graphql-yoga/plugin-jwt";
import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { JwtConfig } from "../config.ts";
import { looksLikeApiKey } from "../domain/api-keys.ts";

/** Where the verified payload lands in the context. */
export const JWT_CONTEXT_FIELD = "jwt";

/** The token of `Bearer <token>`, unless it is an API key (those are auth.ts's). */
function bearerToken(value: unknown): { token: string } | undefined {
  const match = typeof value === "string" ? /^Bearer\s+(\S+)\s*$/i.exec(value) : null;
  return match && !looksLikeApiKey(match[1]!) ? { token: match[1]! } : undefined;
}

const fromHeader: ExtractTokenFunction = ({ request }) =>
  bearerToken((request as Request | undefined)?.headers?.get("authorization"));
const fromConnectionParams: ExtractTokenFunction = ({ serverContext }) =>
  bearerToken(
    (serverContext as { connectionParams?: Record<string, unknown> })?.connectionParams
      ?.authorization,
  );

/** Why a token was refused, as far as its unverified claims tell (never trusted, only shown). */
function refusalOf(token: string | undefined): GraphQLError {
  let reason = "this token could not be verified";
  try {
    const claims = JSON.parse(Buffer.from(token?.split(".")[1] ?? "", "base64url").toString());
    if (typeof claims?.exp === "number" && claims.exp * 1000 <= Date.now())
      reason = `this token expired at ${new Date(claims.exp * 1000).toISOString()}`;
  } catch {
    // Not a JWT at all: the plain reason.
  }
  return new GraphQLError(reason, {
    extensions: { code: "UNAUTHENTICATED", http: { status: 401 } },
  });
}

/** The token a request or a graphql-ws context carries, for the refusal's reason. */
function tokenOf(payload: Record<string, unknown>): string | undefined {
  const context = (payload.context ?? payload.serverContext ?? {}) as Record<string, unknown>;
  const request = (payload.request ?? context.request) as Request | undefined;
  const lookups = [
    request?.headers?.get("authorization"),
    (context.connectionParams as Record<string, unknown> | undefined)?.authorization,
  ];
  return lookups.map(bearerToken).find(Boolean)?.token;
}

/** The plugin's request hooks, with every refusal turned into UNAUTHENTICATED. */
function withUnauthenticatedCode(plugin: Plugin): Plugin {
  const wrapped = { ...plugin } as Record<string, unknown>;
  for (const hook of ["onRequestParse", "onContextBuilding"] as const) {
    const inner = plugin[hook] as ((payload: never) => unknown) | undefined;
    if (!inner) continue;
    wrapped[hook] = async (payload: Record<string, unknown>) => {
      try {
        return await inner(payload as never);
      } catch {
        throw refusalOf(tokenOf(payload));
      }
    };
  }
  return wrapped as Plugin;
}

export function useJwtVerification(config: JwtConfig): Plugin {
  const providers: GetSigningKeyFunction[] = [];
  if (config.secret) providers.push(createInlineSigningKeyProvider(config.secret));
  if (config.jwksUrl)
    providers.push(
      createRemoteJwksSigningKeyProvider({ jwksUri: config.jwksUrl, cache: true, timeout: 5000 }),
    );
  const plugin = useJWT({
    signingKeyProviders: providers as [GetSigningKeyFunction, ...GetSigningKeyFunction[]],
    tokenLookupLocations: [fromHeader, fromConnectionParams],
    tokenVerification: {
      algorithms: config.secret ? ["HS256"] : ["RS256"],
      ...(config.issuer ? { issuer: config.issuer } : {}),
      ...(config.audience ? { audience: config.audience } : {}),
    },
    // A request without a token is auth.ts's to judge (an API key, or anonymous).
    reject: { missingToken: false, invalidToken: true },
    extendContext: JWT_CONTEXT_FIELD,
  }) as Plugin;
  return withUnauthenticatedCode(plugin);
}

/** The verified payload the plugin put in a context, if any. */
export function jwtPayloadOf(context: Record<string, unknown>): unknown {
  const field = context[JWT_CONTEXT_FIELD] as { payload?: unknown } | undefined;
  return field?.payload;
}
