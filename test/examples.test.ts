/**
 * Every pipeline in examples/ applied and run through the CLI, as its header comment says, with
 * the example service; only the service's port differs (the files name 4100, the test takes a
 * free one). Final statuses and the key outputs are asserted.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type ExampleService, startExampleService } from "../examples/service.ts";
import { MemoryStore } from "../src/store/memory.ts";
import { cli, runIdOf } from "./helpers/cli.ts";
import { repoRoot, request } from "./helpers/process.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

// Each test starts processes (a tsx start is a few seconds on a loaded 2-core machine).
vi.setConfig({ testTimeout: 90_000, hookTimeout: 180_000 });

const EXAMPLES = path.join(repoRoot, "examples");
let service: ExampleService;
let server: TestServer;
let dir: string;

/** The example file with the service's port, in a temp dir. */
function localCopy(name: string): string {
  const text = readFileSync(path.join(EXAMPLES, name), "utf8").replaceAll(
    "127.0.0.1:4100",
    `127.0.0.1:${service.port}`,
  );
  const target = path.join(dir, name);
  writeFileSync(target, text);
  return target;
}

beforeAll(async () => {
  service = await startExampleService(0);
  dir = mkdtempSync(path.join(tmpdir(), "pipelines-examples-"));
  server = await startTestServer(new MemoryStore(), { AGENTS_FILE: localCopy("agents.json") });
});
afterAll(async () => {
  await server.close();
  await service.close();
  rmSync(dir, { recursive: true, force: true });
});

interface NodeRunView {
  nodeId: string;
  status: string;
  attempts: number;
  output: Record<string, unknown> | null;
  error: string | null;
}

async function nodeRuns(runId: string): Promise<Record<string, NodeRunView>> {
  const { run } = await request<{ run: { nodeRuns: NodeRunView[] } }>(
    server.url,
    "query($id: ID!) { run(id: $id) { nodeRuns { nodeId status attempts output error } } }",
    { id: runId },
  );
  return Object.fromEntries(run.nodeRuns.map((n) => [n.nodeId, n]));
}

/** apply, then run --follow; resolves with the exit code, the run id and its node runs. */
async function applyAndRun(file: string, name: string, data?: unknown) {
  const applied = await cli(server.url, ["apply", localCopy(file)]);
  expect(applied.stderr).toBe("");
  expect(applied.code).toBe(0);
  const args = ["run", name, "--follow", ...(data ? ["--data", JSON.stringify(data)] : [])];
  const result = await cli(server.url, args);
  expect(result.stderr).toBe("");
  const runId = runIdOf(result.stdout);
  return { code: result.code, runId, stdout: result.stdout, nodes: await nodeRuns(runId) };
}

const statuses = (nodes: Record<string, NodeRunView>) =>
  Object.fromEntries(Object.values(nodes).map((n) => [n.nodeId, n.status]));

describe("examples/", () => {
  it("has a test for every pipeline file", () => {
    expect(readdirSync(EXAMPLES).filter((f) => f.endsWith(".yaml"))).toEqual([
      "agent.yaml",
      "fan-out.yaml",
      "retry-breaker.yaml",
      "triage.yaml",
    ]);
  });

  it("triage: item 42 takes the TRUE branch, an unknown item the FALSE branch", async () => {
    const found = await applyAndRun("triage.yaml", "triage", { item: 42 });
    expect(found.code).toBe(0);
    expect(found.stdout).toContain(`\nrun ${found.runId} COMPLETED\n`);
    expect(statuses(found.nodes)).toEqual({
      start: "COMPLETED",
      fetch: "COMPLETED",
      ok: "COMPLETED",
      write: "COMPLETED",
      alert: "SKIPPED",
    });
    expect(found.nodes.ok!.output).toEqual({ result: true });
    expect(found.nodes.write!.output?.result).toBe(
      "Summary: Summarise Printer on floor 3 prints only blank pages",
    );

    const missing = await applyAndRun("triage.yaml", "triage", { item: 99 });
    expect(missing.code).toBe(0);
    expect(statuses(missing.nodes)).toEqual({
      start: "COMPLETED",
      fetch: "FAILED",
      ok: "COMPLETED",
      write: "SKIPPED",
      alert: "COMPLETED",
    });
    expect(missing.nodes.ok!.output).toEqual({ result: false });
    expect(missing.nodes.fetch!.error).toBe(
      `HTTP 404 from 127.0.0.1:${service.port}: {"error":"no item 99"}`,
    );
    expect(missing.nodes.alert!.output).toEqual({
      level: "warn",
      message: "item 99: fetch failed",
    });
  });

  it("fan-out: three branches at once, joined into one report", async () => {
    const { code, nodes } = await applyAndRun("fan-out.yaml", "fan-out");
    expect(code).toBe(0);
    expect(Object.values(nodes).every((n) => n.status === "COMPLETED")).toBe(true);
    expect(Object.keys(nodes.join!.output ?? {}).sort()).toEqual(["first", "pause", "second"]);
    expect(nodes.report!.output).toEqual({
      level: "info",
      message:
        "Printer on floor 3 prints only blank pages (high); Coffee machine descaling reminder (low)",
    });
  });

  it("retry-breaker: flaky succeeds on its third attempt; down opens its breaker after two runs", async () => {
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await applyAndRun("retry-breaker.yaml", "retry-breaker"));
    for (const run of runs) {
      expect(run.code).toBe(0);
      expect(run.nodes.flaky).toMatchObject({ status: "COMPLETED", attempts: 3 });
      expect(run.nodes.report!.output).toEqual({
        level: "info",
        message: "flaky answered after 3 calls",
      });
    }
    expect(runs.map((r) => [r.nodes.down!.status, r.nodes.down!.attempts])).toEqual([
      ["FAILED", 2],
      ["FAILED", 2],
      ["FAILED", 0],
    ]);
    expect(runs[2]!.nodes.down!.error).toMatch(/^circuit breaker of node "down" is OPEN until /);
    // Two calls in each of the first two runs, none in the third.
    expect(service.calls.get("/down")).toBe(4);
  });

  it("agent: the writer agent answers through the OpenAI-compatible endpoint", async () => {
    const { code, nodes } = await applyAndRun("agent.yaml", "agent", { item: 42 });
    expect(code).toBe(0);
    const result =
      "Summary: One line for the on-call engineer: Printer on floor 3 prints only blank pages";
    expect(nodes.summarise!.output).toMatchObject({
      result,
      agentId: "writer",
      model: "example-model",
    });
    expect(nodes.publish!.output).toEqual({ level: "info", message: `${result} (example-model)` });
  });
});
