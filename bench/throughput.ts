/**
 * Figure 1: executor throughput. The same seeded DAG of PARALLEL nodes runs through the Engine
 * on each store (runPipeline → terminal event published, which happens after it is stored),
 * and on two bare schedulers as baselines: p-queue (each node a no-op task queued when its
 * predecessors are done) and p-graph. One warm-up, then the median of several rounds.
 */
import { performance } from "node:perf_hooks";
import { PGraph, type PGraphNodeRecord } from "p-graph";
import PQueue from "p-queue";
import { type BenchDag, type DagShape, generateDag, outputBytes } from "./lib/dag.ts";
import {
  type BenchEngine,
  collectGarbage,
  createBenchEngine,
  type Provider,
} from "./lib/engine.ts";
import { type FigureOptions, type FigureResult, type Row, row } from "./lib/report.ts";
import { median } from "./lib/stats.ts";

const FIGURE = "1 throughput";
/** The engine's default MAX_CONCURRENT_NODES, given to the baselines too. */
const CONCURRENCY = 64;
const TARGETS: Partial<Record<Provider, number>> = { sqlite: 10_000, postgresql: 5_000 };

/** Bare p-queue: a node's task is queued once all its predecessors' tasks are done. */
export async function runOnPQueue(dag: BenchDag): Promise<number> {
  const started = performance.now();
  const index = new Map(dag.nodes.map((id, i) => [id, i]));
  const successors: number[][] = dag.nodes.map(() => []);
  const waiting = new Int32Array(dag.nodes.length);
  for (const [source, target] of dag.edges) {
    successors[index.get(source)!]!.push(index.get(target)!);
    waiting[index.get(target)!]!++;
  }
  const queue = new PQueue({ concurrency: CONCURRENCY });
  let done = 0;
  await new Promise<void>((resolve, reject) => {
    const start = (node: number) => {
      queue
        .add(async () => {})
        .then(() => {
          if (++done === dag.nodes.length) resolve();
          for (const next of successors[node]!) if (--waiting[next]! === 0) start(next);
        }, reject);
    };
    start(0);
  });
  return performance.now() - started;
}

/** p-graph: the same nodes and dependency list, a shared no-op runner. */
async function runOnPGraph(dag: BenchDag): Promise<number> {
  const started = performance.now();
  const nodes: PGraphNodeRecord = {};
  for (const id of dag.nodes) nodes[id] = {};
  await new PGraph(
    nodes,
    dag.edges.map(([source, target]) => [source, target]),
  ).run({ concurrency: CONCURRENCY, run: () => undefined });
  return performance.now() - started;
}

async function runOnEngine(bench: BenchEngine, pipelineId: string): Promise<number> {
  const started = performance.now();
  const run = await bench.engine.runPipeline(pipelineId);
  const end = await bench.waitForEnd(run.id);
  if (end.event.type !== "RUN_COMPLETED")
    throw new Error(`run ${run.id} ended ${end.event.type}: ${JSON.stringify(end.event.data)}`);
  return end.at - started;
}

/** `warmups` untimed runs, then `count` timed ones, each after a garbage collection. */
async function rounds(count: number, once: () => Promise<number>, warmups = 1): Promise<number[]> {
  for (let i = 0; i < warmups; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    collectGarbage();
    times.push(await once());
  }
  return times;
}

/** Checks once, outside the timing, that every node of a run was stored COMPLETED. */
async function checkStored(bench: BenchEngine, pipelineId: string, size: number): Promise<void> {
  const { items } = await bench.store.listRuns({ first: 1, pipelineId });
  const run = items[0]!;
  const nodeRuns = (await bench.store.getNodeRuns([run.id])).get(run.id) ?? [];
  const completed = nodeRuns.filter((n) => n.status === "COMPLETED").length;
  const events = await bench.store.getEvents(run.id, 0);
  if (run.status !== "COMPLETED" || completed !== size || events.length !== 2 * size + 2) {
    throw new Error(
      `run ${run.id} on ${bench.provider}: ${run.status}, ${completed}/${size} node runs completed, ${events.length} events`,
    );
  }
}

export async function run({ quick, log }: FigureOptions): Promise<FigureResult> {
  const sizes = quick ? [2000] : [2000, 10_000];
  const shapes: DagShape[] = ["wide", "deep"];
  const providers: Provider[] = ["memory", "sqlite", "postgresql"];
  const roundCount = quick ? 3 : 5;
  const rows: Row[] = [];
  const details: Record<string, unknown>[] = [];
  for (const size of sizes) {
    for (const shape of shapes) {
      const dag = generateDag(shape, size);
      const label = `${shape} ${size.toLocaleString("en-US")}`;
      // The baselines take milliseconds: more rounds, and enough warm-ups for the JIT.
      const pqueue = median(await rounds(roundCount + 4, () => runOnPQueue(dag), 5));
      const pgraph = median(await rounds(roundCount + 4, () => runOnPGraph(dag), 5));
      const rate = (ms: number) => (size / ms) * 1000;
      const pqueueBaseline = { label: "p-queue", value: rate(pqueue) };
      log(`${label}: p-queue ${pqueue.toFixed(1)} ms, p-graph ${pgraph.toFixed(1)} ms`);
      rows.push(
        row({
          figure: FIGURE,
          configuration: `${label} · bare p-queue`,
          value: rate(pqueue),
          unit: "nodes/s",
          detail: `${((pqueue * 1000) / size).toFixed(2)} µs/node`,
        }),
        row({
          figure: FIGURE,
          configuration: `${label} · p-graph`,
          value: rate(pgraph),
          unit: "nodes/s",
          detail: `${((pgraph * 1000) / size).toFixed(2)} µs/node`,
          baseline: pqueueBaseline,
        }),
      );
      const entry: Record<string, unknown> = {
        dag: dag.name,
        nodes: dag.nodes.length,
        edges: dag.edges.length,
        outputBytesPerRun: outputBytes(dag),
        pqueueMs: pqueue,
        pgraphMs: pgraph,
      };
      for (const provider of providers) {
        const bench = await createBenchEngine(provider);
        try {
          const pipelineId = await bench.createPipeline(dag.input);
          const queriesBefore = bench.store.stats.queries;
          const times = await rounds(roundCount, () => runOnEngine(bench, pipelineId));
          const queries = (bench.store.stats.queries - queriesBefore) / (roundCount + 1);
          await checkStored(bench, pipelineId, size);
          const ms = median(times);
          log(`${label} on ${provider}: ${times.map((t) => t.toFixed(0)).join(", ")} ms`);
          entry[provider] = { roundsMs: times, medianMs: ms, statementsPerRun: queries };
          const target = size === 2000 ? TARGETS[provider] : undefined;
          rows.push(
            row({
              figure: FIGURE,
              configuration: `${label} · engine on ${provider}`,
              value: rate(ms),
              unit: "nodes/s",
              detail: `${((ms * 1000) / size).toFixed(1)} µs/node, +${(((ms - pqueue) * 1000) / size).toFixed(1)} µs over p-queue`,
              baseline: pqueueBaseline,
              target: target ? { op: ">=", value: target } : null,
            }),
          );
        } finally {
          await bench.close();
        }
      }
      details.push(entry);
    }
  }
  return { rows, details: { concurrency: CONCURRENCY, rounds: roundCount, dags: details } };
}
