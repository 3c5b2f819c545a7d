/**
 * Figure 7: user steps against inline nodes. The same 2,000-node DAG runs once with ACTION
 * nodes that call a registered async no-op action and once with PARALLEL nodes (which the
 * engine runs inline), in interleaved rounds on each store; the PARALLEL DAG is the baseline.
 * Two shapes: wide (5 levels, 1–3 joins per node, figure 1's DAG) and star (2,000 nodes under
 * the trigger, all ready at once). Also the statements each run sends to the database and
 * whether Node emitted a MaxListenersExceededWarning during the ACTION runs.
 */
import { performance } from "node:perf_hooks";
import { type BenchDag, generateDag, starDag, withNodeType } from "./lib/dag.ts";
import {
  type BenchEngine,
  collectGarbage,
  createBenchEngine,
  type Provider,
} from "./lib/engine.ts";
import { type FigureOptions, type FigureResult, type Row, row } from "./lib/report.ts";
import { median } from "./lib/stats.ts";
import { countWarnings } from "./lib/warnings.ts";

const FIGURE = "7 actions";
const SIZE = 2000;
/** The name of the no-op action the ACTION nodes call. */
export const NOOP_ACTION = "bench-noop";
const warnings = countWarnings();

/** Registers the no-op action: async, as a user's action is, and with a small output. */
export function registerNoop(bench: BenchEngine): void {
  bench.engine.actions.register({ name: NOOP_ACTION, run: async () => ({ ok: true }) });
}

/** The shapes of the figure, as PARALLEL and as ACTION DAGs. */
export function actionDags(): { shape: string; parallel: BenchDag; action: BenchDag }[] {
  return [generateDag("wide", SIZE), starDag(SIZE)].map((dag) => ({
    shape: `${dag.shape} ${SIZE.toLocaleString("en-US")}`,
    parallel: withNodeType(dag, "PARALLEL"),
    action: withNodeType(dag, "ACTION", { action: NOOP_ACTION }),
  }));
}

interface Sample {
  readonly ms: number;
  readonly statements: number;
}

/** One run from runPipeline to its terminal event published (after it is stored). */
export async function timedRun(bench: BenchEngine, pipelineId: string): Promise<Sample> {
  const queries = bench.store.stats.queries;
  const started = performance.now();
  const run = await bench.engine.runPipeline(pipelineId);
  const end = await bench.waitForEnd(run.id);
  if (end.event.type !== "RUN_COMPLETED")
    throw new Error(`run ${run.id} ended ${end.event.type}: ${JSON.stringify(end.event.data)}`);
  return { ms: end.at - started, statements: bench.store.stats.queries - queries };
}

/** Checks, outside the timing, that the last run stored every node COMPLETED. */
async function checkLastRun(bench: BenchEngine, pipelineId: string): Promise<void> {
  const { items } = await bench.store.listRuns({ first: 1, pipelineId });
  const run = items[0]!;
  const nodeRuns = (await bench.store.getNodeRuns([run.id])).get(run.id) ?? [];
  const completed = nodeRuns.filter((n) => n.status === "COMPLETED").length;
  if (run.status !== "COMPLETED" || completed !== SIZE)
    throw new Error(`run ${run.id}: ${run.status}, ${completed}/${SIZE} node runs completed`);
}

export async function run({ quick, log }: FigureOptions): Promise<FigureResult> {
  const providers: Provider[] = ["memory", "sqlite", "postgresql"];
  const roundCount = quick ? 3 : 7;
  const rows: Row[] = [];
  const details: Record<string, unknown>[] = [];
  const warningsBefore = warnings.count("MaxListenersExceededWarning");
  let actionWarnings = 0;
  for (const { shape, parallel, action } of actionDags()) {
    for (const provider of providers) {
      const bench = await createBenchEngine(provider);
      try {
        registerNoop(bench);
        const parallelId = await bench.createPipeline(parallel.input);
        const actionId = await bench.createPipeline(action.input);
        // Warm-up (the JIT), then interleaved rounds so that both see the same machine load.
        for (let i = 0; i < 3; i++) {
          await timedRun(bench, parallelId);
          await timedRun(bench, actionId);
        }
        const samples = { parallel: [] as Sample[], action: [] as Sample[] };
        const afterGc = { parallel: [] as Sample[], action: [] as Sample[] };
        const round = async (into: typeof samples, gc: boolean) => {
          if (gc) collectGarbage();
          into.parallel.push(await timedRun(bench, parallelId));
          if (gc) collectGarbage();
          const before = warnings.count("MaxListenersExceededWarning");
          into.action.push(await timedRun(bench, actionId));
          actionWarnings += warnings.count("MaxListenersExceededWarning") - before;
        };
        // Steady state: runs back to back, each paying the collections its garbage causes, as
        // a server's runs do.
        for (let i = 0; i < roundCount; i++) await round(samples, false);
        // Each run after a full collection, its young generation empty: a run that fits in it
        // never pays a scavenge, one that does not pays one whole (see BENCHMARKS.md).
        for (let i = 0; i < roundCount; i++) await round(afterGc, true);
        await checkLastRun(bench, parallelId);
        await checkLastRun(bench, actionId);
        const ms = {
          parallel: median(samples.parallel.map((s) => s.ms)),
          action: median(samples.action.map((s) => s.ms)),
        };
        const gcMs = {
          parallel: median(afterGc.parallel.map((s) => s.ms)),
          action: median(afterGc.action.map((s) => s.ms)),
        };
        const statements = {
          parallel: median(samples.parallel.map((s) => s.statements)),
          action: median(samples.action.map((s) => s.statements)),
        };
        const rate = (t: number) => (SIZE / t) * 1000;
        const list = (of: Sample[]) => of.map((s) => s.ms.toFixed(0)).join(", ");
        log(
          `${shape} on ${provider}: ACTION ${list(samples.action)} ms; PARALLEL ${list(samples.parallel)} ms; after a full GC: ACTION ${list(afterGc.action)} ms, PARALLEL ${list(afterGc.parallel)} ms`,
        );
        const perNode = (t: number) => ((t * 1000) / SIZE).toFixed(1);
        rows.push(
          row({
            figure: FIGURE,
            configuration: `${shape} ACTION no-ops · ${provider}`,
            value: rate(ms.action),
            unit: "nodes/s",
            detail: `${perNode(ms.action)} µs/node (PARALLEL ${perNode(ms.parallel)}); runs back to back`,
            baseline: { label: "same DAG of PARALLEL", value: rate(ms.parallel) },
            target: { op: ">=", value: 0.8, on: "ratio" },
          }),
          row({
            figure: FIGURE,
            configuration: `${shape} ACTION no-ops · ${provider} · after a full GC`,
            value: rate(gcMs.action),
            unit: "nodes/s",
            detail: `${perNode(gcMs.action)} µs/node (PARALLEL ${perNode(gcMs.parallel)}); a forced full GC before each run`,
            baseline: { label: "same DAG of PARALLEL", value: rate(gcMs.parallel) },
          }),
        );
        if (provider !== "memory")
          rows.push(
            row({
              figure: FIGURE,
              configuration: `${shape} ACTION no-ops · ${provider} · statements per run`,
              value: statements.action,
              unit: "statements",
              detail: "median per run, the engine's background polling included",
              baseline: { label: "PARALLEL", value: statements.parallel },
            }),
          );
        details.push({
          shape,
          provider,
          samples,
          afterGc,
          medianMs: ms,
          afterGcMedianMs: gcMs,
          statementsPerRun: statements,
        });
      } finally {
        await bench.close();
      }
    }
  }
  const total = warnings.count("MaxListenersExceededWarning") - warningsBefore;
  rows.push(
    row({
      figure: FIGURE,
      configuration: "MaxListenersExceededWarning during the ACTION runs",
      value: actionWarnings,
      unit: "warnings",
      detail: `${total} in the whole figure (emitted, whether or not --disable-warning hid it)`,
      target: { op: "==", value: 0 },
    }),
  );
  return { rows, details: { size: SIZE, rounds: roundCount, runs: details } };
}
