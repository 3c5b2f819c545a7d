/**
 * Optional JWT verification with @graphql-yoga/plugin-jwt: an HS256 shared secret
 * (JWT_SECRET) or the RS256 keys of a JWKS URL (JWT_JWKS_URL), checked for issuer and
 * audience when set. Only a bearer token that is not an API key is handed to the plugin; an
 * invalid one is refused by it (401), and auth.ts maps the verified payload's role claim.
 */
import {
  createInlineSigningKeyProvider,
  createRemoteJwksSigningKeyProvider,
  type ExtractTokenFunction,
  type GetSigningKeyFunction,
  useJWT,
} from "@graphql-yoga/plugin-jwt";
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

export function useJwtVerification(config: JwtConfig): Plugin {
  const providers: GetSigningKeyFunction[] = [];
  if (config.secret) providers.push(createInlineSigningKeyProvider(config.secret));
  if (config.jwksUrl)
    providers.push(
      createRemoteJwksSigningKeyProvider({ jwksUri: config.jwksUrl, cache: true, timeout: 5000 }),
    );
  return useJWT({
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
}

/** The verified payload the plugin put in a context, if any. */
export function jwtPayloadOf(context: Record<string, unknown>): unknown {
  const field = context[JWT_CONTEXT_FIELD] as { payload?: unknown } | undefined;
  return field?.payload;
}
