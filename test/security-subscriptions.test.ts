/**
 * Auth on subscriptions, over both transports, with auth on (an API key exists): graphql-ws
 * without a key, or with a bad one, closes with 4401; a viewer key streams a run to its end;
 * the (cap+1)th open subscription of a key is refused with LIMIT_REACHED and a closed one
 * gives its place back; SSE with a key in the header streams and without one answers 401.
 */
import { createClient } from "graphql-ws";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { Role } from "../src/domain/access.ts";
import { generateApiKey } from "../src/domain/api-keys.ts";
import { MemoryStore } from "../src/store/memory.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { waitFor } from "./helpers/wait.ts";

const CAP = 2;
const EVENTS = "subscription($runId: ID!) { runEvents(runId: $runId) { seq type } }";

let server: TestServer;
let keys: Record<Role, string>;
beforeEach(async () => {
  const store = new MemoryStore();
  keys = {} as Record<Role, string>;
  for (const role of ["viewer", "admin"] as const) {
    const made = generateApiKey(role, `${role} key`, null);
    await store.admin.createApiKey(made.record);
    keys[role] = made.key;
  }
  // A second viewer key: the cap is per key, so it still has its own places.
  const other = generateApiKey("viewer", "other viewer", null);
  await store.admin.createApiKey(other.record);
  keys.operator = other.key;
  server = await startTestServer(store, { MAX_SUBSCRIPTIONS_PER_KEY: String(CAP) });
});
afterEach(() => server.close());

async function post(query: string, key?: string, variables?: unknown) {
  const response = await server.app.yoga.fetch("http://localhost/graphql", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(key ? { authorization: `Bearer ${key}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  return {
    status: response.status,
    body: (await response.json()) as {
      data?: Record<string, { id: string }>;
      errors?: { extensions?: { code?: string } }[];
    },
  };
}

/** A run of a pipeline that waits (DELAY) until cancelled, or a quick one. */
async function startRun(kind: "waiting" | "quick"): Promise<string> {
  const nodes =
    kind === "waiting"
      ? '[{ id: "t", type: TRIGGER }, { id: "w", type: DELAY, config: { seconds: 600 } }]'
      : '[{ id: "t", type: TRIGGER }, { id: "w", type: PARALLEL }]';
  const created = await post(
    `mutation { createPipeline(input: { name: "${kind}", nodes: ${nodes}, edges: [{ source: "t", target: "w" }] }) { id } }`,
    keys.admin,
  );
  const run = await post(
    `mutation { runPipeline(id: "${created.body.data!.createPipeline!.id}") { id } }`,
    keys.admin,
  );
  return run.body.data!.runPipeline!.id;
}

interface Subscription {
  readonly types: string[];
  /** "complete", `error:<close code>` or `error:<GraphQL codes>`. */
  readonly ended: Promise<string>;
  dispose(): void;
}

function subscribe(runId: string, authorization?: string): Subscription {
  const client = createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    ...(authorization ? { connectionParams: { authorization } } : {}),
  });
  const types: string[] = [];
  let unsubscribe = () => {};
  const ended = new Promise<string>((resolve) => {
    unsubscribe = client.subscribe<{ runEvents: { type: string } }>(
      { query: EVENTS, variables: { runId } },
      {
        next: (value) => {
          if (value.errors)
            resolve(`error:${value.errors.map((e) => e.extensions?.code).join(",")}`);
          else types.push(value.data!.runEvents.type);
        },
        error: (error) =>
          resolve(
            Array.isArray(error)
              ? `error:${error.map((e) => e.extensions?.code).join(",")}`
              : `error:${(error as { code?: number }).code}`,
          ),
        complete: () => resolve("complete"),
      },
    );
  });
  return {
    types,
    ended: ended.finally(() => void client.dispose()),
    dispose: () => {
      unsubscribe();
      void client.dispose();
    },
  };
}

describe("graphql-ws with auth on", () => {
  it("closes a connection without a key, or with a bad one, with 4401", async () => {
    const runId = await startRun("quick");
    expect(await subscribe(runId).ended).toBe("error:4401");
    expect(await subscribe(runId, "Bearer psk_not-a-real-key").ended).toBe("error:4401");
    expect(await subscribe(runId, keys.viewer).ended).toBe("error:4401"); // no "Bearer "
  });

  it("streams a run to its terminal event for a viewer key", async () => {
    const runId = await startRun("quick");
    const viewer = subscribe(runId, `Bearer ${keys.viewer}`);
    expect(await viewer.ended).toBe("complete");
    expect(viewer.types).toEqual([
      "RUN_STARTED",
      "NODE_STARTED",
      "NODE_COMPLETED",
      "NODE_STARTED",
      "NODE_COMPLETED",
      "RUN_COMPLETED",
    ]);
  });

  it(`refuses open subscription number ${CAP + 1} of a key with LIMIT_REACHED, not another key's`, async () => {
    const runId = await startRun("waiting");
    const auth = `Bearer ${keys.viewer}`;
    const open = [subscribe(runId, auth), subscribe(runId, auth)];
    // Both are open once each has replayed the run's first event.
    await waitFor("both subscriptions to stream", () => open.every((s) => s.types.length > 0));
    expect(await subscribe(runId, auth).ended).toBe("error:LIMIT_REACHED");
    // Another key has its own places.
    const other = subscribe(runId, `Bearer ${keys.operator}`);
    await waitFor("the other key's subscription", () => other.types.length > 0);
    // A closed subscription gives its place back (the server notices the close by itself).
    open[0]!.dispose();
    const again = await waitFor("a place to be free again", async () => {
      const attempt = subscribe(runId, auth);
      const first = await Promise.race([
        attempt.ended,
        waitFor("an event", () => attempt.types.length > 0 && "streaming"),
      ]);
      if (first === "streaming") return attempt;
      expect(first).toBe("error:LIMIT_REACHED");
      return undefined;
    });
    await post(`mutation { cancelRun(id: "${runId}") { status } }`, keys.admin);
    expect(await again.ended).toBe("complete");
    expect(again.types.at(-1)).toBe("RUN_CANCELLED");
    for (const s of [open[1]!, other]) expect(await s.ended).toBe("complete");
  });
});

describe("SSE with auth on", () => {
  const sse = (runId: string, key?: string) =>
    fetch(server.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "text/event-stream",
        ...(key ? { authorization: `Bearer ${key}` } : {}),
      },
      body: JSON.stringify({ query: EVENTS, variables: { runId } }),
    });

  it("streams with a key in the header", async () => {
    const runId = await startRun("quick");
    const response = await sse(runId, keys.viewer);
    expect([response.status, response.headers.get("content-type")]).toEqual([
      200,
      expect.stringContaining("text/event-stream"),
    ]);
    const text = await response.text();
    const types = text
      .split("\n")
      .filter((line) => line.startsWith("data: ") && line.includes("runEvents"))
      .map((line) => JSON.parse(line.slice(6)).data.runEvents.type);
    expect([types[0], types.at(-1), types.length]).toEqual(["RUN_STARTED", "RUN_COMPLETED", 6]);
  });

  it("answers 401 UNAUTHENTICATED without a key and with a bad one", async () => {
    const runId = await startRun("quick");
    for (const key of [undefined, "psk_not-a-real-key"]) {
      const response = await sse(runId, key);
      const text = await response.text();
      expect(response.status).toBe(401);
      expect(text).toContain('"code":"UNAUTHENTICATED"');
      expect(text).not.toContain('"data":{"runEvents"');
    }
  });
});
