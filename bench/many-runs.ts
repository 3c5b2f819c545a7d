/**
 * Figure 8: many small runs. 2,000 runs of a one-node pipeline (its TRIGGER) started at once
 * (2,000 `engine.runPipeline` calls in the same moment), timed from the first call to the last
 * terminal event published (after it is stored): runs/s. Peers on the same machine, same
 * moment: BullMQ on Redis beside SQLite (2,000 no-op jobs added at once, worker concurrency 64,
 * the engine's node slots), graphile-worker 0.17 on PostgreSQL beside PostgreSQL, with its
 * defaults and tuned (see lib/peers.ts). Also the statements the engine sends per run.
 */
import { performance } from "node:perf_hooks";
import {
  type BenchEngine,
  collectGarbage,
  createBenchEngine,
  type Provider,
} from "./lib/engine.ts";
import { bullmqBurst, GRAPHILE_TUNED, graphileBurst } from "./lib/peers.ts";
import { type FigureOptions, type FigureResult, type Row, row } from "./lib/report.ts";
import { median } from "./lib/stats.ts";
import { withTimeout } from "./lib/timeout.ts";

const FIGURE = "8 many runs";
const RUNS = 2000;
const BULLMQ_CONCURRENCY = 64;

const ONE_NODE = {
  name: "bench-one-node",
  nodes: [{ id: "start", type: "TRIGGER" as const }],
  edges: [],
};

interface Sample {
  readonly ms: number;
  readonly statements: number;
}

/** ms for `count` runs started at once to end, and the statements they took. */
async function burst(bench: BenchEngine, pipelineId: string, count: number): Promise<Sample> {
  const queries = bench.store.stats.queries;
  const started = performance.now();
  const runs = await Promise.all(
    Array.from({ length: count }, (_, i) => bench.engine.runPipeline(pipelineId, { i })),
  );
  const ends = await withTimeout(
    Promise.all(runs.map((r) => bench.waitForEnd(r.id))),
    180_000,
    `${count} one-node runs on ${bench.provider}`,
  );
  const failed = ends.filter((e) => e.event.type !== "RUN_COMPLETED");
  if (failed.length > 0)
    throw new Error(`${failed.length} runs did not complete, e.g. ${failed[0]!.event.type}`);
  const last = Math.max(...ends.map((e) => e.at));
  return { ms: last - started, statements: bench.store.stats.queries - queries };
}

/**
 * `rounds` rounds, each of `count` runs started at once on a fresh engine (warmed up with 100
 * runs, closed after), then one round of the peer with no engine open, so that both see the
 * same machine load and the peer shares the process with nothing of ours.
 */
async function interleaved(
  provider: Provider,
  count: number,
  rounds: number,
  peer: () => Promise<number>,
): Promise<{ engine: Sample[]; peer: number[] }> {
  const samples = { engine: [] as Sample[], peer: [] as number[] };
  await peer(); // warm-up, untimed
  for (let i = 0; i < rounds; i++) {
    const bench = await createBenchEngine(provider);
    try {
      const pipelineId = await bench.createPipeline(ONE_NODE);
      await burst(bench, pipelineId, 100);
      collectGarbage();
      samples.engine.push(await burst(bench, pipelineId, count));
    } finally {
      await bench.close();
    }
    collectGarbage();
    samples.peer.push(await peer());
  }
  return samples;
}

export async function run({ quick, log }: FigureOptions): Promise<FigureResult> {
  const rounds = quick ? 3 : 5;
  const rate = (ms: number) => (RUNS / ms) * 1000;
  const rows: Row[] = [];
  const details: Record<string, unknown> = { runs: RUNS, rounds };

  const { engine: sqlite, peer: bullmq } = await interleaved("sqlite", RUNS, rounds, () =>
    bullmqBurst(RUNS, BULLMQ_CONCURRENCY),
  );
  const { engine: postgres, peer: graphileTuned } = await interleaved(
    "postgresql",
    RUNS,
    rounds,
    () => graphileBurst(RUNS, "tuned"),
  );
  // Defaults take seconds a round (one job at a time): one round, after the others.
  const graphileDefaults = [await graphileBurst(RUNS, "defaults")];
  log(
    `sqlite ${sqlite.map((s) => s.ms.toFixed(0)).join(", ")} ms; BullMQ ${bullmq.map((t) => t.toFixed(0)).join(", ")} ms; postgresql ${postgres.map((s) => s.ms.toFixed(0)).join(", ")} ms; graphile-worker defaults ${graphileDefaults.map((t) => t.toFixed(0)).join(", ")} ms, tuned ${graphileTuned.map((t) => t.toFixed(0)).join(", ")} ms`,
  );
  const statements = (samples: { statements: number }[]) =>
    `${median(samples.map((s) => s.statements)).toLocaleString("en-US")} statements per ${RUNS.toLocaleString("en-US")} runs`;
  const sqliteMs = median(sqlite.map((s) => s.ms));
  const postgresMs = median(postgres.map((s) => s.ms));
  rows.push(
    row({
      figure: FIGURE,
      configuration: `${RUNS.toLocaleString("en-US")} one-node runs at once · SQLite`,
      value: rate(sqliteMs),
      unit: "runs/s",
      detail: `${statements(sqlite)}; BullMQ worker concurrency ${BULLMQ_CONCURRENCY}`,
      baseline: { label: "BullMQ", value: rate(median(bullmq)) },
      target: { op: ">=", value: 1, on: "ratio" },
    }),
    row({
      figure: FIGURE,
      configuration: `${RUNS.toLocaleString("en-US")} one-node runs at once · PostgreSQL`,
      value: rate(postgresMs),
      unit: "runs/s",
      detail: `${statements(postgres)}; graphile-worker defaults: 1 job at a time, one addJob per job`,
      baseline: { label: "graphile-worker defaults", value: rate(median(graphileDefaults)) },
      target: { op: ">=", value: 1, on: "ratio" },
    }),
    row({
      figure: FIGURE,
      configuration: `${RUNS.toLocaleString("en-US")} one-node runs at once · PostgreSQL vs tuned`,
      value: rate(postgresMs),
      unit: "runs/s",
      detail: `graphile-worker tuned: concurrency ${GRAPHILE_TUNED.concurrency}, localQueue ${GRAPHILE_TUNED.localQueue.size}, completeJobBatchDelay ${GRAPHILE_TUNED.completeJobBatchDelay}, one addJobs call`,
      baseline: { label: "graphile-worker tuned", value: rate(median(graphileTuned)) },
    }),
  );
  Object.assign(details, {
    sqlite,
    postgresql: postgres,
    bullmqMs: bullmq,
    bullmqConcurrency: BULLMQ_CONCURRENCY,
    graphileDefaultsMs: graphileDefaults,
    graphileTunedMs: graphileTuned,
    graphileTuned: GRAPHILE_TUNED,
  });
  return { rows, details };
}
