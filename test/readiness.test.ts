/**
 * Readiness and the answers clients get when the database stops accepting writes or
 * answering (a full disk, a read-only file, an outage): `/ready` answers 503 with the reason
 * (it writes, so a database that still reads is not "ready"), GraphQL answers
 * SERVICE_UNAVAILABLE with HTTP 503 and Retry-After; both recover when the database does.
 */
import { afterEach, expect, it } from "vitest";
import type { Store } from "../src/store/types.ts";
import { freshStore } from "./helpers/databases.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

let server: TestServer | undefined;
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await server?.close();
  await cleanup?.();
  server = undefined;
});

/** The store, except that writes (and, with `reads`, reads) fail with `error` while set. */
function failing(store: Store) {
  const state: { error: Error | null; reads: boolean } = { error: null, reads: false };
  const writes = new Set(["probe", "commit", "createRun", "createRuns", "createPipeline"]);
  const proxy = new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (state.error && (writes.has(String(key)) || state.reads))
          return Promise.reject(state.error);
        return value.apply(target, args);
      };
    },
  });
  return { state, store: proxy };
}

const readyOf = async (s: TestServer) => {
  const response = await s.app.yoga.fetch("http://localhost/ready");
  return {
    status: response.status,
    retryAfter: response.headers.get("retry-after"),
    body: (await response.json()) as Record<string, unknown>,
  };
};

it("says not ready while the database does not accept writes, with the reason, and ready again after", async () => {
  const fresh = await freshStore("sqlite");
  cleanup = fresh.cleanup;
  const { state, store } = failing(fresh.store);
  server = await startTestServer(store);
  expect(await readyOf(server)).toEqual({
    status: 200,
    retryAfter: null,
    body: { status: "ready", activeRuns: 0 },
  });
  state.error = Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });
  expect(await readyOf(server)).toEqual({
    status: 503,
    retryAfter: "1",
    body: { status: "unavailable", reason: "database: database or disk is full" },
  });
  state.error = null;
  expect((await readyOf(server)).status).toBe(200);
});

it("answers SERVICE_UNAVAILABLE with HTTP 503 and Retry-After while the database is away", async () => {
  const fresh = await freshStore("sqlite");
  cleanup = fresh.cleanup;
  const { state, store } = failing(fresh.store);
  server = await startTestServer(store);
  state.error = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), {
    code: "ECONNREFUSED",
  });
  state.reads = true;
  const response = await server.app.yoga.fetch("http://localhost/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ query: "{ pipelines(first: 1) { edges { node { id } } } }" }),
  });
  expect(response.status).toBe(503);
  expect(response.headers.get("retry-after")).toBe("1");
  const body = (await response.json()) as { errors: { message: string; extensions: unknown }[] };
  expect(body.errors.map((e) => [e.message, e.extensions])).toEqual([
    ["the database is unavailable; retry shortly", { code: "SERVICE_UNAVAILABLE" }],
  ]);
  state.error = null;
});
