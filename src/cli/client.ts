/**
 * The CLI's side of the GraphQL API: requests over HTTP, and run events over graphql-ws
 * (WebSocket) or Server-Sent Events. The key, when given, travels as `Authorization: Bearer`
 * on every request, and in the WebSocket's connection parameters.
 */
import { createClient as createSseClient } from "graphql-sse";
import { createClient as createWsClient } from "graphql-ws";
import WebSocket from "ws";

/** A failure of a command; the message is what the user reads, `exitCode` what the shell sees. */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly code: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  /** The server's GraphQL endpoint. @default "http://127.0.0.1:4000/graphql" */
  readonly url: string;
  /** Sent as `Authorization: Bearer <key>`. */
  readonly key?: string | undefined;
}

/** One error of a GraphQL answer. */
export interface GraphQLErrorBody {
  readonly message: string;
  readonly path?: readonly (string | number)[];
  readonly extensions?: { readonly code?: string };
}

/** A GraphQL answer with errors. */
export class GraphQLRequestError extends CliError {
  constructor(readonly errors: readonly GraphQLErrorBody[]) {
    super(errors.map((e) => e.message).join("; "), errors[0]?.extensions?.code ?? "GRAPHQL_ERROR");
  }
}

export type Transport = "ws" | "sse";

export interface Client {
  readonly url: string;
  request<T>(query: string, variables?: Record<string, unknown>): Promise<T>;
  /** The results of a subscription, until it completes. */
  subscribe<T>(
    query: string,
    variables: Record<string, unknown>,
    transport: Transport,
  ): AsyncIterable<T>;
}

function unreachable(url: string, error: unknown): CliError {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  // graphql-ws rejects with the socket's CloseEvent, which has a code and no message.
  const closed = error as { code?: number; reason?: string };
  const why =
    cause?.code ??
    cause?.message ??
    (error instanceof Error ? error.message : undefined) ??
    `connection closed with code ${closed.code}${closed.reason ? `: ${closed.reason}` : ""}`;
  return new CliError(
    `cannot reach the server at ${url} (${why}): is it running? (npm start, or --url)`,
    "SERVER_UNREACHABLE",
  );
}

/** A client of one server. */
export function createClient(options: ClientOptions): Client {
  const { url, key } = options;
  const auth: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
  return {
    url,
    async request<T>(query: string, variables: Record<string, unknown> = {}) {
      let response: Response;
      try {
        response = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json", ...auth },
          body: JSON.stringify({ query, variables }),
        });
      } catch (error) {
        throw unreachable(url, error);
      }
      const text = await response.text();
      let body: { data?: T; errors?: GraphQLErrorBody[] };
      try {
        body = JSON.parse(text);
      } catch {
        throw new CliError(
          `the server at ${url} answered HTTP ${response.status} without GraphQL: ${text.slice(0, 200)}`,
          "BAD_RESPONSE",
        );
      }
      if (body.errors?.length) throw new GraphQLRequestError(body.errors);
      if (!body.data) throw new CliError(`the server at ${url} answered no data`, "BAD_RESPONSE");
      return body.data;
    },
    subscribe<T>(query: string, variables: Record<string, unknown>, transport: Transport) {
      const results =
        transport === "ws"
          ? createWsClient({
              url: url.replace(/^http/, "ws"),
              webSocketImpl: WebSocket,
              connectionParams: auth,
              lazy: true,
              retryAttempts: 0,
            }).iterate<T>({ query, variables })
          : createSseClient({ url, headers: auth, singleConnection: false }).iterate<T>({
              query,
              variables,
            });
      return (async function* () {
        try {
          for await (const result of results) {
            if (result.errors?.length)
              throw new GraphQLRequestError(result.errors as GraphQLErrorBody[]);
            yield result.data as T;
          }
        } catch (error) {
          if (error instanceof CliError) throw error;
          throw unreachable(url, error);
        }
      })();
    },
  };
}
