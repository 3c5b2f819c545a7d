import { getIntrospectionQuery } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CreatePipelineDocument,
  ListPipelinesDocument,
  RunPipelineDocument,
} from "./generated/graphql.ts";
import { freshStore } from "./helpers/databases.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

/** Bad input never gives a 5xx: each case gets a clear error with a stable code, and nothing is stored. */
describe("bad input", () => {
  let server: TestServer;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const fresh = await freshStore("sqlite");
    cleanup = fresh.cleanup;
    server = await startTestServer(fresh.store, {
      MAX_PIPELINE_NODES: "50",
      MAX_REQUEST_BYTES: "200000",
      MAX_JSON_DEPTH: "10",
    });
  });
  afterAll(async () => {
    await server.close();
    await cleanup();
  });

  async function post(body: string, headers: Record<string, string> = {}) {
    const response = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json", ...headers },
      body,
    });
    const text = await response.text();
    let json:
      | { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] }
      | undefined;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, json, text };
  }

  async function pipelineCount(): Promise<number> {
    const { pipelines } = await server.gql(ListPipelinesDocument, { first: 100 });
    return pipelines.edges.length;
  }

  const createMutation =
    "mutation($input: PipelineInput!) { createPipeline(input: $input) { id } }";

  it("refuses a body that is not JSON", async () => {
    const { status, json } = await post("{ this is not json");
    expect(status).toBeLessThan(500);
    expect(status).toBe(400);
    expect(json?.errors?.[0]?.message).toMatch(/JSON/i);
  });

  it("refuses a query that does not parse, with GRAPHQL_PARSE_FAILED", async () => {
    // GraphQL over HTTP: 200 for clients that accept application/json, 400 for the newer media type.
    const legacy = await post(JSON.stringify({ query: "mutation { createPipeline(" }));
    expect(legacy.status).toBe(200);
    expect(legacy.json?.errors?.[0]?.extensions?.code).toBe("GRAPHQL_PARSE_FAILED");
    const modern = await post(JSON.stringify({ query: "mutation { createPipeline(" }), {
      accept: "application/graphql-response+json",
    });
    expect(modern.status).toBe(400);
    expect(modern.json?.errors?.[0]?.extensions?.code).toBe("GRAPHQL_PARSE_FAILED");
  });

  it("refuses unknown fields and enum values", async () => {
    const field = await post(JSON.stringify({ query: "{ pipelines { nope } }" }));
    expect(field.status).toBe(200);
    expect(field.json?.errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");

    const before = await pipelineCount();
    const badEnum = await post(
      JSON.stringify({
        query: createMutation,
        variables: { input: { name: "x", nodes: [{ id: "a", type: "LAMBDA" }] } },
      }),
    );
    expect(badEnum.status).toBe(200);
    // Variables are checked against their types with the query: yoga reports them as validation.
    expect(badEnum.json?.errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    expect(badEnum.json?.errors?.[0]?.message).toContain(
      'Value "LAMBDA" does not exist in "NodeType" enum',
    );
    const literal = await post(
      JSON.stringify({
        query:
          'mutation { createPipeline(input: {name: "x", nodes: [{id: "a", type: LAMBDA}]}) { id } }',
      }),
    );
    expect(literal.status).toBe(200);
    expect(literal.json?.errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    expect(await pipelineCount()).toBe(before);
  });

  it("refuses wrongly typed variables", async () => {
    const { status, json } = await post(
      JSON.stringify({ query: createMutation, variables: { input: { name: 42, nodes: "many" } } }),
    );
    expect(status).toBe(200);
    expect(json?.errors?.map((e) => [e.message, e.extensions?.code])).toEqual([
      ["String cannot represent a non string value: 42", "GRAPHQL_VALIDATION_FAILED"],
      ['Expected type "PipelineNodeInput" to be an object.', "GRAPHQL_VALIDATION_FAILED"],
    ]);
  });

  it("refuses a definition over the node limit with PIPELINE_TOO_LARGE", async () => {
    const before = await pipelineCount();
    const nodes = Array.from({ length: 51 }, (_, i) => ({
      id: `n${i}`,
      type: i === 0 ? ("TRIGGER" as const) : ("PARALLEL" as const),
    }));
    const body = await server.raw(CreatePipelineDocument, { input: { name: "big", nodes } });
    expect(body.data).toBeNull();
    expect(body.errors?.[0]?.extensions?.code).toBe("PIPELINE_TOO_LARGE");
    expect(body.errors?.[0]?.message).toBe("51 nodes; the limit is 50");
    expect(await pipelineCount()).toBe(before);
  });

  it("refuses JSON nested deeper than the limit with JSON_TOO_DEEP", async () => {
    let deep: unknown = "bottom";
    for (let i = 0; i < 40; i++) deep = { d: deep };
    const before = await pipelineCount();
    const body = await server.raw(CreatePipelineDocument, {
      input: { name: "deep", nodes: [{ id: "t", type: "TRIGGER", config: { deep } }] },
    });
    expect(body.errors?.[0]?.extensions?.code).toBe("JSON_TOO_DEEP");
    expect(body.errors?.[0]?.message).toBe('config of node "t" is nested deeper than 10 levels');
    expect(await pipelineCount()).toBe(before);

    const { createPipeline } = await server.gql(CreatePipelineDocument, {
      input: { name: "ok", nodes: [{ id: "t", type: "TRIGGER" }] },
    });
    const run = await server.raw(RunPipelineDocument, {
      id: createPipeline.id,
      triggerData: { deep },
    });
    expect(run.errors?.[0]?.extensions?.code).toBe("JSON_TOO_DEEP");
    expect(run.errors?.[0]?.message).toBe("triggerData is nested deeper than 10 levels");
  });

  it("answers 413 to a body over MAX_REQUEST_BYTES, and 411 to one without a length", async () => {
    const huge = JSON.stringify({
      query: createMutation,
      variables: { input: { name: "x".repeat(300_000), nodes: [] } },
    });
    const tooLarge = await post(huge);
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.json?.errors?.[0]?.extensions?.code).toBe("PAYLOAD_TOO_LARGE");

    const chunked = await new Promise<number>((resolve, reject) => {
      import("node:http").then(({ request }) => {
        const req = request(
          server.url,
          {
            method: "POST",
            headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("error", reject);
        req.write('{"query":"{ pipelines { edges { cursor } } }"}');
        req.end();
      });
    });
    expect(chunked).toBe(411);
  });

  it("refuses a document nested too deeply to parse, and queries deeper than 20 levels", async () => {
    const literal = `${"{a:".repeat(20_000)}1${"}".repeat(20_000)}`;
    const parse = await post(
      JSON.stringify({
        query: `mutation { createPipeline(input: {name: "x", nodes: [{id: "t", type: TRIGGER, config: ${literal}}]}) { id } }`,
      }),
    );
    expect(parse.status).toBe(200);
    expect(parse.json?.errors?.map((e) => [e.message, e.extensions?.code])).toEqual([
      ["Syntax Error: document nested too deeply to parse", "GRAPHQL_PARSE_FAILED"],
    ]);
    const loop = "pipeline { runs(first: 1) { edges { node { ".repeat(6);
    const deep = `{ run(id: "x") { ${loop} id ${"} } } } ".repeat(6)} } }`;
    const refused = await post(JSON.stringify({ query: deep }));
    expect(refused.json?.errors?.map((e) => [e.message, e.extensions?.code])).toEqual([
      ["Syntax Error: Query depth limit of 20 exceeded, found 26.", "QUERY_TOO_DEEP"],
    ]);
    const introspection = await post(JSON.stringify({ query: getIntrospectionQuery() }));
    expect(introspection.json?.errors).toBeUndefined();
    expect(introspection.status).toBe(200);
  });

  it("refuses pagination out of range and unsupported arguments", async () => {
    const big = await server.raw(ListPipelinesDocument, { first: 1000 });
    expect(big.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(big.errors?.[0]?.message).toBe("first must be 0 to 100, got 1000");
    const negative = await server.raw(ListPipelinesDocument, { first: -1 });
    expect(negative.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });

  it("answers NOT_FOUND for runs of pipelines that do not exist, and null for unknown ids", async () => {
    const body = await server.raw(RunPipelineDocument, { id: "nope" });
    expect(body.errors?.[0]).toMatchObject({
      message: 'pipeline "nope" does not exist',
      extensions: { code: "NOT_FOUND" },
    });
    const run = await post(JSON.stringify({ query: '{ run(id: "nope") { id } }' }));
    expect(run.json).toEqual({ data: { run: null } });
    const events = await post(
      JSON.stringify({ query: 'subscription { runEvents(runId: "nope") { seq } }' }),
      { accept: "text/event-stream" },
    );
    expect(events.status).toBeLessThan(500);
    expect(events.text).toContain('run \\"nope\\" does not exist');
  });

  it("survives a few hundred garbage requests and still answers", async () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pieces = [
      "{",
      "}",
      "[",
      "]",
      '"query"',
      ":",
      ",",
      '"mutation"',
      "null",
      "1e999",
      '"\\u0000"',
      "createPipeline",
      "(",
      ")",
      "$",
      "!",
      "nodes",
      "true",
    ];
    for (let i = 0; i < 300; i++) {
      const body = Array.from(
        { length: 1 + Math.floor(random() * 30) },
        () => pieces[Math.floor(random() * pieces.length)],
      ).join("");
      const { status } = await post(body);
      expect(status, body).toBeLessThan(500);
    }
    const health = await fetch(server.url.replace("/graphql", "/health"));
    expect(health.status).toBe(200);
  });
});
