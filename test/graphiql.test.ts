/**
 * A new user's path in a real browser (Debian's Chromium through playwright-core): GraphiQL
 * loads from the server alone, its example tab creates a pipeline, a run starts, and the
 * runEvents subscription streams to the end over WebSocket.
 */
import { existsSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshStore } from "./helpers/databases.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { REQUIRE_SERVICES } from "./helpers/services.ts";

const CHROMIUM = "/usr/bin/chromium";
const available = existsSync(CHROMIUM);
if (!available) {
  if (REQUIRE_SERVICES)
    throw new Error(`${CHROMIUM} is required (REQUIRE_SERVICES=1): apt-get install chromium`);
  console.warn(`[tests] ${CHROMIUM} not found: the GraphiQL browser test is SKIPPED`);
}

// A real browser: on a loaded machine its first page takes seconds, so each test gets a minute.
describe.skipIf(!available)("GraphiQL in a browser", { timeout: 60_000 }, () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let cleanup: () => Promise<void>;
  const offHost: string[] = [];

  beforeAll(async () => {
    const fresh = await freshStore("sqlite");
    cleanup = fresh.cleanup;
    server = await startTestServer(fresh.store);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on("request", (request) => {
      const url = new URL(request.url());
      if (
        !["127.0.0.1", "localhost"].includes(url.hostname) &&
        !["data:", "blob:"].includes(url.protocol)
      )
        offHost.push(request.url());
    });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await cleanup?.();
  });

  async function execute(query: string): Promise<string> {
    await page.goto(`${server.url}?query=${encodeURIComponent(query)}`);
    await page.waitForSelector(".graphiql-container");
    await page.click(".graphiql-execute-button");
    const response = page.locator(".graphiql-response");
    await response.getByText(/"data"|"errors"/).waitFor();
    return (await response.innerText()).replace(/\u00a0/g, " ");
  }

  it("creates a pipeline from the first example tab, runs it and watches it to the end", async () => {
    await page.goto(server.url);
    await page.waitForSelector(".graphiql-container");
    expect((await page.locator(".graphiql-tab").allInnerTexts()).map((t) => t.trim())).toEqual([
      "CreatePipeline",
      "Run",
      "Watch",
      "Pipelines",
    ]);
    await page.click(".graphiql-execute-button");
    await page.getByRole("menuitem", { name: "CreatePipeline" }).click();
    await page.locator(".graphiql-response").getByText('"createPipeline"').waitFor();
    const created = (await page.locator(".graphiql-response").innerText()).replace(/\u00a0/g, " ");
    expect(created).toContain('"valid": true');
    const pipelineId = /"id":\s*"([0-9a-f-]{36})"/.exec(created)?.[1];
    expect(pipelineId).toBeDefined();

    const started = await execute(
      `mutation { runPipeline(id: "${pipelineId}", triggerData: { n: 42 }) { id status } }`,
    );
    expect(started).toContain('"status": "RUNNING"');
    const runId = /"id":\s*"([0-9a-f-]{36})"/.exec(started)?.[1];

    await page.goto(
      `${server.url}?query=${encodeURIComponent(`subscription { runEvents(runId: "${runId}") { seq type nodeId } }`)}`,
    );
    await page.waitForSelector(".graphiql-container");
    await page.click(".graphiql-execute-button");
    // GraphiQL shows the latest event of the stream; the last one is the terminal event.
    await page
      .locator(".graphiql-response")
      .getByText("RUN_COMPLETED")
      .waitFor({ timeout: 45_000 });
    const last = (await page.locator(".graphiql-response").innerText()).replace(/\u00a0/g, " ");
    expect(last).toContain('"seq": 11');

    const state = await execute(`{ run(id: "${runId}") { status nodeRuns { nodeId status } } }`);
    expect(JSON.parse(state)).toEqual({
      data: {
        run: {
          status: "COMPLETED",
          nodeRuns: [
            { nodeId: "start", status: "COMPLETED" },
            { nodeId: "check", status: "COMPLETED" },
            { nodeId: "big", status: "COMPLETED" },
            { nodeId: "wait", status: "COMPLETED" },
            { nodeId: "small", status: "SKIPPED" },
          ],
        },
      },
    });
    // Everything the page loaded came from the server itself.
    expect(offHost).toEqual([]);
  });
});
