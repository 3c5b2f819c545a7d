/**
 * The dashboard at 2,000 nodes and 10,000 events, in a real browser: a finished run's page
 * replays every event and shows every node completed; a page open while such a run executes
 * follows it to the end. The figures (first paint, time to the last event, the longest main
 * thread task while events stream) are measured by the page's own performance entries and
 * printed, and kept in bench/results/dashboard-scale.json; nothing is asserted on them (the
 * machine is shared), only on what the page shows. BENCHMARKS.md records a run of them.
 *
 * A measurement more than a test (minutes on a loaded machine): it runs with
 * `DASHBOARD_SCALE=1 npx vitest run test/dashboard-scale.test.ts`, and is reported as skipped
 * otherwise.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetryableError } from "../src/engine/errors.ts";
import { chromiumAvailable, launchChromium, localOnlyContext } from "./helpers/browser.ts";
import { freshStore } from "./helpers/databases.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { REQUIRE_SERVICES } from "./helpers/services.ts";

if (!chromiumAvailable && REQUIRE_SERVICES)
  throw new Error("/usr/bin/chromium is required (REQUIRE_SERVICES=1)");

const NODES = 2_000;
const FAILURES = 3;

/** A trigger and 1,999 actions in 40 chains of about 50; each action fails 3 times then succeeds. */
function bigPipeline() {
  const nodes: Record<string, unknown>[] = [{ id: "start", type: "TRIGGER" }];
  const edges: { source: string; target: string }[] = [];
  for (let i = 1; i < NODES; i++) {
    const id = `n${i}`;
    nodes.push({
      id,
      type: "ACTION",
      config: { action: "thrice" },
      retry: { maxAttempts: FAILURES + 1, initialDelayMs: 0, maxDelayMs: 0 },
    });
    edges.push({ source: i <= 40 ? "start" : `n${i - 40}`, target: id });
  }
  return { name: "big", nodes, edges };
}

interface Figures {
  /** The page's script has drawn the DAG in the run's node statuses (`dashboard:run-drawn`). */
  firstPaintMs: number;
  /** The browser has painted that (`dashboard:run-painted`, the next frame's task). */
  paintedMs: number;
  /** The stored events are read and drawn too: timeline and log (`dashboard:run-loaded`). */
  loadedMs: number;
  allEventsMs: number;
  longestTaskMs: number;
  longTasks: number;
  events: number;
  /** Nodes in the page (those near the view; the others are drawn when scrolled to). */
  drawnNodes: number;
}

const measuring = process.env.DASHBOARD_SCALE === "1";

describe.skipIf(!chromiumAvailable || !measuring)(
  "the dashboard at 2,000 nodes and 10,000 events",
  { timeout: 600_000 },
  () => {
    let server: TestServer;
    let origin: string;
    let browser: Browser;
    let cleanup: () => Promise<void>;
    let pipelineId: string;
    const figures: Record<string, Figures> = {};

    async function api<T>(query: string, variables = {}): Promise<T> {
      const response = await fetch(server.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as { data: T; errors?: unknown[] };
      if (body.errors) throw new Error(JSON.stringify(body.errors));
      return body.data;
    }
    const startRun = async () =>
      (
        await api<{ runPipeline: { id: string } }>(
          "mutation($id: ID!) { runPipeline(id: $id) { id } }",
          { id: pipelineId },
        )
      ).runPipeline.id;
    /** The run's status and its number of stored events (seqs run 1..n). */
    async function eventCount(runId: string): Promise<{ status: string; eventCount: number }> {
      let after = 0;
      let status = "";
      for (let page = 0; page < 10; page++) {
        const { run } = await api<{ run: { status: string; events: { seq: number }[] } }>(
          "query($id: ID!, $after: Int) { run(id: $id) { status events(after: $after, first: 10000) { seq } } }",
          { id: runId, after },
        );
        status = run.status;
        if (!run.events.length) break;
        after = run.events.at(-1)!.seq;
      }
      return { status, eventCount: after };
    }

    beforeAll(async () => {
      const fresh = await freshStore("memory");
      cleanup = fresh.cleanup;
      server = await startTestServer(fresh.store);
      origin = server.url.replace(/\/graphql$/, "");
      server.app.services.engine.actions.register({
        name: "thrice",
        run: ({ attempt }) => {
          if (attempt <= FAILURES) throw new RetryableError(`attempt ${attempt} fails`, "NOT_YET");
          return { ok: true };
        },
      });
      pipelineId = (
        await api<{ createPipeline: { id: string } }>(
          "mutation($input: PipelineInput!) { createPipeline(input: $input) { id } }",
          { input: bigPipeline() },
        )
      ).createPipeline.id;
      browser = await launchChromium();
    });
    afterAll(async () => {
      if (Object.keys(figures).length) {
        mkdirSync(new URL("../bench/results/", import.meta.url), { recursive: true });
        writeFileSync(
          new URL("../bench/results/dashboard-scale.json", import.meta.url),
          `${JSON.stringify(figures, null, 2)}\n`,
        );
      }
      await browser?.close();
      await server?.close();
      await cleanup?.();
    });

    /** Opens a run page recording long tasks from the start; returns the page and its off-host list. */
    async function openRun(runId: string) {
      const { context, offHost } = await localOnlyContext(browser);
      const page = await context.newPage();
      await page.addInitScript(() => {
        const tasks: number[] = [];
        (window as unknown as { longTasks: number[] }).longTasks = tasks;
        new PerformanceObserver((list) => {
          for (const entry of list.getEntries()) tasks.push(entry.duration);
        }).observe({ type: "longtask", buffered: true });
      });
      await page.goto(`${origin}/dashboard#/runs/${runId}`);
      return { page, context, offHost };
    }

    async function measure(page: Page, events: number): Promise<Figures> {
      await page.locator("body[data-run-settled]").waitFor({ timeout: 300_000 });
      return page.evaluate(
        ({ events }) => {
          const at = (name: string) =>
            performance.getEntriesByName(name)[0]?.startTime ?? Number.NaN;
          const tasks = (window as unknown as { longTasks: number[] }).longTasks;
          return {
            firstPaintMs: Math.round(at("dashboard:run-drawn")),
            paintedMs: Math.round(at("dashboard:run-painted")),
            loadedMs: Math.round(at("dashboard:run-loaded")),
            allEventsMs: Math.round(at("dashboard:run-settled")),
            longestTaskMs: Math.round(Math.max(0, ...tasks)),
            longTasks: tasks.length,
            events,
            drawnNodes: document.querySelectorAll("svg.dag g.node").length,
          };
        },
        { events },
      );
    }

    async function expectAllCompleted(page: Page, events: number) {
      // Only the nodes near the view are drawn; the head counts them all.
      const statuses = await page.$$eval("svg.dag g.node", (nodes) =>
        nodes.map((n) => (n as SVGGElement).dataset.status),
      );
      expect(statuses.length).toBeGreaterThan(0);
      expect(statuses.length).toBeLessThan(NODES);
      expect(new Set(statuses)).toEqual(new Set(["completed"]));
      expect(await page.locator("svg.dag").getAttribute("data-nodes")).toBe(String(NODES));
      expect(await page.locator("#node-counts").innerText()).toBe(
        `${NODES} nodes: ${NODES} completed`,
      );
      // A node picked in the log (the last to complete, far from the view) is scrolled to
      // and drawn, completed.
      const link = page.locator("#event-log .log-row a[data-node]").last();
      const nodeId = await link.getAttribute("data-node");
      await link.click();
      await page
        .locator(`svg.dag g.node[data-id="${nodeId}"][data-status="completed"][data-selected]`)
        .waitFor();
      expect(await page.locator("#log-count").innerText()).toBe(
        `${events} of ${events} events · last seq ${events}`,
      );
    }

    it("shows a finished run of 2,000 nodes and its 10,000 events", async () => {
      const runId = await startRun();
      let run = await eventCount(runId);
      for (let i = 0; i < 600 && !["COMPLETED", "FAILED"].includes(run.status); i++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        run = await eventCount(runId);
      }
      expect(run.status).toBe("COMPLETED");
      // Each action: a start and a retry per failed attempt, a start and a completion (15,996 in all).
      expect(run.eventCount).toBeGreaterThanOrEqual(10_000);
      const { page, context, offHost } = await openRun(runId);
      figures.finished = await measure(page, run.eventCount);
      await expectAllCompleted(page, run.eventCount);
      expect(offHost).toEqual([]);
      await context.close();
      console.log("[dashboard-scale] finished run:", JSON.stringify(figures.finished));
    });

    it("follows such a run live to its end", async () => {
      const runId = await startRun();
      const { page, context, offHost } = await openRun(runId);
      await page.locator("body[data-run-settled]").waitFor({ timeout: 300_000 });
      const run = await eventCount(runId);
      expect(run.status).toBe("COMPLETED");
      figures.live = await measure(page, run.eventCount);
      await expectAllCompleted(page, run.eventCount);
      expect(offHost).toEqual([]);
      await context.close();
      console.log("[dashboard-scale] live run:", JSON.stringify(figures.live));
    });
  },
);
