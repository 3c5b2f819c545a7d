/**
 * Figure 11 (issue 9): the "joins" DAG, a TRIGGER then 20 layers of 100 PARALLEL nodes, each
 * joining 2 random nodes (seeded) of the layer before, on the real server (buildApp) on SQLite
 * and PostgreSQL. Per store: nodes/s (beside bare p-queue on the same DAG), bytes the run adds
 * to the database (beside the bytes its outputs make as full copies), and, while it runs, a
 * `{ __typename }` HTTP probe every 20 ms from another process, a small 3-node run started
 * 20 ms after it, and the server's longest event-loop block (beside the same measures idle).
 * Plus a scaling row: the same shape from 1,000 to 64,000 nodes (engine only), nodes/s.
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import Database from "better-sqlite3";
import pg from "pg";
import pino from "pino";
import { loadConfig } from "../src/config.ts";
import { normalizeDefinition } from "../src/domain/definition.ts";
import { createMemoryBus } from "../src/engine/bus.ts";
import { buildApp } from "../src/server/app.ts";
import { createServices } from "../src/services.ts";
import { type BenchDag, joinsDag, outputBytes } from "./lib/dag.ts";
import {
  collectGarbage,
  createBenchEngine,
  openFreshStore,
  type Provider,
  watchEnds,
} from "./lib/engine.ts";
import { type ProbeSample, startProbe, wallNow } from "./lib/probe.ts";
import { type FigureOptions, type FigureResult, type Row, row } from "./lib/report.ts";
import { median, percentile } from "./lib/stats.ts";
import { withTimeout } from "./lib/timeout.ts";
import { runOnPQueue } from "./throughput.ts";

const FIGURE = "11 joins";
const PROBE_INTERVAL_MS = 20;
const SMALL_RUN_DELAY_MS = 20;
const TARGET_RATE: Record<"sqlite" | "postgresql", number> = { sqlite: 10_000, postgresql: 5_000 };
const MB = 1024 * 1024;

const SMALL = {
  name: "bench-small-3",
  nodes: [
    { id: "start", type: "TRIGGER" as const },
    { id: "a", type: "PARALLEL" as const },
    { id: "b", type: "PARALLEL" as const },
  ],
  edges: [
    { source: "start", target: "a" },
    { source: "a", target: "b" },
  ],
};

/** Bytes the database holds: used pages on SQLite, `pg_database_size` on PostgreSQL. */
async function sizeReader(provider: "sqlite" | "postgresql", url: string) {
  if (provider === "sqlite") {
    const db = new Database(url.replace(/^file:/, ""), { readonly: true });
    const pragma = (name: string) => db.pragma(name, { simple: true }) as number;
    return {
      read: async () => (pragma("page_count") - pragma("freelist_count")) * pragma("page_size"),
      close: async () => void db.close(),
    };
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return {
    read: async () =>
      Number(
        (
          await client.query<{ size: string }>(
            "SELECT pg_database_size(current_database()) AS size",
          )
        ).rows[0]!.size,
      ),
    close: () => client.end(),
  };
}

interface HeavyRound {
  readonly ms: number;
  readonly bytes: number;
  readonly smallRunMs: number;
  readonly maxLagMs: number;
  /** Wall-clock window of the run, to pick the probes sent meanwhile. */
  readonly from: number;
  readonly to: number;
}

async function measureServer(
  provider: "sqlite" | "postgresql",
  dag: BenchDag,
  rounds: number,
  log: FigureOptions["log"],
) {
  const { store, url, drop } = await openFreshStore(provider);
  const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: "silent" });
  const { bus, waitForEnd } = watchEnds(createMemoryBus());
  const app = buildApp(
    config,
    await createServices(config, { store, bus, logger: pino({ level: "silent" }) }),
  );
  const size = await sizeReader(provider, url);
  const engine = app.services.engine;
  try {
    const { url: endpoint } = await app.start(0, "127.0.0.1");
    const heavyId = (await store.createPipeline(normalizeDefinition(dag.input))).id;
    const smallId = (await store.createPipeline(normalizeDefinition(SMALL))).id;
    const runToEnd = async (pipelineId: string, since = performance.now()) => {
      const run = await engine.runPipeline(pipelineId);
      const end = await withTimeout(waitForEnd(run.id), 120_000, `run ${run.id} to end`);
      if (end.event.type !== "RUN_COMPLETED")
        throw new Error(`run ${run.id} ended ${end.event.type}: ${JSON.stringify(end.event.data)}`);
      return end.at - since;
    };
    const probe = await startProbe({ url: endpoint, intervalMs: PROBE_INTERVAL_MS });
    let samples: ProbeSample[] = [];
    const idle = { from: 0, to: 0, smallRunMs: [] as number[], maxLagMs: 0 };
    const heavy: HeavyRound[] = [];
    try {
      // Idle: the probe and the small run with nothing else going on (after a second in which
      // the probe's first requests open their connection).
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const lag = monitorEventLoopDelay({ resolution: 10 });
      idle.from = wallNow();
      lag.enable();
      for (let i = 0; i < 10; i++) idle.smallRunMs.push(await runToEnd(smallId));
      await new Promise((resolve) => setTimeout(resolve, 1000));
      lag.disable();
      idle.to = wallNow();
      idle.maxLagMs = lag.max / 1e6;
      await runToEnd(heavyId); // warm-up
      for (let i = 0; i < rounds; i++) {
        collectGarbage();
        const before = await size.read();
        const loop = monitorEventLoopDelay({ resolution: 10 });
        const from = wallNow();
        loop.enable();
        const started = performance.now();
        // The small run is due 20 ms after the heavy one starts; a late timer counts against it.
        const small = new Promise<number>((resolve, reject) =>
          setTimeout(
            () => runToEnd(smallId, started + SMALL_RUN_DELAY_MS).then(resolve, reject),
            SMALL_RUN_DELAY_MS,
          ),
        );
        const ms = await runToEnd(heavyId, started);
        const smallRunMs = await small;
        loop.disable();
        const to = wallNow();
        const bytes = (await size.read()) - before;
        heavy.push({ ms, bytes, smallRunMs, maxLagMs: loop.max / 1e6, from, to });
        log(
          `${provider} joins: ${ms.toFixed(0)} ms, +${(bytes / MB).toFixed(2)} MB, small run ${smallRunMs.toFixed(0)} ms, max loop block ${(loop.max / 1e6).toFixed(0)} ms`,
        );
      }
    } finally {
      samples = await probe.stop();
    }
    const within = (from: number, to: number) => samples.filter((s) => s.at >= from && s.at <= to);
    const during = heavy.flatMap((r) => within(r.from, r.to));
    return { heavy, idle, probes: { idle: within(idle.from, idle.to), during } };
  } finally {
    await size.close();
    await app.stop(0);
    await drop();
  }
}

/** nodes/s of one run of the joins shape at several sizes, on the engine alone. */
async function scaling(provider: Provider, sizes: readonly (readonly [number, number])[]) {
  const bench = await createBenchEngine(provider, {
    limits: { maxNodes: 100_000, maxEdges: 300_000, maxConfigBytes: 64 * 1024, maxJsonDepth: 32 },
  });
  const rates: { nodes: number; rate: number; ms: number }[] = [];
  try {
    // A warm-up run of the smallest size first, so that the first size is not cold; sizes that
    // take well under a second are the median of 3 runs (one run of them is mostly noise here).
    for (const [index, [layers, width]] of [sizes[0]!, ...sizes].entries()) {
      const dag = joinsDag(layers, width);
      const pipelineId = await bench.createPipeline(dag.input);
      const times: number[] = [];
      for (let i = 0; i < (index > 0 && dag.nodes.length <= 5000 ? 3 : 1); i++) {
        collectGarbage();
        const started = performance.now();
        const run = await bench.engine.runPipeline(pipelineId);
        const end = await withTimeout(bench.waitForEnd(run.id), 240_000, `joins ${dag.name}`);
        if (end.event.type !== "RUN_COMPLETED")
          throw new Error(`${dag.name} ended ${end.event.type}: ${JSON.stringify(end.event.data)}`);
        times.push(end.at - started);
      }
      const ms = median(times);
      if (index > 0)
        rates.push({ nodes: dag.nodes.length, rate: (dag.nodes.length / ms) * 1000, ms });
    }
  } finally {
    await bench.close();
  }
  return rates;
}

export async function run({ quick, log }: FigureOptions): Promise<FigureResult> {
  const rounds = quick ? 2 : 4;
  const dag = joinsDag(20, 100);
  const nodes = dag.nodes.length;
  // The baseline takes milliseconds: warm-ups for the JIT, then the median of 9 rounds.
  for (let i = 0; i < 5; i++) await runOnPQueue(dag);
  const pqueueTimes: number[] = [];
  for (let i = 0; i < 9; i++) pqueueTimes.push(await runOnPQueue(dag));
  const pqueue = median(pqueueTimes);
  const pqueueRate = (nodes / pqueue) * 1000;
  const copies = outputBytes(dag);
  const rows: Row[] = [];
  const details: Record<string, unknown> = { dag: dag.name, nodes, edges: dag.edges.length };
  const p99 = (samples: readonly ProbeSample[]) =>
    percentile(
      samples.map((s) => s.ms),
      99,
    );
  for (const provider of ["sqlite", "postgresql"] as const) {
    const label = provider === "sqlite" ? "SQLite" : "PostgreSQL";
    const result = await measureServer(provider, dag, rounds, log);
    const { heavy, idle, probes } = result;
    const ms = median(heavy.map((r) => r.ms));
    const failedProbes = probes.during.filter((s) => !s.ok).length;
    const config = `${label}, 20 × 100, fan-in 2`;
    rows.push(
      row({
        figure: FIGURE,
        configuration: `${config} · throughput`,
        value: (nodes / ms) * 1000,
        unit: "nodes/s",
        detail: `${nodes.toLocaleString("en-US")} nodes, median of ${rounds} runs`,
        baseline: { label: "p-queue", value: pqueueRate },
        target: { op: ">=", value: TARGET_RATE[provider] },
      }),
      row({
        figure: FIGURE,
        configuration: `${config} · bytes stored per run`,
        value: median(heavy.map((r) => r.bytes)) / MB,
        unit: "MB",
        detail:
          provider === "sqlite" ? "used pages, before → after" : "pg_database_size, before → after",
        baseline: { label: "outputs as full copies", value: copies / MB },
        target: { op: "<=", value: 5 },
      }),
      row({
        figure: FIGURE,
        configuration: `${config} · p99 { __typename } probe during the run`,
        value: p99(probes.during),
        unit: "ms",
        detail: `${probes.during.length} probes every ${PROBE_INTERVAL_MS} ms, ${failedProbes} failed; max ${Math.max(...probes.during.map((s) => s.ms)).toFixed(0)} ms`,
        baseline: { label: "idle", value: p99(probes.idle) },
        target: { op: "<=", value: 100 },
      }),
      row({
        figure: FIGURE,
        configuration: `${config} · 3-node run started alongside, slowest`,
        value: Math.max(...heavy.map((r) => r.smallRunMs)),
        unit: "ms",
        detail: `due ${SMALL_RUN_DELAY_MS} ms after the heavy run's start; ${heavy.map((r) => r.smallRunMs.toFixed(0)).join(", ")} ms`,
        baseline: { label: "alone (median)", value: median(idle.smallRunMs) },
        target: { op: "<=", value: 200 },
      }),
      row({
        figure: FIGURE,
        configuration: `${config} · longest event-loop block during the run`,
        value: Math.max(...heavy.map((r) => r.maxLagMs)),
        unit: "ms",
        detail: "perf_hooks.monitorEventLoopDelay max, 10 ms resolution",
        baseline: { label: "idle", value: idle.maxLagMs },
        target: { op: "<=", value: 50 },
      }),
    );
    details[provider] = {
      heavy,
      idleSmallRunMs: idle.smallRunMs,
      idleMaxLagMs: idle.maxLagMs,
      probesIdle: probes.idle.length,
      probesDuring: probes.during.length,
      probeDuringMs: probes.during.map((s) => Math.round(s.ms * 10) / 10),
    };
  }
  // Scaling: layers and width grow together (paths into the last layer grow as 2^layers).
  const sizes = (
    [
      [10, 100],
      [20, 200],
      [40, 400],
      [80, 800],
    ] as const
  ).slice(0, quick ? 3 : 4);
  for (const provider of ["sqlite", "postgresql"] as const) {
    const rates = await scaling(provider, sizes);
    log(
      `${provider} scaling: ${rates.map((r) => `${r.nodes}: ${r.rate.toFixed(0)}/s`).join(", ")}`,
    );
    details[`${provider}Scaling`] = rates;
    const first = rates[0]!;
    for (const r of rates.slice(1))
      rows.push(
        row({
          figure: FIGURE,
          configuration: `${provider === "sqlite" ? "SQLite" : "PostgreSQL"}, joins scaling · ${r.nodes.toLocaleString("en-US")} nodes`,
          value: r.rate,
          unit: "nodes/s",
          detail: `${(r.ms / 1000).toFixed(2)} s per run; cost per node flat = ratio ≥ 0.8`,
          baseline: { label: `${first.nodes.toLocaleString("en-US")} nodes`, value: first.rate },
          target: { op: ">=", value: 0.8, on: "ratio" },
        }),
      );
  }
  return { rows, details };
}
