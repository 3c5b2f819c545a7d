/**
 * The README's walk-through runs as written: its GraphQL blocks, with the JSON variables that
 * follow them, in order, against a server and the example service it tells the reader to start.
 * Ids are carried over the way a reader would paste them (`"<pipeline id>"`, `"<run id>"`);
 * a JSON block holding `data` is the answer the README shows, and must be the answer given; the
 * table of events must be the events of that run. Only the service's port differs (4100 in the
 * README, a free one here).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { type OperationDefinitionNode, parse } from "graphql";
import { createClient } from "graphql-ws";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { type ExampleService, startExampleService } from "../examples/service.ts";
import { MemoryStore } from "../src/store/memory.ts";
import { repoRoot } from "./helpers/process.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

// Each test starts processes (a tsx start is a few seconds on a loaded 2-core machine).
vi.setConfig({ testTimeout: 90_000, hookTimeout: 180_000 });

interface Step {
  readonly document: string;
  variables?: Record<string, unknown>;
  expected?: unknown;
  /** The rows (seq, type, nodeId, attempt) of an events table that follows the block. */
  table?: string[][];
}

/** The walk-through's GraphQL blocks, each with the JSON blocks and the table after it. */
function walkThrough(readme: string): Step[] {
  const start = readme.indexOf("## Walk-through");
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end);
  const steps: Step[] = [];
  const pieces = /```(\w+)\n([\s\S]*?)```|((?:^\|.*\|\n)+)/gm;
  for (const match of section.matchAll(pieces)) {
    const [, lang, body, table] = match;
    const last = steps.at(-1);
    if (table && last) {
      last.table = table
        .split("\n")
        .filter((line) => /^\| \d+ \|/.test(line))
        .map((line) =>
          line
            .split("|")
            .slice(1, 5)
            .map((cell) => cell.trim()),
        );
    } else if (lang === "graphql") steps.push({ document: body! });
    else if (lang === "json" && last) {
      const value = JSON.parse(body!) as Record<string, unknown>;
      if ("data" in value) last.expected = value;
      else last.variables = value;
    }
  }
  return steps;
}

let server: TestServer;
let service: ExampleService;
beforeAll(async () => {
  service = await startExampleService(0);
  server = await startTestServer(new MemoryStore());
});
afterAll(async () => {
  await server.close();
  await service.close();
});

async function post(query: string, operationName?: string, variables?: unknown) {
  const response = await fetch(server.url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ query, operationName, variables }),
  });
  return (await response.json()) as { data?: Record<string, unknown>; errors?: unknown[] };
}

function subscribe(query: string): Promise<Record<string, unknown>[]> {
  const client = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
  const results: Record<string, unknown>[] = [];
  return new Promise<Record<string, unknown>[]>((resolve, reject) => {
    client.subscribe(
      { query },
      {
        next: (value) =>
          value.errors
            ? reject(new Error(JSON.stringify(value.errors)))
            : results.push(value.data!),
        error: reject,
        complete: () => resolve(results),
      },
    );
  }).finally(() => client.dispose());
}

async function waitForEnd(runId: string): Promise<void> {
  // Bounded: a walk-through run takes well under a second; 20 s is the test's limit anyway.
  for (let i = 0; i < 400; i++) {
    const { data } = await post("query($id: ID!) { run(id: $id) { status } }", undefined, {
      id: runId,
    });
    const status = (data?.run as { status?: string } | undefined)?.status;
    if (status !== "RUNNING" && status !== "QUEUED") return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`run ${runId} did not end`);
}

it("runs every GraphQL block of the walk-through, in order, with the answers it shows", async () => {
  const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
  const local = (text: string) => text.replaceAll("127.0.0.1:4100", `127.0.0.1:${service.port}`);
  const steps = walkThrough(local(readme));
  expect(steps.length).toBe(9);
  const ids: Record<string, string> = {};
  const fill = (text: string) =>
    text.replace(/<(pipeline id|run id)>/g, (_, key: string) => {
      if (!ids[key]) throw new Error(`no ${key} yet for:\n${text}`);
      return ids[key]!;
    });
  const ran: string[] = [];
  for (const step of steps) {
    const document = fill(step.document);
    const variables = step.variables ? JSON.parse(fill(JSON.stringify(step.variables))) : undefined;
    const operations = parse(document).definitions.filter(
      (d): d is OperationDefinitionNode => d.kind === "OperationDefinition",
    );
    for (const operation of operations) {
      const name = operation.name?.value;
      ran.push(`${operation.operation} ${name ?? ""}`.trim());
      if (operation.operation === "subscription") {
        const events = (await subscribe(document)).map(
          (r) =>
            r.runEvents as {
              seq: number;
              type: string;
              nodeId: string | null;
              attempt: number | null;
            },
        );
        expect(step.table, "the subscription is followed by its events table").toBeDefined();
        expect(
          events.map((e) => [
            String(e.seq),
            e.type,
            e.nodeId ?? "",
            e.attempt ? String(e.attempt) : "",
          ]),
        ).toEqual(step.table);
        continue;
      }
      const answer = await post(document, name, variables);
      expect(answer.errors, document).toBeUndefined();
      if (step.expected) expect(answer).toEqual(step.expected);
      const data = answer.data ?? {};
      if (name === "Breakers") {
        // The text says: "the fetch above failed twice, for item 99 and again in its re-run".
        const { breakers } = data.pipeline as { breakers: { nodeId: string }[] };
        expect(breakers.find((b) => b.nodeId === "fetch")).toEqual({
          nodeId: "fetch",
          state: "CLOSED",
          failureCount: 2,
          openedAt: null,
          halfOpenAt: null,
        });
      }
      const created = data.createPipeline as
        | { id: string; validation: { valid: boolean } }
        | undefined;
      if (created) {
        expect(created.validation).toEqual({ valid: true, errors: [] });
        ids["pipeline id"] = created.id;
      }
      const run = data.runPipeline as { id: string } | undefined;
      if (run) {
        ids["run id"] = run.id;
        await waitForEnd(run.id);
      }
      const rerun = data.rerunRun as { id: string; rerunOf: { id: string } } | undefined;
      if (rerun) {
        expect(rerun.rerunOf.id).toBe(ids["run id"]);
        await waitForEnd(rerun.id);
      }
    }
  }
  expect(ran).toEqual([
    "mutation Create",
    "mutation",
    "mutation",
    "subscription",
    "mutation",
    "query",
    "mutation",
    "mutation",
    "query Breakers",
    "mutation Reset",
  ]);
});
