/**
 * Figure 10: reads as history grows. The server (buildApp, in process through `yoga.fetch`,
 * engine stopped so that only the requests query) on SQLite and PostgreSQL, with 20 pipelines
 * that each ran once for real and, beside them, copies of a finished run (3 nodes, 8 events)
 * made with bulk SQL (lib/history.ts): two servers, one on a database of 1,000 stored runs, one
 * on 100,000 (20,000 in quick mode). Every hot query of the schema is timed on both, their
 * samples interleaved; the row is the time at the large size beside the time at 1,000.
 */
import { performance } from "node:perf_hooks";
import pino from "pino";
import { loadConfig } from "../src/config.ts";
import { type App, buildApp } from "../src/server/app.ts";
import { createServices } from "../src/services.ts";
import { collectGarbage, openFreshStore } from "./lib/engine.ts";
import { openHistoryWriter } from "./lib/history.ts";
import { type FigureOptions, type FigureResult, type Row, row } from "./lib/report.ts";
import { median } from "./lib/stats.ts";
import { withTimeout } from "./lib/timeout.ts";

const FIGURE = "10 history";
const PIPELINES = 20;
const SMALL = 1000;

const PIPELINE = (i: number) => ({
  name: `history-${String(i).padStart(2, "0")}`,
  nodes: [
    { id: "start", type: "TRIGGER" as const, config: {} },
    { id: "a", type: "PARALLEL" as const, config: {} },
    { id: "b", type: "PARALLEL" as const, config: {} },
  ],
  edges: [
    { source: "start", target: "a" },
    { source: "a", target: "b" },
  ],
  maxRetriesPerNode: 3,
  timeoutSeconds: 3600,
  maxConcurrency: null,
  breaker: { failureThreshold: 5, recoveryTimeoutMs: 60_000 },
});

interface Context {
  readonly pipelineId: string;
  /** An old (copied) run, different for every sample so that no cache answers it. */
  readonly oldRunId: () => string;
}

/** The queries a dashboard sends, by name. */
const QUERIES: Record<string, (c: Context) => string> = {
  "pipelines(first: 20) { runs(first: 5) }": () =>
    "{ pipelines(first: 20) { edges { node { id name runCount runs(first: 5) { edges { node { id status startedAt } } } } } } }",
  "runs(first: 20)": () => "{ runs(first: 20) { edges { node { id status pipeline { id } } } } }",
  "runs(status: [FAILED]), no match": () =>
    "{ runs(status: [FAILED], first: 20) { edges { node { id status } } pageInfo { hasNextPage } } }",
  "runs(pipelineId, first: 20)": (c) =>
    `{ runs(pipelineId: "${c.pipelineId}", first: 20) { edges { node { id status } } } }`,
  "runs(pipelineId, status: [COMPLETED], first: 20)": (c) =>
    `{ runs(pipelineId: "${c.pipelineId}", status: [COMPLETED], first: 20) { edges { node { id } } } }`,
  "run(id) { nodeRuns }": (c) =>
    `{ run(id: "${c.oldRunId()}") { id status nodeRuns { nodeId status attempts output startedAt completedAt } } }`,
  "run(id) { events } (the runEvents page)": (c) =>
    `{ run(id: "${c.oldRunId()}") { id events(after: 0) { seq type nodeId at data } } }`,
};

async function query(app: App, text: string): Promise<number> {
  const started = performance.now();
  const response = await app.yoga.fetch("http://127.0.0.1/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ query: text }),
  });
  const body = (await response.json()) as { errors?: unknown[] };
  const ms = performance.now() - started;
  if (body.errors) throw new Error(`${text}: ${JSON.stringify(body.errors)}`);
  return ms;
}

/** Medians per query, the two servers' samples interleaved so that both see the same load. */
async function timeBoth(small: HistoryServer, large: HistoryServer, rounds: number) {
  const result: Record<string, { small: number; large: number }> = {};
  for (const [name, make] of Object.entries(QUERIES)) {
    for (let i = 0; i < 5; i++) {
      await query(small.app, make(small.context));
      await query(large.app, make(large.context));
    }
    collectGarbage();
    const times = { small: [] as number[], large: [] as number[] };
    for (let i = 0; i < rounds; i++) {
      times.small.push(await query(small.app, make(small.context)));
      times.large.push(await query(large.app, make(large.context)));
    }
    result[name] = { small: median(times.small), large: median(times.large) };
  }
  return result;
}

interface HistoryServer {
  readonly app: App;
  readonly context: Context;
  readonly seedMs: number;
  close(): Promise<void>;
}

/** A server on a fresh database holding `total` runs: 20 real ones, the rest copies. */
async function openHistoryServer(
  provider: "sqlite" | "postgresql",
  total: number,
): Promise<HistoryServer> {
  const { store, url, drop } = await openFreshStore(provider);
  const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: "silent" });
  const app = buildApp(
    config,
    await createServices(config, { store, logger: pino({ level: "silent" }) }),
  );
  const writer = await openHistoryWriter(provider, url);
  const close = async () => {
    await writer.close();
    await app.stop(0);
    await drop();
  };
  try {
    await app.start(0, "127.0.0.1");
    const pipelineIds: string[] = [];
    let template = "";
    for (let i = 0; i < PIPELINES; i++) {
      const pipeline = await store.createPipeline(PIPELINE(i));
      pipelineIds.push(pipeline.id);
      const started = await app.services.engine.runPipeline(pipeline.id, { ticket: i });
      const drained = (async () => {
        for await (const _ of await app.services.engine.events(started.id)) {
          // the stream completes after the terminal event
        }
      })();
      await withTimeout(drained, 30_000, `run ${started.id} to end`);
      template ||= started.id;
    }
    // Only the requests query from here on: no polling, no lease renewals.
    await app.services.engine.stop(0);
    const started = performance.now();
    await writer.copyRuns(template, pipelineIds, PIPELINES, total);
    await writer.analyze();
    const seedMs = performance.now() - started;
    let sample = 0;
    const context: Context = {
      pipelineId: pipelineIds[PIPELINES - 1]!,
      // A different old run per sample, so that no cache of finished runs answers it.
      oldRunId: () => writer.idOf(PIPELINES + ((sample++ * 7919) % (total - PIPELINES))),
    };
    return { app, context, seedMs, close };
  } catch (error) {
    await close();
    throw error;
  }
}

export async function run({ quick, log }: FigureOptions): Promise<FigureResult> {
  const large = quick ? 20_000 : 100_000;
  const rounds = quick ? 15 : 40;
  const rows: Row[] = [];
  const details: Record<string, unknown> = { small: SMALL, large, rounds };
  for (const provider of ["sqlite", "postgresql"] as const) {
    const label = provider === "sqlite" ? "SQLite" : "PostgreSQL";
    const small = await openHistoryServer(provider, SMALL);
    let times: Awaited<ReturnType<typeof timeBoth>>;
    let seedMs: number;
    try {
      const big = await openHistoryServer(provider, large);
      seedMs = big.seedMs;
      try {
        times = await timeBoth(small, big, rounds);
      } finally {
        await big.close();
      }
    } finally {
      await small.close();
    }
    log(`${provider}: ${large} runs copied in ${seedMs.toFixed(0)} ms`);
    details[provider] = { medianMs: times, seedMs };
    for (const name of Object.keys(QUERIES)) {
      const { small, large: big } = times[name]!;
      rows.push(
        row({
          figure: FIGURE,
          configuration: `${label}, ${large.toLocaleString("en-US")} stored runs · ${name}`,
          value: big,
          unit: "ms",
          detail: `median of ${rounds}`,
          baseline: { label: `${SMALL.toLocaleString("en-US")} runs`, value: small },
          target: { op: "<=", value: 1.5, on: "ratio" },
        }),
      );
    }
  }
  return { rows, details };
}
