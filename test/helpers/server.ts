/**
 * A real server for integration tests (buildApp().start(0)), GraphQL over yoga.fetch with the
 * typed documents from codegen, and a real graphql-ws client.
 */
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";
import { createClient } from "graphql-ws";
import pino from "pino";
import WebSocket from "ws";
import { type Config, loadConfig } from "../../src/config.ts";
import { type App, buildApp } from "../../src/server/app.ts";
import { createServices, type ServiceOverrides } from "../../src/services.ts";
import type { Store } from "../../src/store/types.ts";

export interface TestServer {
  readonly app: App;
  readonly url: string;
  readonly wsUrl: string;
  /** Runs an operation; resolves with data or rejects with the first error. */
  gql<R, V>(document: TypedDocumentNode<R, V>, variables?: V): Promise<R>;
  /** Runs an operation; resolves with the whole response body. */
  raw<R, V>(
    document: TypedDocumentNode<R, V>,
    variables?: V,
  ): Promise<{ data?: R | null; errors?: GraphQLErrorBody[] }>;
  close(): Promise<void>;
}

export interface GraphQLErrorBody {
  message: string;
  extensions?: { code?: string; [key: string]: unknown };
  path?: (string | number)[];
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    DATABASE_URL: "file::memory:",
    LOG_LEVEL: "silent",
    HTTP_ACTION_ALLOWLIST: "127.0.0.1,localhost",
    ...env,
  });
}

export async function startTestServer(
  store: Store,
  env: Record<string, string> = {},
  overrides: ServiceOverrides = {},
): Promise<TestServer> {
  const config = testConfig(env);
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const app = buildApp(config, await createServices(config, { store, logger, ...overrides }));
  const { url } = await app.start(0, "127.0.0.1");
  const raw = async <R, V>(document: TypedDocumentNode<R, V>, variables?: V) => {
    const response = await app.yoga.fetch("http://localhost/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ query: print(document), variables }),
    });
    return (await response.json()) as { data?: R | null; errors?: GraphQLErrorBody[] };
  };
  return {
    app,
    url,
    wsUrl: url.replace(/^http/, "ws"),
    raw,
    async gql(document, variables) {
      const body = await raw(document, variables);
      if (body.errors?.length) {
        const [first] = body.errors;
        throw Object.assign(new Error(`${first!.message} (${first!.extensions?.code})`), {
          errors: body.errors,
        });
      }
      return body.data!;
    },
    close: () => app.stop(200),
  };
}

/** Collects every event of a subscription until it completes (or `timeoutMs`). */
export function subscribeAll<R, V extends Record<string, unknown>>(
  wsUrl: string,
  document: TypedDocumentNode<R, V>,
  variables: V,
  timeoutMs = 15_000,
): { events: R[]; done: Promise<R[]>; dispose: () => void } {
  const client = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
  });
  const events: R[] = [];
  let dispose = () => {};
  const done = new Promise<R[]>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `subscription did not complete in ${timeoutMs} ms; got ${events.length} events`,
          ),
        ),
      timeoutMs,
    );
    dispose = client.subscribe<R>(
      { query: print(document), variables },
      {
        next: (value) => {
          if (value.errors) reject(new Error(value.errors.map((e) => e.message).join("; ")));
          else events.push(value.data as R);
        },
        error: (error) => {
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
        },
        complete: () => {
          clearTimeout(timer);
          resolve(events);
        },
      },
    );
  }).finally(() => void client.dispose());
  return { events, done, dispose: () => dispose() };
}
