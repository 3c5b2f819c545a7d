/**
 * Security through the server: every root field has a role, the role matrix over all of
 * them, expired and revoked keys, CSRF, hostile documents, rate limits, secrets never shown.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { getNamedType, isObjectType } from "graphql";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { ROLES, type Role, roleAllows } from "../src/domain/access.ts";
import { generateApiKey } from "../src/domain/api-keys.ts";
import { schema } from "../src/schema/index.ts";
import { MemoryStore } from "../src/store/memory.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { waitFor } from "./helpers/wait.ts";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

type Body = {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: { code?: string } }[];
};

async function post(
  query: string,
  key?: string,
  variables?: unknown,
  extra: Record<string, string> = {},
) {
  const response = await server!.app.yoga.fetch("http://localhost/graphql", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...extra,
    },
    body: JSON.stringify({ query, variables }),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Body,
  };
}

async function keyFor(store: MemoryStore, role: Role, expiresAt: Date | null = null) {
  const made = generateApiKey(role, `${role} key`, expiresAt);
  await store.admin.createApiKey(made.record);
  return made;
}

/** One call of each root field, and the role it needs. */
const ROOT_CALLS: Record<string, { doc: string; needs: Role }> = {
  pipelines: { doc: "query { pipelines { edges { node { id } } } }", needs: "viewer" },
  pipeline: { doc: 'query { pipeline(id: "x") { id } }', needs: "viewer" },
  run: { doc: 'query { run(id: "x") { id } }', needs: "viewer" },
  runs: { doc: "query { runs { edges { node { id } } } }", needs: "viewer" },
  viewer: { doc: "query { viewer { kind role } }", needs: "viewer" },
  apiKeys: { doc: "query { apiKeys { id } }", needs: "admin" },
  secrets: { doc: "query { secrets { name } }", needs: "admin" },
  createPipeline: {
    doc: 'mutation { createPipeline(input: { name: "m", nodes: [{ id: "t", type: TRIGGER }], edges: [] }) { id } }',
    needs: "admin",
  },
  updatePipeline: {
    doc: 'mutation { updatePipeline(id: "x", input: { name: "m", nodes: [{ id: "t", type: TRIGGER }], edges: [] }) { id } }',
    needs: "admin",
  },
  deletePipeline: { doc: 'mutation { deletePipeline(id: "x") }', needs: "admin" },
  validatePipeline: {
    doc: 'mutation { validatePipeline(definition: { name: "m", nodes: [{ id: "t", type: TRIGGER }], edges: [] }) { valid } }',
    needs: "operator",
  },
  runPipeline: { doc: 'mutation { runPipeline(id: "x") { id } }', needs: "operator" },
  rerunRun: { doc: 'mutation { rerunRun(id: "x") { id } }', needs: "operator" },
  cancelRun: { doc: 'mutation { cancelRun(id: "x") { id } }', needs: "operator" },
  resetBreaker: {
    doc: 'mutation { resetBreaker(pipelineId: "x", nodeId: "n") { state } }',
    needs: "operator",
  },
  createApiKey: {
    doc: 'mutation { createApiKey(role: viewer, label: "v") { key } }',
    needs: "admin",
  },
  revokeApiKey: { doc: 'mutation { revokeApiKey(id: "x") { id } }', needs: "admin" },
  setSecret: { doc: 'mutation { setSecret(name: "S", value: "v") { name } }', needs: "admin" },
  deleteSecret: { doc: 'mutation { deleteSecret(name: "S") }', needs: "admin" },
  runEvents: { doc: 'subscription { runEvents(runId: "x") { seq } }', needs: "viewer" },
};

describe("roles", () => {
  it("gives every root field exactly one role, and the matrix names them all", () => {
    const fields = [
      schema.getQueryType()!,
      schema.getMutationType()!,
      schema.getSubscriptionType()!,
    ].flatMap((type) =>
      Object.values(type.getFields()).map((field) => ({ type: type.name, field })),
    );
    const missing = fields.filter(({ field }) => {
      const scopes = (field.extensions.pothosOptions as { authScopes?: object }).authScopes;
      return !scopes || Object.keys(scopes).length !== 1;
    });
    expect(missing.map(({ type, field }) => `${type}.${field.name}`)).toEqual([]);
    expect(fields.map(({ field }) => field.name).sort()).toEqual(Object.keys(ROOT_CALLS).sort());
    expect(isObjectType(getNamedType(schema.getQueryType()!))).toBe(true);
  });

  it("allows and refuses each root field by role (matrix: 20 fields × 4 callers)", async () => {
    const store = new MemoryStore();
    const keys = Object.fromEntries(
      await Promise.all(ROLES.map(async (role) => [role, (await keyFor(store, role)).key])),
    ) as Record<Role, string>;
    server = await startTestServer(store, { SECRETS_KEY: "11".repeat(32) });
    let checked = 0;
    for (const [name, { doc, needs }] of Object.entries(ROOT_CALLS)) {
      for (const caller of [undefined, ...ROLES] as const) {
        const { status, body } = await post(doc, caller ? keys[caller] : undefined);
        const codes = (body.errors ?? []).map((e) => e.extensions?.code);
        if (!caller) {
          expect([name, status, codes]).toEqual([name, 401, ["UNAUTHENTICATED"]]);
        } else if (!roleAllows(caller, needs)) {
          expect([name, caller, status, codes]).toEqual([name, caller, 403, ["FORBIDDEN"]]);
        } else {
          expect([
            name,
            caller,
            codes.filter((c) => c === "FORBIDDEN" || c === "UNAUTHENTICATED"),
          ]).toEqual([name, caller, []]);
          expect(status).toBeLessThan(500);
        }
        checked++;
      }
    }
    expect(checked).toBe(80);
  });

  it("refuses an expired key and a revoked one, naming why", async () => {
    const store = new MemoryStore();
    const admin = await keyFor(store, "admin");
    const expired = await keyFor(store, "viewer", new Date(Date.now() + 60_000));
    // A local server with no usable key left turns auth off: one key stays.
    await keyFor(store, "operator");
    server = await startTestServer(store);
    expect((await post("{ viewer { role } }", expired.key)).body.data).toEqual({
      viewer: { role: "viewer" },
    });
    // Expiry is read on every request: move it into the past.
    const past = { ...expired.record, expiresAt: new Date(Date.now() - 1000) };
    await store.admin.createApiKey(past); // replaces the record of the same id
    const refused = await post("{ viewer { role } }", expired.key);
    expect([refused.status, refused.body.errors?.[0]?.extensions?.code]).toEqual([
      401,
      "UNAUTHENTICATED",
    ]);
    expect(refused.body.errors?.[0]?.message).toMatch(/^API key psk_\S+… expired at /);
    const revoke = await post(
      `mutation { revokeApiKey(id: "${admin.record.id}") { revokedAt } }`,
      admin.key,
    );
    expect(revoke.body.errors).toBeUndefined();
    const after = await post("{ viewer { role } }", admin.key);
    expect(after.body.errors?.[0]?.message).toMatch(/was revoked at/);
  });
});

describe("limits", () => {
  it("refuses cross-site simple requests: a text/plain POST and a GET without a header", async () => {
    server = await startTestServer(new MemoryStore());
    const plain = await server.app.yoga.fetch("http://localhost/graphql", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ query: 'mutation { deletePipeline(id: "x") }' }),
    });
    const get = await server.app.yoga.fetch(
      `http://localhost/graphql?query=${encodeURIComponent('mutation { deletePipeline(id: "x") }')}`,
    );
    for (const response of [plain, get]) {
      const body = (await response.json()) as Body;
      expect([response.status, body.errors?.[0]?.extensions?.code]).toEqual([
        403,
        "CSRF_HEADER_REQUIRED",
      ]);
    }
  });

  it("answers hostile documents with 4xx-class codes, never a 5xx", async () => {
    server = await startTestServer(new MemoryStore());
    const level = "runs { edges { node { pipeline { ";
    const deep = `{ pipelines { edges { node { ${level.repeat(6)} id ${"} } } } ".repeat(6)} } } } }`;
    const cases: [string, string, unknown?][] = [
      [
        `{ ${Array.from({ length: 40 }, (_, i) => `a${i}: pipelines { pageInfo { hasNextPage } }`).join(" ")} }`,
        "TOO_MANY_ALIASES",
      ],
      [deep, "QUERY_TOO_DEEP"],
      [
        `{ pipelines { pageInfo { hasNextPage ${"@include(if: true) ".repeat(60)} } } }`,
        "TOO_MANY_DIRECTIVES",
      ],
      [
        `{ pipelines(first: 1) { pageInfo { hasNextPage } } ${" __typename".repeat(120_000)} }`,
        "TOO_MANY_TOKENS",
      ],
      [`${"{ a: __typename ".repeat(1)}${"[".repeat(100_000)} }`, "GRAPHQL_PARSE_FAILED"],
      [
        "mutation($i: PipelineInput!) { createPipeline(input: $i) { id } }",
        "BAD_USER_INPUT",
        {
          i: {
            name: "x".repeat(10),
            nodes: [{ id: "t", type: "TRIGGER", config: { big: "y".repeat(200_000) } }],
            edges: [],
          },
        },
      ],
    ];
    let count = 0;
    for (const [query, code, variables] of cases) {
      const { status, body } = await post(query, undefined, variables);
      expect(status).toBeLessThan(500);
      const codes = (body.errors ?? []).map((e) => e.extensions?.code);
      expect(codes.length).toBeGreaterThan(0);
      expect(codes.includes("INTERNAL_SERVER_ERROR")).toBe(false);
      // Each refusal is there (a deep query is also a costly one: armor reports both).
      if (code !== "BAD_USER_INPUT") expect(codes).toContain(code);
      count++;
    }
    // Batching: an array body is not accepted.
    const batch = await server.app.yoga.fetch("http://localhost/graphql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(Array.from({ length: 50 }, () => ({ query: "{ __typename }" }))),
    });
    expect(batch.status).toBeGreaterThanOrEqual(400);
    expect(batch.status).toBeLessThan(500);
    expect(count + 1).toBe(7);
  });

  it("answers RATE_LIMITED with 429 and Retry-After past the writes budget", async () => {
    server = await startTestServer(new MemoryStore(), { RATE_LIMIT_WRITES: "3" });
    const doc = 'mutation { deletePipeline(id: "x") }';
    for (let i = 0; i < 3; i++)
      expect((await post(doc)).body.data).toEqual({ deletePipeline: false });
    const refused = await post(doc);
    expect([refused.status, refused.body.errors?.[0]?.extensions?.code]).toEqual([
      429,
      "RATE_LIMITED",
    ]);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers.get("retry-after"))).toBeLessThanOrEqual(60);
  });

  it("refuses createPipeline at MAX_PIPELINES", async () => {
    server = await startTestServer(new MemoryStore(), { MAX_PIPELINES: "1" });
    const doc = ROOT_CALLS.createPipeline!.doc;
    expect((await post(doc)).body.errors).toBeUndefined();
    expect((await post(doc)).body.errors?.[0]?.extensions?.code).toBe("LIMIT_REACHED");
  });
});

describe("secrets", () => {
  it("sends a secret in an http header and never shows its value", async () => {
    const value = "s3cr3t-VALUE-0123456789";
    const seen: string[] = [];
    const echo = createServer((req, res) => {
      seen.push(String(req.headers.authorization));
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ youSent: req.headers.authorization }));
    });
    await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
    const port = (echo.address() as AddressInfo).port;
    const logs: string[] = [];
    const store = new MemoryStore();
    try {
      const logger = pino({ level: "trace" }, { write: (line: string) => void logs.push(line) });
      server = await startTestServer(store, { SECRETS_KEY: "ab".repeat(32) }, { logger });
      const set = await post(
        'mutation($v: String!) { setSecret(name: "TOKEN", value: $v) { name } }',
        undefined,
        { v: value },
      );
      expect(set.body).toEqual({ data: { setSecret: { name: "TOKEN" } } });
      const created = await post(
        `mutation($i: PipelineInput!) { createPipeline(input: $i) { id } }`,
        undefined,
        {
          i: {
            name: "s",
            nodes: [
              { id: "t", type: "TRIGGER" },
              {
                id: "h",
                type: "ACTION",
                retry: { maxAttempts: 1 },
                config: {
                  action: "http",
                  url: `http://127.0.0.1:${port}/x`,
                  headers: { authorization: "Bearer {{secrets.TOKEN}}" },
                },
              },
            ],
            edges: [{ source: "t", target: "h" }],
          },
        },
      );
      const pipelineId = (created.body.data!.createPipeline as { id: string }).id;
      const run = await post(`mutation { runPipeline(id: "${pipelineId}") { id } }`);
      const runId = (run.body.data!.runPipeline as { id: string }).id;
      const q = `{ run(id: "${runId}") { status error nodeRuns { output error } events { type data } } secrets { name } }`;
      await waitFor(
        "the run to fail",
        async () =>
          ((await post(q)).body.data?.run as { status?: string } | undefined)?.status === "FAILED",
        { timeoutMs: 15_000 },
      );
      const answer = JSON.stringify((await post(q)).body);
      expect(seen).toEqual([`Bearer ${value}`]);
      expect(answer).not.toContain(value);
      expect(answer).toContain("[secret]");
      const stored = JSON.stringify([
        await store.getEvents(runId, 0),
        await store.getNodeRuns([runId]),
        await store.admin.listSecrets(),
        await store.admin.getSecrets(["TOKEN"]),
      ]);
      expect(stored).not.toContain(value);
      expect(logs.join("\n")).not.toContain(value);
    } finally {
      echo.close();
    }
  });
});
