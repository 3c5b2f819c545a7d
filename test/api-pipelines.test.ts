import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { printedSchema, SCHEMA_FILE } from "../scripts/print-schema.ts";
import {
  CreatePipelineDocument,
  DeletePipelineDocument,
  GetPipelineDocument,
  ListPipelinesDocument,
  type PipelineInput,
  UpdatePipelineDocument,
  ValidatePipelineDocument,
} from "./generated/graphql.ts";
import { availableProviders, describeProviders, freshStore } from "./helpers/databases.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

const providers = await availableProviders();

const simple: PipelineInput = {
  name: "triage",
  maxRetriesPerNode: 4,
  timeoutSeconds: 120,
  breaker: { failureThreshold: 2, recoveryTimeoutMs: 500 },
  nodes: [
    { id: "start", type: "TRIGGER" },
    {
      id: "fetch",
      type: "ACTION",
      config: { action: "http", url: "http://127.0.0.1:9/x" },
      retry: { maxAttempts: 4, initialDelayMs: 100, maxDelayMs: 2000 },
      timeoutMs: 5000,
    },
    { id: "ok", type: "CONDITION", config: { expression: "inputs.fetch.status == 200" } },
    {
      id: "write",
      type: "AGENT",
      config: { agentId: "writer", task: "Summarise {{inputs.fetch.body}}" },
      continueOnFail: true,
    },
    { id: "alert", type: "ACTION", config: { action: "log", message: "fetch failed" } },
  ],
  edges: [
    { source: "start", target: "fetch" },
    { source: "fetch", target: "ok" },
    { source: "ok", target: "write", branch: "TRUE" },
    { source: "ok", target: "alert", branch: "FALSE" },
  ],
};

describeProviders(providers)("pipelines API on %s", (provider) => {
  let server: TestServer;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const fresh = await freshStore(provider);
    cleanup = fresh.cleanup;
    server = await startTestServer(fresh.store);
  });
  afterAll(async () => {
    await server.close();
    await cleanup();
  });

  it("creates, reads, updates and deletes a pipeline", async () => {
    const { createPipeline: created } = await server.gql(CreatePipelineDocument, { input: simple });
    expect(created).toMatchObject({
      name: "triage",
      version: 1,
      maxRetriesPerNode: 4,
      timeoutSeconds: 120,
      maxConcurrency: null,
      breaker: { failureThreshold: 2, recoveryTimeoutMs: 500 },
      runCount: 0,
      successCount: 0,
      errorCount: 0,
      validation: { valid: true, errors: [] },
    });
    expect(created.nodes.map((n) => [n.id, n.type])).toEqual([
      ["start", "TRIGGER"],
      ["fetch", "ACTION"],
      ["ok", "CONDITION"],
      ["write", "AGENT"],
      ["alert", "ACTION"],
    ]);
    expect(created.nodes[1]).toMatchObject({
      config: { action: "http", url: "http://127.0.0.1:9/x" },
      retry: { maxAttempts: 4, initialDelayMs: 100, maxDelayMs: 2000, jitter: null },
      timeoutMs: 5000,
      continueOnFail: false,
    });
    expect(created.nodes[3]!.continueOnFail).toBe(true);
    expect(created.edges).toEqual([
      { source: "start", target: "fetch", branch: null },
      { source: "fetch", target: "ok", branch: null },
      { source: "ok", target: "write", branch: "TRUE" },
      { source: "ok", target: "alert", branch: "FALSE" },
    ]);

    const { pipeline } = await server.gql(GetPipelineDocument, { id: created.id });
    expect(pipeline).toEqual(created);

    const { updatePipeline: updated } = await server.gql(UpdatePipelineDocument, {
      id: created.id,
      input: { ...simple, name: "triage v2", maxConcurrency: 2 },
    });
    expect(updated).toMatchObject({
      id: created.id,
      name: "triage v2",
      version: 2,
      maxConcurrency: 2,
    });
    expect(new Date(updated.updatedAt).getTime()).toBeGreaterThanOrEqual(
      new Date(created.updatedAt).getTime(),
    );

    expect(await server.gql(DeletePipelineDocument, { id: created.id })).toEqual({
      deletePipeline: true,
    });
    expect(await server.gql(DeletePipelineDocument, { id: created.id })).toEqual({
      deletePipeline: false,
    });
    expect(await server.gql(GetPipelineDocument, { id: created.id })).toEqual({ pipeline: null });
  });

  it("defaults the settings a client leaves out", async () => {
    const { createPipeline } = await server.gql(CreatePipelineDocument, {
      input: { name: "defaults", nodes: [{ id: "t", type: "TRIGGER" }] },
    });
    expect(createPipeline).toMatchObject({
      maxRetriesPerNode: 3,
      timeoutSeconds: 3600,
      breaker: { failureThreshold: 5, recoveryTimeoutMs: 60000 },
      edges: [],
    });
    expect(createPipeline.nodes[0]).toMatchObject({
      config: {},
      retry: null,
      timeoutMs: null,
      continueOnFail: false,
    });
  });

  it("lists pipelines newest first, page by page", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { createPipeline } = await server.gql(CreatePipelineDocument, {
        input: { name: `page-${i}`, nodes: [{ id: "t", type: "TRIGGER" }] },
      });
      ids.push(createPipeline.id);
    }
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      const {
        pipelines,
      }: {
        pipelines: {
          edges: { node: { id: string } }[];
          pageInfo: { hasNextPage: boolean; endCursor?: string | null };
        };
      } = await server.gql(ListPipelinesDocument, { first: 2, after });
      seen.push(...pipelines.edges.map((e) => e.node.id));
      if (!pipelines.pageInfo.hasNextPage) break;
      after = pipelines.pageInfo.endCursor ?? null;
    }
    const newestFive = seen.filter((id) => ids.includes(id));
    expect(newestFive).toEqual([...ids].reverse());
    expect(new Set(seen).size).toBe(seen.length);
  });

  it("updating or validating a pipeline that does not exist is NOT_FOUND", async () => {
    const missing = "00000000-0000-7000-8000-000000000000";
    const update = await server.raw(UpdatePipelineDocument, { id: missing, input: simple });
    expect(update.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    expect(update.errors?.[0]?.message).toBe(`pipeline "${missing}" does not exist`);
    const validate = await server.raw(ValidatePipelineDocument, { id: missing });
    expect(validate.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
  });

  it("validates a stored pipeline by id and a draft by definition", async () => {
    const bad: PipelineInput = {
      name: "cyclic",
      nodes: [
        { id: "t", type: "TRIGGER" },
        { id: "a", type: "PARALLEL" },
        { id: "b", type: "PARALLEL" },
      ],
      edges: [
        { source: "t", target: "a" },
        { source: "a", target: "b" },
        { source: "b", target: "a" },
      ],
    };
    const { createPipeline } = await server.gql(CreatePipelineDocument, { input: bad });
    expect(createPipeline.validation).toEqual({
      valid: false,
      errors: [{ code: "CYCLE", message: 'cycle: "a" → "b" → "a"', nodeId: "a" }],
    });
    const byId = await server.gql(ValidatePipelineDocument, { id: createPipeline.id });
    expect(byId.validatePipeline).toEqual(createPipeline.validation);
    const byDefinition = await server.gql(ValidatePipelineDocument, { definition: simple });
    expect(byDefinition.validatePipeline).toEqual({ valid: true, errors: [] });
  });

  it("refuses validatePipeline with both or neither of id and definition", async () => {
    for (const variables of [{}, { id: "x", definition: simple }]) {
      const body = await server.raw(ValidatePipelineDocument, variables);
      expect(body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
      expect(body.errors?.[0]?.message).toBe(
        "validatePipeline takes either id or definition, not both or neither",
      );
    }
  });
});

describe("the printed schema", () => {
  it("matches graphql/schema.graphql (run `npm run schema:print` after changing the schema)", () => {
    expect(readFileSync(SCHEMA_FILE, "utf8")).toBe(printedSchema());
  });
});
