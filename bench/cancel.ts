/**
 * Figure 3: cancel latency. Runs blocked in a long DELAY node and, beside it, an http node
 * whose request a local endpoint holds open; `engine.cancelRun` is called and the sample ends
 * when both the run is stored CANCELLED (cancelRun resolves after the terminal event is
 * committed) and the endpoint has seen its request aborted. One run at a time, and batches
 * of runs cancelled at once.
 *
 * Baseline: the bare mechanism, an AbortController aborting a pending sleep and an HTTP
 * request to the same endpoint, measured the same way.
 */
import http from "node:http";
import { performance } from "node:perf_hooks";
import type { PipelineInput } from "../src/domain/definition.ts";
import { sleep } from "../src/engine/errors.ts";
import { type BenchEngine, collectGarbage, createBenchEngine } from "./lib/engine.ts";
import { type HoldServer, startHoldServer } from "./lib/hold-server.ts";
import { type FigureOptions, type FigureResult, type Row, row } from "./lib/report.ts";
import { type Summary, summarize } from "./lib/stats.ts";
import { formatNumber } from "./lib/table.ts";
import { withTimeout } from "./lib/timeout.ts";

const FIGURE = "3 cancel";
const TARGET_P99_MS = 50;

function blockedPipeline(holdUrl: string): PipelineInput {
  return {
    name: "cancel-me",
    nodes: [
      { id: "start", type: "TRIGGER" },
      { id: "sleep", type: "DELAY", config: { seconds: 3600 } },
      {
        id: "hang",
        type: "ACTION",
        config: { action: "http", url: `${holdUrl}/hang/{{run.id}}`, timeoutMs: 3_600_000 },
        retry: { maxAttempts: 1 },
      },
    ],
    edges: [
      { source: "start", target: "sleep" },
      { source: "start", target: "hang" },
    ],
  };
}

interface Sample {
  /** Until cancelRun resolved (run stored CANCELLED). */
  readonly storedMs: number;
  /** Until the endpoint saw the request aborted. */
  readonly abortedMs: number;
  /** The later of the two. */
  readonly totalMs: number;
}

/** Starts `count` runs and waits until each holds its request open. */
async function startBlocked(
  bench: BenchEngine,
  hold: HoldServer,
  pipelineId: string,
  count: number,
): Promise<string[]> {
  const ids = await Promise.all(
    Array.from({ length: count }, async () => (await bench.engine.runPipeline(pipelineId)).id),
  );
  await withTimeout(
    Promise.all(ids.map((id) => hold.arrived(`/hang/${id}`))),
    10_000,
    `${count} blocked runs to reach the held endpoint`,
  );
  return ids;
}

/** Cancels the runs at once; one sample per run, all timed from the same start. */
async function cancelAll(bench: BenchEngine, hold: HoldServer, ids: string[]): Promise<Sample[]> {
  const started = performance.now();
  const samples = Promise.all(
    ids.map(async (id) => {
      const [run, aborted] = await Promise.all([
        bench.engine.cancelRun(id).then((r) => ({ status: r.status, at: performance.now() })),
        hold.aborted(`/hang/${id}`),
      ]);
      if (run.status !== "CANCELLED") throw new Error(`run ${id} is ${run.status} after cancel`);
      const abortedMs = aborted.abortedAt! - started;
      const storedMs = run.at - started;
      return { storedMs, abortedMs, totalMs: Math.max(storedMs, abortedMs) };
    }),
  );
  return withTimeout(samples, 10_000, `cancelling ${ids.length} runs`);
}

/** Every node of a cancelled run ended: the running ones CANCELLED, none left RUNNING. */
async function checkCancelled(bench: BenchEngine, ids: string[]): Promise<void> {
  const nodeRuns = await bench.store.getNodeRuns(ids);
  for (const id of ids) {
    const statuses = (nodeRuns.get(id) ?? []).map((n) => `${n.nodeId}:${n.status}`).sort();
    if (statuses.join(",") !== "hang:CANCELLED,sleep:CANCELLED,start:COMPLETED")
      throw new Error(`run ${id}: node runs ${statuses.join(", ")}`);
  }
}

async function measureEngine(
  batch: number,
  batches: number,
  hold: HoldServer,
): Promise<{ samples: Sample[] }> {
  const bench = await createBenchEngine("sqlite");
  try {
    const pipelineId = await bench.createPipeline(blockedPipeline(hold.url));
    await cancelAll(bench, hold, await startBlocked(bench, hold, pipelineId, batch)); // warm-up
    const samples: Sample[] = [];
    for (let i = 0; i < batches; i++) {
      const ids = await startBlocked(bench, hold, pipelineId, batch);
      collectGarbage();
      samples.push(...(await cancelAll(bench, hold, ids)));
      await checkCancelled(bench, ids);
    }
    return { samples };
  } finally {
    await bench.close();
  }
}

/** The floor: AbortController → sleep rejected and socket closed, same endpoint. */
async function measureBare(batch: number, batches: number, hold: HoldServer): Promise<Sample[]> {
  const agent = new http.Agent({ keepAlive: true });
  let n = 0;
  const once = async () => {
    const jobs = Array.from({ length: batch }, () => {
      const path = `/bare/${++n}`;
      const controller = new AbortController();
      const sleeping = sleep(3_600_000, controller.signal).then(
        () => Number.NaN,
        () => performance.now(),
      );
      const request = http.get(`${hold.url}${path}`, { agent, signal: controller.signal });
      request.on("error", () => {});
      return { path, controller, sleeping };
    });
    await Promise.all(jobs.map((job) => hold.arrived(job.path)));
    const started = performance.now();
    return Promise.all(
      jobs.map(async (job) => {
        job.controller.abort();
        const [slept, aborted] = await Promise.all([job.sleeping, hold.aborted(job.path)]);
        const storedMs = slept - started;
        const abortedMs = aborted.abortedAt! - started;
        return { storedMs, abortedMs, totalMs: Math.max(storedMs, abortedMs) };
      }),
    );
  };
  await once();
  const samples: Sample[] = [];
  for (let i = 0; i < batches; i++) samples.push(...(await once()));
  agent.destroy();
  return samples;
}

export async function run({ quick, log }: FigureOptions): Promise<FigureResult> {
  const hold = await startHoldServer();
  const rows: Row[] = [];
  const details: Record<string, unknown> = {};
  try {
    const configs = [
      { name: "one run at a time", batch: 1, batches: quick ? 50 : 200 },
      // 30 runs hold 60 of the 64 node slots (MAX_CONCURRENT_NODES): a DELAY or http node
      // keeps its slot while it waits, so more runs would queue instead of blocking.
      { name: "30 runs at once", batch: 30, batches: quick ? 3 : 10 },
    ];
    for (const { name, batch, batches } of configs) {
      const bare = summarize((await measureBare(batch, batches, hold)).map((s) => s.totalMs));
      const { samples } = await measureEngine(batch, batches, hold);
      const total = summarize(samples.map((s) => s.totalMs));
      const stored: Summary = summarize(samples.map((s) => s.storedMs));
      const aborted: Summary = summarize(samples.map((s) => s.abortedMs));
      log(`${name}: p50 ${total.p50} ms, p99 ${total.p99} ms (bare p99 ${bare.p99} ms)`);
      details[name] = { samples: samples.length, total, stored, aborted, bare };
      for (const pick of ["p50", "p99"] as const) {
        rows.push(
          row({
            figure: FIGURE,
            configuration: `SQLite, ${name} (DELAY + held http) · ${pick}`,
            value: total[pick],
            unit: "ms",
            detail:
              pick === "p99"
                ? `run stored CANCELLED p99 ${formatNumber(stored.p99)} ms, request aborted p99 ${formatNumber(aborted.p99)} ms; n=${samples.length}`
                : `n=${samples.length}`,
            baseline: { label: "bare AbortController", value: bare[pick] },
            target: pick === "p99" ? { op: "<=", value: TARGET_P99_MS } : null,
          }),
        );
      }
    }
  } finally {
    await hold.close();
  }
  return { rows, details };
}
