/** Pipeline.versions through the server: every stored definition, newest first, batched. */
import { afterAll, beforeAll, expect, it } from "vitest";
import { MemoryStore } from "../src/store/memory.ts";
import {
  CreatePipelineDocument,
  type PipelineInput,
  PipelineVersionsDocument,
  UpdatePipelineDocument,
  VersionCountsDocument,
} from "./generated/graphql.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

const store = new MemoryStore();
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(store);
});
afterAll(() => server.close());

const input = (name: string, message: string): PipelineInput => ({
  name,
  timeoutSeconds: 60,
  nodes: [
    { id: "start", type: "TRIGGER" },
    { id: "say", type: "ACTION", config: { action: "log", message } },
  ],
  edges: [{ source: "start", target: "say" }],
});

it("lists each definition the pipeline has had, newest first", async () => {
  const { createPipeline } = await server.gql(CreatePipelineDocument, { input: input("v", "one") });
  await server.gql(UpdatePipelineDocument, {
    id: createPipeline.id,
    input: { ...input("v2", "two"), maxConcurrency: 2, breaker: { failureThreshold: 9 } },
  });
  const { pipeline } = await server.gql(PipelineVersionsDocument, { id: createPipeline.id });
  expect(pipeline?.version).toBe(2);
  expect(pipeline?.versions.map((v) => ({ ...v, createdAt: typeof v.createdAt }))).toEqual([
    {
      version: 2,
      createdAt: "string",
      name: "v2",
      nodes: [
        { id: "start", type: "TRIGGER", config: {} },
        { id: "say", type: "ACTION", config: { action: "log", message: "two" } },
      ],
      edges: [{ source: "start", target: "say", branch: null }],
      maxRetriesPerNode: 3,
      timeoutSeconds: 60,
      maxConcurrency: 2,
      breaker: { failureThreshold: 9, recoveryTimeoutMs: 60000 },
    },
    {
      version: 1,
      createdAt: "string",
      name: "v",
      nodes: [
        { id: "start", type: "TRIGGER", config: {} },
        { id: "say", type: "ACTION", config: { action: "log", message: "one" } },
      ],
      edges: [{ source: "start", target: "say", branch: null }],
      maxRetriesPerNode: 3,
      timeoutSeconds: 60,
      maxConcurrency: null,
      breaker: { failureThreshold: 5, recoveryTimeoutMs: 60000 },
    },
  ]);
  const [second, first] = pipeline!.versions;
  expect(Date.parse(second!.createdAt as string)).toBeGreaterThanOrEqual(
    Date.parse(first!.createdAt as string),
  );
});

it("reads the versions of a page of pipelines in one query", async () => {
  for (let i = 0; i < 5; i++)
    await server.gql(CreatePipelineDocument, { input: input(`p${i}`, "x") });
  const before = store.stats.queries;
  const { pipelines } = await server.gql(VersionCountsDocument, { first: 6 });
  expect(pipelines.edges.map((edge) => edge.node.versions.map((v) => v.version))).toEqual([
    [1],
    [1],
    [1],
    [1],
    [1],
    [2, 1],
  ]);
  // One for the page, one for all of its versions.
  expect(store.stats.queries - before).toBe(2);
});
