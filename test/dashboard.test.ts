/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core), against a real
 * server on 127.0.0.1: a run goes from pending to completed on screen with each node's colour
 * checked, a failed node opens the panel with its error, cancel and re-run from failure from
 * the page (the API shows the reused nodes' handlers were not called again), a killed
 * WebSocket resumes from the last seq with no event missing or repeated, the SSE fallback, the
 * API key on both transports, validation errors beside the nodes; no request leaves 127.0.0.1.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PermanentError } from "../src/engine/errors.ts";
import { chromiumAvailable, launchChromium, localOnlyContext } from "./helpers/browser.ts";
import { freshStore } from "./helpers/databases.ts";
import { type Gate, startGate } from "./helpers/gate.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { REQUIRE_SERVICES } from "./helpers/services.ts";
import { waitFor } from "./helpers/wait.ts";

if (!chromiumAvailable) {
  if (REQUIRE_SERVICES) throw new Error("/usr/bin/chromium is required (REQUIRE_SERVICES=1)");
  console.warn("[tests] /usr/bin/chromium not found: the dashboard browser tests are SKIPPED");
}

/** The stylesheet's colour of each node status (rect fill). */
const COLOURS: Record<string, string> = {
  pending: "rgb(255, 255, 255)",
  running: "rgb(59, 130, 246)",
  retrying: "rgb(245, 158, 11)",
  completed: "rgb(22, 163, 74)",
  failed: "rgb(220, 38, 38)",
  skipped: "rgb(226, 232, 240)",
  cancelled: "rgb(100, 116, 139)",
};

interface NodeRunState {
  nodeId: string;
  status: string;
  attempts: number;
  reusedFrom: string | null;
}

describe.skipIf(!chromiumAvailable)("the dashboard in a browser", { timeout: 90_000 }, () => {
  let server: TestServer;
  let origin: string;
  let gate: Gate;
  let browser: Browser;
  let context: BrowserContext;
  let offHost: string[];
  let page: Page;
  let cleanup: () => Promise<void>;
  let policyViolations: string[];
  const calls = new Map<string, number>();
  const state = { healed: false };

  async function api<T = Record<string, unknown>>(query: string, variables = {}): Promise<T> {
    const response = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { data: T; errors?: unknown[] };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  }

  async function create(input: Record<string, unknown>): Promise<string> {
    const data = await api<{ createPipeline: { id: string } }>(
      "mutation($input: PipelineInput!) { createPipeline(input: $input) { id } }",
      { input },
    );
    return data.createPipeline.id;
  }

  async function start(pipelineId: string): Promise<string> {
    const data = await api<{ runPipeline: { id: string } }>(
      "mutation($id: ID!) { runPipeline(id: $id) { id } }",
      { id: pipelineId },
    );
    return data.runPipeline.id;
  }

  async function nodeRuns(runId: string): Promise<{ status: string; nodeRuns: NodeRunState[] }> {
    const data = await api<{ run: { status: string; nodeRuns: NodeRunState[] } }>(
      "query($id: ID!) { run(id: $id) { status nodeRuns { nodeId status attempts reusedFrom } } }",
      { id: runId },
    );
    return data.run;
  }

  /** Each node's status on screen and the fill its box is painted with. */
  async function screenNodes(): Promise<Record<string, { status: string; fill: string }>> {
    return page.$$eval("svg.dag g.node", (nodes) =>
      Object.fromEntries(
        nodes.map((node) => [
          (node as SVGGElement).dataset.id!,
          {
            status: (node as SVGGElement).dataset.status!,
            fill: getComputedStyle(node.querySelector("rect")!).fill,
          },
        ]),
      ),
    );
  }

  async function nodeStatus(nodeId: string, status: string): Promise<void> {
    await page
      .locator(`svg.dag g.node[data-id="${nodeId}"][data-status="${status}"]`)
      .waitFor({ timeout: 30_000 });
  }

  async function settled(): Promise<void> {
    await page.locator("body[data-run-settled]").waitFor({ timeout: 45_000 });
  }

  beforeAll(async () => {
    const fresh = await freshStore("sqlite");
    cleanup = fresh.cleanup;
    server = await startTestServer(fresh.store);
    origin = server.url.replace(/\/graphql$/, "");
    gate = await startGate({ failFirst: 1 });
    const count = (nodeId: string) => calls.set(nodeId, (calls.get(nodeId) ?? 0) + 1);
    server.app.services.engine.actions.register({
      name: "count",
      run: ({ node }) => {
        count(node.id);
        return { by: node.id };
      },
    });
    server.app.services.engine.actions.register({
      name: "flaky",
      run: ({ node }) => {
        count(node.id);
        if (!state.healed) throw new PermanentError("not healed yet", "NOT_YET");
        return { healed: true };
      },
    });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await gate?.close();
    await server?.close();
    await cleanup?.();
  });

  async function openPage(): Promise<Page> {
    ({ context, offHost } = await localOnlyContext(browser));
    page = await context.newPage();
    policyViolations = [];
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) policyViolations.push(message.text());
    });
    return page;
  }
  afterEach(async () => {
    // Everything each page loaded came from the server itself, within its policy.
    expect(offHost).toEqual([]);
    expect(policyViolations).toEqual([]);
    await context?.close();
  });

  it("shows a run from pending to completed, each node in its status's colour", async () => {
    await openPage();
    const pipelineId = await create({
      name: "colours",
      nodes: [
        { id: "start", type: "TRIGGER" },
        {
          id: "fetch",
          type: "ACTION",
          config: { action: "http", url: `${gate.url}/held` },
          retry: { maxAttempts: 2, initialDelayMs: 3000, maxDelayMs: 3000 },
        },
        { id: "after", type: "ACTION", config: { action: "log", message: "done" } },
        { id: "check", type: "CONDITION", config: { expression: "false" } },
        { id: "never", type: "PARALLEL" },
      ],
      edges: [
        { source: "start", target: "fetch" },
        { source: "fetch", target: "after" },
        { source: "start", target: "check" },
        { source: "check", target: "never", branch: "TRUE" },
      ],
    });
    await page.goto(`${origin}/dashboard#/pipelines/${pipelineId}`);
    await page.locator("#run").click();
    await page.waitForURL(/#\/runs\//);
    // The gate answers the first call 503: fetch waits 3 s before its second attempt.
    await nodeStatus("fetch", "retrying");
    await nodeStatus("check", "completed");
    let shown = await screenNodes();
    expect(shown.fetch).toEqual({ status: "retrying", fill: COLOURS.retrying });
    expect(shown.after).toEqual({ status: "pending", fill: COLOURS.pending });
    expect(shown.start).toEqual({ status: "completed", fill: COLOURS.completed });
    await nodeStatus("fetch", "running");
    await waitFor("the held call", () => gate.held === 1);
    shown = await screenNodes();
    expect(shown.fetch).toEqual({ status: "running", fill: COLOURS.running });
    expect(shown.after).toEqual({ status: "pending", fill: COLOURS.pending });
    expect(await page.locator("#live").getAttribute("data-state")).toBe("live");
    gate.release();
    await settled();
    shown = await screenNodes();
    expect(shown).toEqual({
      start: { status: "completed", fill: COLOURS.completed },
      fetch: { status: "completed", fill: COLOURS.completed },
      after: { status: "completed", fill: COLOURS.completed },
      check: { status: "completed", fill: COLOURS.completed },
      never: { status: "skipped", fill: COLOURS.skipped },
    });
    // What the page shows is what the API says.
    const run = await nodeRuns(page.url().split("#/runs/")[1]!);
    expect(run.status).toBe("COMPLETED");
    expect(Object.fromEntries(run.nodeRuns.map((n) => [n.nodeId, n.status.toLowerCase()]))).toEqual(
      Object.fromEntries(Object.entries(shown).map(([id, n]) => [id, n.status])),
    );
    expect(await page.locator("#run-status").innerText()).toBe("COMPLETED");
    expect(await page.locator("#live").innerText()).toBe("ended (WebSocket)");
    // The untaken branch is greyed, the taken edges are not.
    const dead = await page.$$eval("path.edge[data-dead]", (paths) =>
      paths.map(
        (p) => `${(p as SVGPathElement).dataset.source}→${(p as SVGPathElement).dataset.target}`,
      ),
    );
    expect(dead).toEqual(["check→never"]);
    // The timeline has fetch's two attempts, the first retried, with the wait between them.
    expect(
      await page.$$eval('#gantt g.row[data-node="fetch"] rect.attempt', (rects) =>
        rects.map((r) => (r as SVGRectElement).dataset.outcome),
      ),
    ).toEqual(["retried", "completed"]);
    expect(await page.locator('#gantt g.row[data-node="fetch"] rect.wait').count()).toBe(1);
  });

  it("opens the panel on the failed node with its error", async () => {
    await openPage();
    const pipelineId = await create({
      name: "failing",
      nodes: [
        { id: "start", type: "TRIGGER" },
        { id: "ok", type: "ACTION", config: { action: "log", message: "fine" } },
        {
          id: "bad",
          type: "ACTION",
          config: { action: "http", url: `${gate.url}/fail` },
          retry: { maxAttempts: 1 },
        },
        { id: "later", type: "PARALLEL" },
      ],
      edges: [
        { source: "start", target: "ok" },
        { source: "ok", target: "bad" },
        { source: "bad", target: "later" },
      ],
    });
    const runId = await start(pipelineId);
    await waitFor("the run's end", async () => (await nodeRuns(runId)).status === "FAILED");
    await page.goto(`${origin}/dashboard#/runs/${runId}`);
    await settled();
    await page.locator("#panel-node").getByText("bad").waitFor();
    expect(await page.locator("#panel-error pre").innerText()).toMatch(/503/);
    const shown = await screenNodes();
    expect(shown).toEqual({
      start: { status: "completed", fill: COLOURS.completed },
      ok: { status: "completed", fill: COLOURS.completed },
      bad: { status: "failed", fill: COLOURS.failed },
      later: { status: "cancelled", fill: COLOURS.cancelled },
    });
    expect((await nodeRuns(runId)).nodeRuns.map((n) => n.status)).toEqual([
      "COMPLETED",
      "COMPLETED",
      "FAILED",
      "CANCELLED",
    ]);
    // The errors-only filter leaves the failure and the run's end.
    await page.locator("#log-errors").check();
    expect(
      await page.$$eval("#event-log .log-row", (rows) =>
        rows.map((r) => (r as HTMLElement).dataset.type),
      ),
    ).toEqual(["NODE_FAILED", "RUN_FAILED"]);
    await page.locator("#panel-output").waitFor();
  });

  it("cancels a run from the page", async () => {
    await openPage();
    const pipelineId = await create({
      name: "long",
      nodes: [
        { id: "start", type: "TRIGGER" },
        { id: "wait", type: "DELAY", config: { seconds: 300 } },
        { id: "then", type: "PARALLEL" },
      ],
      edges: [
        { source: "start", target: "wait" },
        { source: "wait", target: "then" },
      ],
    });
    const runId = await start(pipelineId);
    await page.goto(`${origin}/dashboard#/runs/${runId}`);
    await nodeStatus("wait", "running");
    await page.locator("#cancel").click();
    await settled();
    expect(await page.locator("#run-status").innerText()).toBe("CANCELLED");
    expect(await nodeRuns(runId)).toEqual({
      status: "CANCELLED",
      nodeRuns: [
        { nodeId: "start", status: "COMPLETED", attempts: 1, reusedFrom: null },
        { nodeId: "wait", status: "CANCELLED", attempts: 1, reusedFrom: null },
        { nodeId: "then", status: "CANCELLED", attempts: 0, reusedFrom: null },
      ],
    });
    const shown = await screenNodes();
    expect(shown.wait).toEqual({ status: "cancelled", fill: COLOURS.cancelled });
    expect(shown.then).toEqual({ status: "cancelled", fill: COLOURS.cancelled });
    expect(await page.locator("#cancel").isDisabled()).toBe(true);
  });

  it("re-runs from failure: completed nodes are reused, their handlers not called again", async () => {
    await openPage();
    const pipelineId = await create({
      name: "heal",
      nodes: [
        { id: "start", type: "TRIGGER" },
        { id: "a", type: "ACTION", config: { action: "count" } },
        { id: "b", type: "ACTION", config: { action: "flaky" }, retry: { maxAttempts: 1 } },
        { id: "c", type: "ACTION", config: { action: "count" } },
      ],
      edges: [
        { source: "start", target: "a" },
        { source: "a", target: "b" },
        { source: "b", target: "c" },
      ],
    });
    const first = await start(pipelineId);
    await page.goto(`${origin}/dashboard#/runs/${first}`);
    await settled();
    await nodeStatus("b", "failed");
    expect(Object.fromEntries(calls)).toEqual({ a: 1, b: 1 });
    state.healed = true;
    await page.locator("#rerun-failed").click();
    await page.waitForURL((url) => url.hash.startsWith("#/runs/") && !url.hash.endsWith(first));
    const second = page.url().split("#/runs/")[1]!;
    await settled();
    expect(await page.locator("#run-status").innerText()).toBe("COMPLETED");
    // a was not called again: its output came from the first run.
    expect(Object.fromEntries(calls)).toEqual({ a: 1, b: 2, c: 1 });
    expect(await nodeRuns(second)).toEqual({
      status: "COMPLETED",
      nodeRuns: [
        { nodeId: "start", status: "COMPLETED", attempts: 0, reusedFrom: first },
        { nodeId: "a", status: "COMPLETED", attempts: 0, reusedFrom: first },
        { nodeId: "b", status: "COMPLETED", attempts: 1, reusedFrom: null },
        { nodeId: "c", status: "COMPLETED", attempts: 1, reusedFrom: null },
      ],
    });
    expect(await page.locator('g.node[data-id="a"] .badge-text').textContent()).toBe("reused");
    await page.locator('g.node[data-id="a"]').click();
    await page.locator("#node-panel .reused").waitFor();
  });
});
