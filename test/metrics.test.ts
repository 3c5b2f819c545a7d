/**
 * `/metrics` through a real server: the engine's figures move while a run is under way and
 * after it ends (runs by status, attempts, retries, leases, queue, breakers, commits), beside
 * the GraphQL figures of the yoga plugin and Node's event-loop lag.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { MemoryStore } from "../src/store/memory.ts";
import {
  CreatePipelineDocument,
  GetRunDocument,
  type PipelineInput,
  RunPipelineDocument,
} from "./generated/graphql.ts";
import { type Gate, startGate } from "./helpers/gate.ts";
import { repoRoot } from "./helpers/process.ts";
import { sample } from "./helpers/prometheus.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { waitFor } from "./helpers/wait.ts";

let server: TestServer;
let gate: Gate;

beforeAll(async () => {
  gate = await startGate({ failFirst: 1 });
  server = await startTestServer(new MemoryStore());
});
afterAll(async () => {
  await server.close();
  await gate.close();
});

async function scrape(): Promise<string> {
  const response = await fetch(new URL("/metrics", server.url));
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.text();
}

const pipeline = (name: string, path: string, breaker?: PipelineInput["breaker"]) => ({
  name,
  breaker,
  nodes: [
    { id: "start", type: "TRIGGER" as const },
    {
      id: "call",
      type: "ACTION" as const,
      config: { action: "http", url: `${gate.url}${path}` },
      retry: { maxAttempts: path === "/held" ? 2 : 1, initialDelayMs: 1, maxDelayMs: 1 },
    },
  ],
  edges: [{ source: "start", target: "call" }],
});

async function runToEnd(id: string): Promise<string> {
  return waitFor(`run ${id} to end`, async () => {
    const { run } = await server.gql(GetRunDocument, { id });
    const ended = run && run.status !== "RUNNING" && run.status !== "QUEUED";
    return ended ? run.status : undefined;
  });
}

it("shows the engine's figures moving during a run and after it", async () => {
  const before = await scrape();
  expect(sample(before, "pipelines_runs_started_total")).toBe(0);
  expect(sample(before, "pipelines_runs", { status: "RUNNING" })).toBe(0);
  expect(sample(before, "pipelines_leases_held")).toBe(0);
  expect(sample(before, "nodejs_eventloop_lag_seconds")).toBeGreaterThanOrEqual(0);

  const { createPipeline } = await server.gql(CreatePipelineDocument, {
    input: pipeline("metered", "/held"),
  });
  const { runPipeline } = await server.gql(RunPipelineDocument, { id: createPipeline.id });
  // The first call answered 503 and was retried; the second is held by the gate.
  await waitFor("the retried call to be held", () => gate.held === 1);

  const during = await scrape();
  expect(sample(during, "pipelines_runs_started_total")).toBe(1);
  expect(sample(during, "pipelines_runs", { status: "RUNNING" })).toBe(1);
  expect(sample(during, "pipelines_runs", { status: "QUEUED" })).toBe(0);
  expect(sample(during, "pipelines_leases_held")).toBe(1);
  expect(sample(during, "pipelines_node_attempts_running")).toBe(1);
  expect(sample(during, "pipelines_node_queue_depth")).toBe(0);
  expect(sample(during, "pipelines_node_attempts_total", { type: "TRIGGER" })).toBe(1);
  expect(sample(during, "pipelines_node_attempts_total", { type: "ACTION" })).toBe(2);
  expect(sample(during, "pipelines_node_retries_total", { type: "ACTION" })).toBe(1);
  expect(sample(during, "pipelines_runs_finished_total", { status: "COMPLETED" })).toBe(undefined);

  gate.release();
  expect(await runToEnd(runPipeline.id)).toBe("COMPLETED");
  const after = await waitFor("the commit of the end", async () => {
    const text = await scrape();
    return sample(text, "pipelines_runs", { status: "RUNNING" }) === 0 && text;
  });
  expect(sample(after, "pipelines_runs_finished_total", { status: "COMPLETED" })).toBe(1);
  expect(sample(after, "pipelines_run_duration_seconds_count", { status: "COMPLETED" })).toBe(1);
  expect(sample(after, "pipelines_leases_held")).toBe(0);
  expect(sample(after, "pipelines_node_attempts_running")).toBe(0);
  expect(
    sample(after, "pipelines_nodes_finished_total", { type: "ACTION", outcome: "completed" }),
  ).toBe(1);
  expect(
    sample(after, "pipelines_nodes_finished_total", { type: "TRIGGER", outcome: "completed" }),
  ).toBe(1);
  // RUN_STARTED, 2 × NODE_STARTED + NODE_COMPLETED, NODE_STARTED, NODE_RETRYING, NODE_STARTED,
  // NODE_COMPLETED, RUN_COMPLETED: 8 events, however they were grouped into commits.
  expect(sample(after, "pipelines_events_committed_total")).toBe(8);
  expect(
    sample(after, "pipelines_commit_duration_seconds_count", { outcome: "ok" }),
  ).toBeGreaterThan(0);
  expect(
    sample(after, "graphql_envelop_request_duration_count", { operationName: "RunPipeline" }),
  ).toBe(1);
  // Tracing is off: nothing was added to the calls.
  expect(gate.requests.map((r) => r.headers.traceparent)).toEqual([undefined, undefined]);
});

it("counts open breakers across the cluster and failed runs", async () => {
  const { createPipeline } = await server.gql(CreatePipelineDocument, {
    input: pipeline("broken", "/fail", { failureThreshold: 1 }),
  });
  const { runPipeline } = await server.gql(RunPipelineDocument, { id: createPipeline.id });
  expect(await runToEnd(runPipeline.id)).toBe("FAILED");
  const text = await waitFor("the breaker to be counted open", async () => {
    const scraped = await scrape();
    return sample(scraped, "pipelines_breakers", { state: "OPEN" }) === 1 && scraped;
  });
  expect(sample(text, "pipelines_breakers", { state: "HALF_OPEN" })).toBe(0);
  expect(sample(text, "pipelines_runs_finished_total", { status: "FAILED" })).toBe(1);
  expect(
    sample(text, "pipelines_nodes_finished_total", { type: "ACTION", outcome: "failed" }),
  ).toBe(1);
});

it("serves every metric the sample Grafana dashboard queries", async () => {
  const dashboard = JSON.parse(
    readFileSync(path.join(repoRoot, "ops", "grafana-dashboard.json"), "utf8"),
  ) as { panels: { targets: { expr: string }[] }[] };
  const queried = new Set(
    dashboard.panels
      .flatMap((panel) => panel.targets)
      .flatMap(({ expr }) => [...expr.matchAll(/\b((?:pipelines|graphql|nodejs)_\w+)/g)])
      .map(([, name]) => name!.replace(/_(bucket|count|sum)$/, "")),
  );
  expect(queried.size).toBeGreaterThan(10);
  const text = await scrape();
  const served = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map(([, name]) => name));
  expect([...queried].filter((name) => !served.has(name))).toEqual([]);
});
