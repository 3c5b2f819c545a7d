/**
 * GraphQL over HTTP to this server's /graphql, with the API key (kept in localStorage) sent as
 * `Authorization: Bearer <key>`. A server without keys configured ignores the header.
 */

const KEY_STORAGE = "pipelines.apiKey";

export const GRAPHQL_URL = new URL("/graphql", location.href).toString();

export function apiKey(): string {
  return localStorage.getItem(KEY_STORAGE) ?? "";
}

export function setApiKey(key: string): void {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

/** The headers that carry the key, for HTTP and SSE. */
export function authHeaders(): Record<string, string> {
  const key = apiKey();
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** A GraphQL error answer: its first message and `extensions.code`. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    message: string,
    readonly code: string,
    readonly errors: readonly { message: string; extensions?: { code?: string } }[] = [],
  ) {
    super(message);
  }
}

interface Answer<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** Runs an operation; resolves with its data or rejects with an ApiError. */
export async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(GRAPHQL_URL, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/graphql-response+json, application/json",
        ...authHeaders(),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch (error) {
    throw new ApiError(`server not reachable: ${String(error)}`, "NETWORK");
  }
  const body = (await response.json().catch(() => ({}))) as Answer<T>;
  if (body.errors?.length) {
    const [first] = body.errors;
    throw new ApiError(first!.message, first!.extensions?.code ?? "ERROR", body.errors);
  }
  if (!response.ok || !body.data) throw new ApiError(`HTTP ${response.status}`, "HTTP");
  return body.data;
}

/** What an error says to a user: "message (CODE)". */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}
