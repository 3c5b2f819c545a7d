/**
 * Takes the README's picture of the run page (docs/dashboard-run.png) from a real run: a
 * server on a temporary SQLite file and the example service (examples/service.ts) on free
 * ports, the README's triage pipeline with two more nodes (one that is retried before it
 * succeeds, one that fails), a run of item 42, and the page in headless Chromium at 1400×900.
 * It fails when the page logs an error or asks for anything off 127.0.0.1.
 *
 * `npm run dashboard:screenshot` (Debian's /usr/bin/chromium; nothing is downloaded).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { startExampleService } from "../examples/service.ts";
import { loadConfig } from "../src/config.ts";
import { buildApp } from "../src/server/app.ts";
import { createServices } from "../src/services.ts";

const root = path.resolve(import.meta.dirname, "..");
const output = path.join(root, "docs/dashboard-run.png");
const VIEWPORT = { width: 1400, height: 900 };
const LOCAL = new Set(["127.0.0.1", "localhost"]);

/** The README's triage pipeline, plus `enrich` (two 503s, then 200) and `notify` (always 503). */
function pipeline(service: string) {
  return {
    name: "triage",
    maxRetriesPerNode: 3,
    timeoutSeconds: 600,
    nodes: [
      { id: "start", type: "TRIGGER" },
      {
        id: "fetch",
        type: "ACTION",
        config: { action: "http", url: `${service}/items/{{trigger.item}}` },
        retry: { maxAttempts: 4, initialDelayMs: 200, maxDelayMs: 5000 },
        timeoutMs: 5000,
        continueOnFail: true,
      },
      {
        id: "enrich",
        type: "ACTION",
        config: { action: "http", url: `${service}/flaky/{{run.id}}?failures=2` },
        retry: { maxAttempts: 4, initialDelayMs: 400, maxDelayMs: 5000 },
      },
      {
        id: "ok",
        type: "CONDITION",
        config: { expression: "has(inputs.fetch.status) && inputs.fetch.status == 200" },
      },
      {
        id: "write",
        type: "AGENT",
        config: { agentId: "writer", task: "Summarise {{inputs.fetch.body.title}}" },
      },
      {
        id: "alert",
        type: "ACTION",
        config: { action: "log", level: "warn", message: "item {{trigger.item}}: fetch failed" },
      },
      {
        id: "notify",
        type: "ACTION",
        config: { action: "http", url: `${service}/down` },
        retry: { maxAttempts: 2, initialDelayMs: 300, maxDelayMs: 5000 },
      },
    ],
    edges: [
      { source: "start", target: "fetch" },
      { source: "start", target: "enrich" },
      { source: "fetch", target: "ok" },
      { source: "enrich", target: "ok" },
      { source: "ok", target: "write", branch: "TRUE" },
      { source: "ok", target: "alert", branch: "FALSE" },
      { source: "write", target: "notify" },
    ],
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), "dashboard-screenshot-"));
  const service = await startExampleService(0);
  const config = loadConfig({
    DATABASE_URL: `file:${path.join(dir, "pipelines.db")}`,
    LOG_LEVEL: "warn",
    HTTP_ACTION_ALLOWLIST: "127.0.0.1",
  });
  const app = buildApp(config, await createServices(config));
  const { url, dashboardUrl } = await app.start(0, "127.0.0.1");
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  try {
    const api = async <T>(query: string, variables: Record<string, unknown>): Promise<T> => {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as { data: T; errors?: unknown[] };
      if (body.errors) throw new Error(`API error: ${JSON.stringify(body.errors)}`);
      return body.data;
    };
    const { createPipeline } = await api<{ createPipeline: { id: string } }>(
      "mutation($input: PipelineInput!) { createPipeline(input: $input) { id } }",
      { input: pipeline(service.url) },
    );
    const { runPipeline } = await api<{ runPipeline: { id: string } }>(
      "mutation($id: ID!) { runPipeline(id: $id, triggerData: { item: 42 }) { id } }",
      { id: createPipeline.id },
    );

    const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
    const problems: string[] = [];
    await context.route("**/*", (route) => {
      const target = new URL(route.request().url());
      if (LOCAL.has(target.hostname)) return route.continue();
      problems.push(`request off this machine: ${target}`);
      return route.abort("blockedbyclient");
    });
    const page = await context.newPage();
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    // The page follows the run live from its start; the picture is taken once it has ended
    // and the panel (opened on the failed node) has its output.
    await page.goto(`${dashboardUrl}#/runs/${runPipeline.id}`);
    await page.locator("body[data-run-settled]").waitFor({ timeout: 120_000 });
    await page.locator("#panel-output").waitFor();
    await page.screenshot({ path: output });
    const status = (await page.locator("#run-status").textContent()) ?? "";
    if (problems.length) throw new Error(problems.join("\n"));
    console.log(
      `wrote ${path.relative(root, output)} (run ${runPipeline.id.slice(0, 8)}: ${status})`,
    );
  } finally {
    await browser.close();
    await app.stop();
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
