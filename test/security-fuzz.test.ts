/**
 * A seeded fuzz of hostile requests: valid calls of every kind mangled at random (cut, nested,
 * aliased, repeated, garbage spliced in, huge or deep variables, odd bodies and methods). Every
 * answer is a 4xx-class refusal or a GraphQL answer with a stable code, never a 5xx and never
 * the masked internal error.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { MemoryStore } from "../src/store/memory.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

const SEED = 20261204;
const REQUESTS = 400;

/** mulberry32: small, seeded, the same sequence on every machine. */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BASES = [
  "query { pipelines(first: 5) { edges { cursor node { id name runs(first: 2) { edges { node { id status } } } } } pageInfo { hasNextPage endCursor } } }",
  'query { pipeline(id: "x") { id name nodes { id type } } }',
  'query { run(id: "x") { id status nodeRuns { nodeId status output } } }',
  "query { runs(status: [FAILED]) { edges { node { id } } } }",
  'mutation { createPipeline(input: { name: "f", nodes: [{ id: "t", type: TRIGGER }], edges: [] }) { id } }',
  'mutation { validatePipeline(definition: { name: "m", nodes: [{ id: "t", type: TRIGGER }, { id: "a", type: ACTION }], edges: [{ from: "t", to: "a" }] }) { valid errors { code message } } }',
  'mutation { runPipeline(id: "x") { id } }',
  'mutation { cancelRun(id: "x") { id } }',
  'mutation { rerunRun(id: "x", fromFailure: true) { id } }',
  'mutation { resetBreaker(pipelineId: "x", nodeId: "n") { state } }',
  "mutation($i: PipelineInput!) { createPipeline(input: $i) { id } }",
  "query { __schema { types { name fields { name } } } }",
];

const GARBAGE = [
  "{",
  "}",
  "(",
  ")",
  "[",
  "]",
  ":",
  "$",
  "@",
  "...",
  '"',
  "\\u0000",
  "#",
  "!",
  "=",
  "\u0000",
  "\uffff",
  "🦀",
  "query",
  "fragment F on Query { ...F }",
];

type Request = { method: string; headers: Record<string, string>; body?: string; url: string };

function hostile(next: () => number): Request {
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
  const count = (max: number) => 1 + Math.floor(next() * max);
  let query = pick(BASES);
  // Half the requests carry one mangling alone (so that it reaches the limit it aims at), the
  // others up to three on top of each other.
  const alone = next() < 0.5;
  const mutations = alone ? 1 : count(3);
  for (let m = 0; m < mutations; m++) {
    const at = Math.floor(next() * query.length);
    switch (alone ? 2 + Math.floor(next() * 6) : Math.floor(next() * 8)) {
      case 0: // cut anywhere
        query = query.slice(0, at);
        break;
      case 1: // garbage spliced in
        query = query.slice(0, at) + pick(GARBAGE).repeat(count(50)) + query.slice(at);
        break;
      case 2: // many aliases of one field
        query = `{ ${Array.from({ length: count(200) }, (_, i) => `a${i}: pipelines { pageInfo { hasNextPage } }`).join(" ")} }`;
        break;
      case 3: {
        // deep selections
        const depth = count(30);
        query = `{ pipelines { edges { node { ${"runs { edges { node { pipeline { ".repeat(depth)} id ${"} } } } ".repeat(depth)} } } } }`;
        break;
      }
      case 4: // directives piled up
        query = query.replace("{", `{ __typename ${"@include(if: true) ".repeat(count(200))}`);
        break;
      case 5: // many tokens
        query = query.replace("{", `{ ${"__typename ".repeat(count(4_000))}`);
        break;
      case 6: // fragments that spread each other
        query = `query { ...A } fragment A on Query { ...B } fragment B on Query { ...A ${"__typename ".repeat(count(5))}}`;
        break;
      default: // an unknown argument or field
        query = query.replace(
          "id",
          `id(${pick(["x: 1", "first: -1", "first: 99999999999", 'after: "%%%"'])})`,
        );
    }
  }
  const variables = pick<unknown>([
    undefined,
    { i: { name: "x".repeat(count(300_000)), nodes: [], edges: [] } },
    { i: deepArray(count(2_000)) },
    {
      i: {
        name: "n",
        nodes: Array.from({ length: count(3_000) }, (_, k) => ({ id: `n${k}`, type: "PARALLEL" })),
        edges: [],
      },
    },
    {
      i: {
        name: "n",
        nodes: [{ id: "t", type: "TRIGGER", config: nested(count(400)) }],
        edges: [],
      },
    },
    "not an object",
    [1, 2, 3],
  ]);
  const form = Math.floor(next() * 6);
  const url = "http://localhost/graphql";
  if (form === 0) {
    // A GET carrying a mutation or a huge query.
    return {
      method: "GET",
      headers: { "graphql-require-preflight": "1" },
      url: `${url}?query=${encodeURIComponent(query.slice(0, 20_000))}`,
    };
  }
  if (form === 1) {
    // A body that is not JSON, or JSON of the wrong shape.
    return {
      method: "POST",
      headers: { "content-type": "application/json" },
      url,
      body: pick([
        query,
        "{",
        "null",
        "[]",
        '{"query": 1}',
        `{"query": ${JSON.stringify(query)}, "variables": "x"}`,
        JSON.stringify(Array.from({ length: count(100) }, () => ({ query }))),
      ]),
    };
  }
  return {
    method: "POST",
    headers: { "content-type": "application/json" },
    url,
    body: JSON.stringify({ query, variables }),
  };
}

function deepArray(depth: number): unknown {
  let value: unknown = 1;
  for (let d = 0; d < depth; d++) value = [value];
  return value;
}

function nested(depth: number): unknown {
  let value: unknown = "leaf";
  for (let d = 0; d < depth; d++) value = { d: value };
  return value;
}

let server: TestServer;
beforeAll(async () => {
  // Without the per-minute budgets: every mutation reaches the parser, armor and resolvers.
  server = await startTestServer(new MemoryStore(), {
    RATE_LIMIT_RUNS: "0",
    RATE_LIMIT_WRITES: "0",
    // A low token limit: documents past it stay small, and the fuzz quick.
    MAX_QUERY_TOKENS: "2000",
  });
});
afterAll(async () => {
  await server?.close();
});

it(`answers ${REQUESTS} seeded hostile requests with 4xx-class refusals or coded errors, never a 5xx`, async () => {
  const next = random(SEED);
  const statuses = new Map<number, number>();
  const codes = new Map<string, number>();
  for (let n = 0; n < REQUESTS; n++) {
    const request = hostile(next);
    const response = await server.app.yoga.fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
    });
    const text = await response.text();
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    const where = `request ${n}: ${request.method} ${(request.body ?? request.url).slice(0, 200)}`;
    expect(response.status, where).toBeLessThan(500);
    let body: { errors?: { extensions?: { code?: string } }[] } | undefined;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    for (const error of body?.errors ?? []) {
      const code = error.extensions?.code ?? "(none)";
      codes.set(code, (codes.get(code) ?? 0) + 1);
      expect(code, where).not.toBe("INTERNAL_SERVER_ERROR");
      expect(code, where).not.toBe("(none)");
    }
  }
  console.log(
    `[measure] fuzz: ${REQUESTS} requests; statuses ${JSON.stringify(Object.fromEntries(statuses))}; codes ${JSON.stringify(Object.fromEntries(codes))}`,
  );
  // The fuzz reached the refusals it means to provoke.
  expect([...codes.keys()]).toEqual(
    expect.arrayContaining([
      "GRAPHQL_PARSE_FAILED",
      "GRAPHQL_VALIDATION_FAILED",
      "TOO_MANY_ALIASES",
      "TOO_MANY_TOKENS",
      "TOO_MANY_DIRECTIVES",
      "QUERY_TOO_DEEP",
      "CSRF_HEADER_REQUIRED",
    ]),
  );
}, 120_000);
