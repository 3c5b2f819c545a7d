/**
 * The dashboard's connection and forms in a real browser: a WebSocket killed mid-run is opened
 * again with `after` = the last seq seen and the log has every event once; a WebSocket that
 * cannot connect falls back to SSE; the API key travels on HTTP, SSE and graphql-ws; a pasted
 * definition shows its validation errors beside the nodes they name (the README's `{input}`
 * variables are read as their input), an uploaded one is created; the list searches by name.
 * No request leaves 127.0.0.1.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { chromiumAvailable, launchChromium, localOnlyContext } from "./helpers/browser.ts";
import { freshStore } from "./helpers/databases.ts";
import { type Gate, startGate } from "./helpers/gate.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { REQUIRE_SERVICES } from "./helpers/services.ts";
import { waitFor } from "./helpers/wait.ts";

if (!chromiumAvailable && REQUIRE_SERVICES)
  throw new Error("/usr/bin/chromium is required (REQUIRE_SERVICES=1)");

const held = (gate: Gate) => ({
  name: "held",
  nodes: [
    { id: "start", type: "TRIGGER" },
    { id: "h1", type: "ACTION", config: { action: "http", url: `${gate.url}/held` } },
    { id: "h2", type: "ACTION", config: { action: "log", message: "two" } },
    { id: "h3", type: "ACTION", config: { action: "log", message: "three" } },
  ],
  edges: [
    { source: "start", target: "h1" },
    { source: "h1", target: "h2" },
    { source: "h2", target: "h3" },
  ],
});

describe.skipIf(!chromiumAvailable)(
  "the dashboard's live stream and forms",
  { timeout: 90_000 },
  () => {
    let server: TestServer;
    let origin: string;
    let gate: Gate;
    let browser: Browser;
    let context: BrowserContext;
    let offHost: string[];
    let page: Page;
    let cleanup: () => Promise<void>;

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

    async function startHeldRun(): Promise<string> {
      const { createPipeline } = await api<{ createPipeline: { id: string } }>(
        "mutation($input: PipelineInput!) { createPipeline(input: $input) { id } }",
        { input: held(gate) },
      );
      const { runPipeline } = await api<{ runPipeline: { id: string } }>(
        "mutation($id: ID!) { runPipeline(id: $id) { id } }",
        { id: createPipeline.id },
      );
      return runPipeline.id;
    }

    async function storedSeqs(runId: string): Promise<number[]> {
      const { run } = await api<{ run: { events: { seq: number }[] } }>(
        "query($id: ID!) { run(id: $id) { events(first: 1000) { seq } } }",
        { id: runId },
      );
      return run.events.map((e) => e.seq);
    }

    const shownSeqs = () =>
      page.$$eval("#event-log .log-row", (rows) =>
        rows.map((r) => Number((r as HTMLElement).dataset.seq)),
      );

    beforeAll(async () => {
      const fresh = await freshStore("sqlite");
      cleanup = fresh.cleanup;
      server = await startTestServer(fresh.store);
      origin = server.url.replace(/\/graphql$/, "");
      gate = await startGate();
      browser = await launchChromium();
    });
    afterAll(async () => {
      await browser?.close();
      await gate?.close();
      await server?.close();
      await cleanup?.();
    });
    afterEach(async () => {
      expect(offHost).toEqual([]);
      await context?.close();
    });

    async function openPage(): Promise<Page> {
      ({ context, offHost } = await localOnlyContext(browser));
      page = await context.newPage();
      // Every state the live mark takes, however briefly.
      await page.addInitScript(() => {
        const states: string[] = [];
        (window as unknown as { liveStates: string[] }).liveStates = states;
        new MutationObserver(() => {
          const state = document.getElementById("live")?.dataset.state;
          if (state && states.at(-1) !== state) states.push(state);
        }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
      });
      return page;
    }
    const liveStates = () =>
      page.evaluate(() => (window as unknown as { liveStates: string[] }).liveStates);

    it("resumes a killed WebSocket from the last seq: every event once, in order", async () => {
      await openPage();
      const subscribed: { after: unknown; authorization: unknown }[] = [];
      let init: Record<string, unknown> = {};
      const kills: (() => Promise<void>)[] = [];
      await page.routeWebSocket(/\/graphql$/, (ws) => {
        const upstream = ws.connectToServer();
        ws.onMessage((message) => {
          const parsed = JSON.parse(String(message)) as {
            type: string;
            payload?: { variables?: { after?: unknown } } & Record<string, unknown>;
          };
          if (parsed.type === "connection_init") init = parsed.payload ?? {};
          if (parsed.type === "subscribe")
            subscribed.push({
              after: parsed.payload?.variables?.after,
              authorization: init.authorization,
            });
          upstream.send(message);
        });
        upstream.onMessage((message) => ws.send(message));
        kills.push(async () => {
          await ws.close({ code: 1001, reason: "killed by the test" });
          await upstream.close();
        });
      });
      await page.goto(`${origin}/dashboard`);
      await page.locator("#api-key").fill("dash-key-1");
      await page.locator("#api-key").dispatchEvent("change");
      const runId = await startHeldRun();
      // The page reads the stored events over HTTP, then subscribes after the last of them.
      await waitFor("h1's request at the gate", () => gate.held === 1);
      await waitFor("h1's start stored", async () => (await storedSeqs(runId)).length === 4);
      await page.goto(`${origin}/dashboard#/runs/${runId}`);
      await page.locator('g.node[data-id="h1"][data-status="running"]').waitFor();
      await page.locator('#live[data-state="live"]').waitFor();
      const before = await shownSeqs();
      expect(before).toEqual([1, 2, 3, 4]);
      await kills[0]!();
      // The rest of the run happens while the page is disconnected or reconnecting.
      gate.release();
      await page.locator("body[data-run-settled]").waitFor({ timeout: 45_000 });
      const stored = await storedSeqs(runId);
      expect(stored).toEqual(Array.from({ length: stored.length }, (_, i) => i + 1));
      expect(await shownSeqs()).toEqual(stored);
      expect(subscribed).toEqual([
        { after: 4, authorization: "Bearer dash-key-1" },
        { after: 4, authorization: "Bearer dash-key-1" },
      ]);
      const states = await liveStates();
      expect(states.slice(states.indexOf("reconnecting"))).toEqual([
        "reconnecting",
        "live",
        "ended",
      ]);
      expect(await page.locator("#log-count").innerText()).toBe(
        `${stored.length} of ${stored.length} events · last seq ${stored.length}`,
      );
    });

    it("falls back to SSE when the WebSocket cannot connect, the key on every request", async () => {
      await openPage();
      let refused = 0;
      await page.routeWebSocket(/\/graphql$/, (ws) => {
        refused++;
        void ws.close({ code: 1011, reason: "no WebSocket here" });
      });
      const authorizations = new Set<string>();
      page.on("request", (request) => {
        if (new URL(request.url()).pathname === "/graphql")
          authorizations.add(request.headers().authorization ?? "none");
      });
      await page.addInitScript(() => localStorage.setItem("pipelines.apiKey", "dash-key-2"));
      const runId = await startHeldRun();
      // Every event until the release is stored before the page opens: the stream then sends
      // nothing until the release, and must show live all the same.
      await waitFor("h1's request at the gate", () => gate.held === 1);
      await page.goto(`${origin}/dashboard#/runs/${runId}`);
      await page
        .locator('#live[data-state="live"][data-transport="sse"]')
        .waitFor({ timeout: 30_000 });
      expect(await page.locator("#live").innerText()).toBe("live (SSE)");
      gate.release();
      await page.locator("body[data-run-settled]").waitFor({ timeout: 45_000 });
      expect(await shownSeqs()).toEqual(await storedSeqs(runId));
      expect(refused).toBe(2);
      expect([...authorizations]).toEqual(["Bearer dash-key-2"]);
    });

    it("shows validation errors beside the nodes they name; creates an uploaded definition", async () => {
      await openPage();
      await page.goto(`${origin}/dashboard`);
      // The README's createPipeline variables, pasted whole, are read as their input.
      await page.locator("#definition").fill(JSON.stringify({ input: held(gate) }, null, 2));
      await page.locator("#validate").click();
      await page.locator("#create-result .ok").waitFor();
      expect(await page.locator("#create-result").innerText()).toBe("Valid.");
      const draft = [
        "name: draft",
        "nodes:",
        "  - { id: start, type: TRIGGER }",
        "  - { id: check, type: CONDITION, config: { expression: 'inputs.(' } }",
        "  - { id: act, type: ACTION, config: { action: nope } }",
        "  - { id: island, type: PARALLEL }",
        "edges:",
        "  - { source: start, target: check }",
        "  - { source: check, target: act }",
      ].join("\n");
      await page.locator("#definition").fill(draft);
      await page.locator("#validate").click();
      await page.locator(".node-errors").waitFor();
      const shown = await page.$$eval(".node-errors li", (items) =>
        items.map((li) => [
          (li as HTMLElement).dataset.node,
          [...li.querySelectorAll<HTMLElement>(".error")].map((e) => e.dataset.code),
        ]),
      );
      const { validatePipeline } = await api<{
        validatePipeline: { errors: { code: string; nodeId: string | null }[] };
      }>(
        "mutation($d: PipelineInput!) { validatePipeline(definition: $d) { errors { code nodeId } } }",
        {
          d: {
            name: "draft",
            nodes: [
              { id: "start", type: "TRIGGER" },
              { id: "check", type: "CONDITION", config: { expression: "inputs.(" } },
              { id: "act", type: "ACTION", config: { action: "nope" } },
              { id: "island", type: "PARALLEL" },
            ],
            edges: [
              { source: "start", target: "check" },
              { source: "check", target: "act" },
            ],
          },
        },
      );
      const expected = ["start", "check", "act", "island"].map((id) => [
        id,
        validatePipeline.errors.filter((e) => e.nodeId === id).map((e) => e.code),
      ]);
      expect(shown).toEqual(expected);
      expect(Object.fromEntries(shown)).toMatchObject({
        check: ["INVALID_EXPRESSION"],
        act: ["UNKNOWN_ACTION"],
        island: ["UNREACHABLE_NODE"],
      });
      // Nothing was stored; an uploaded JSON file is.
      await page.locator("#definition-file").setInputFiles({
        name: "uploaded.json",
        mimeType: "application/json",
        buffer: Buffer.from(JSON.stringify(held(gate)).replace('"held"', '"uploaded"')),
      });
      await expect.poll(() => page.locator("#definition").inputValue()).toContain("uploaded");
      await page.locator("#create").click();
      await page.waitForURL(/#\/pipelines\//);
      await page.locator("#dag g.node").first().waitFor();
      expect(await page.locator("h1").innerText()).toBe("uploaded version 1");
      const types = await page.$$eval("#dag g.node", (nodes) =>
        nodes.map((n) => `${(n as SVGGElement).dataset.id}:${(n as SVGGElement).dataset.type}`),
      );
      expect(types).toEqual(["start:TRIGGER", "h1:ACTION", "h2:ACTION", "h3:ACTION"]);
      // The list finds it by name, and not the others.
      await page.goto(`${origin}/dashboard#/`);
      await page.locator("#pipelines").waitFor();
      await page.locator("#search").fill("uplo");
      expect(
        await page.$$eval("#pipelines tbody tr td:first-child", (cells) =>
          cells.map((c) => c.textContent),
        ),
      ).toEqual(["uploaded"]);
    });
  },
);
