/**
 * Figure 9: one short run end to end. A run of TRIGGER → one ACTION no-op, one at a time:
 * from `engine.runPipeline()` to RUN_COMPLETED received by a subscriber of the run
 * (`engine.events(runId)`, what the `runEvents` subscription reads: the stored events, then
 * the live ones), on SQLite and PostgreSQL. Peer: a BullMQ job (no-op, worker concurrency 1)
 * from `queue.add` to its completion seen through QueueEvents (`job.waitUntilFinished`).
 */
import { performance } from "node:perf_hooks";
import { NOOP_ACTION, registerNoop } from "./actions.ts";
import { collectGarbage, createBenchEngine, type Provider } from "./lib/engine.ts";
import { bullmqLatency } from "./lib/peers.ts";
import { type FigureOptions, type FigureResult, type Row, row } from "./lib/report.ts";
import { percentile, summarize } from "./lib/stats.ts";

const FIGURE = "9 latency";
const TARGET_P50: Record<Exclude<Provider, "memory">, number> = { sqlite: 2, postgresql: 5 };

const SHORT = {
  name: "bench-short",
  nodes: [
    { id: "start", type: "TRIGGER" as const },
    { id: "step", type: "ACTION" as const, config: { action: NOOP_ACTION } },
  ],
  edges: [{ source: "start", target: "step" }],
};

async function endToEnd(provider: Provider, samples: number, warmups: number) {
  const bench = await createBenchEngine(provider);
  try {
    registerNoop(bench);
    const pipelineId = await bench.createPipeline(SHORT);
    const times: number[] = [];
    for (let i = 0; i < warmups + samples; i++) {
      if (i % 50 === 0) collectGarbage();
      const started = performance.now();
      const run = await bench.engine.runPipeline(pipelineId, { i });
      let last = "";
      for await (const event of await bench.engine.events(run.id)) last = event.type;
      const ms = performance.now() - started;
      if (last !== "RUN_COMPLETED") throw new Error(`run ${run.id} ended with ${last}`);
      if (i >= warmups) times.push(ms);
    }
    return times;
  } finally {
    await bench.close();
  }
}

export async function run({ quick, log }: FigureOptions): Promise<FigureResult> {
  const samples = quick ? 100 : 400;
  const warmups = 20;
  const bullmq = await bullmqLatency(samples, warmups);
  const measured: Record<string, number[]> = { bullmq };
  for (const provider of ["sqlite", "postgresql"] as const)
    measured[provider] = await endToEnd(provider, samples, warmups);
  const rows: Row[] = [];
  for (const provider of ["sqlite", "postgresql"] as const) {
    const times = measured[provider]!;
    const label = provider === "sqlite" ? "SQLite" : "PostgreSQL";
    log(
      `${provider}: p50 ${percentile(times, 50).toFixed(2)} ms, p99 ${percentile(times, 99).toFixed(2)} ms; BullMQ p50 ${percentile(bullmq, 50).toFixed(2)} ms`,
    );
    for (const p of [50, 99] as const)
      rows.push(
        row({
          figure: FIGURE,
          configuration: `TRIGGER → ACTION no-op, one at a time, ${label} · p${p} runPipeline → RUN_COMPLETED seen`,
          value: percentile(times, p),
          unit: "ms",
          detail: `n=${times.length}`,
          baseline: { label: "BullMQ add → completed", value: percentile(bullmq, p) },
          target: p === 50 ? { op: "<=", value: TARGET_P50[provider] } : null,
        }),
      );
  }
  return {
    rows,
    details: {
      samples,
      warmups,
      summaries: Object.fromEntries(Object.entries(measured).map(([k, v]) => [k, summarize(v)])),
    },
  };
}
