/**
 * Figure 5: memory per idle active run. 1,000 runs each sleeping in a one-hour DELAY node, on
 * the in-memory store and on SQLite; RSS (and heap) after garbage collection before and after,
 * each in a fresh process (memory-probe.ts) so that no earlier allocation blurs the figure.
 *
 * Baseline: the floor of a cancellable sleeping task (AbortController + pending sleep + a
 * record in a map), measured the same way.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type FigureOptions, type FigureResult, type Row, row } from "./lib/report.ts";
import type { MemoryProbe } from "./memory-probe.ts";

const FIGURE = "5 memory";
const TARGET_KB_PER_RUN = 50;
const RUNS = 1000;
const probe = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "memory-probe.ts");

const perRunKb = (p: MemoryProbe, key: "rss" | "heapUsed" | "external") =>
  (p.after[key] - p.before[key]) / p.runs / 1024;

/**
 * RSS is noisy (allocator and heap sizing: ±15 % between identical processes): the median of
 * this many processes, one in quick mode.
 */
const PROBES = { full: 3, quick: 1 };

async function probeOnce(kind: string): Promise<MemoryProbe> {
  // A bare task is so small that 1,000 of them may not move RSS by one page: 10× as many.
  const runs = kind === "bare" ? RUNS * 10 : RUNS;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--expose-gc", "--import", "tsx", probe, kind, String(runs)],
    { timeout: 120_000, maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as MemoryProbe;
}

/** The probe whose RSS per run is the median of `count` fresh processes; all of them. */
async function measure(
  kind: string,
  count: number,
): Promise<{ median: MemoryProbe; all: MemoryProbe[] }> {
  const all: MemoryProbe[] = [];
  for (let i = 0; i < count; i++) all.push(await probeOnce(kind));
  const sorted = [...all].sort((a, b) => perRunKb(a, "rss") - perRunKb(b, "rss"));
  return { median: sorted[Math.floor(sorted.length / 2)]!, all };
}

export async function run({ quick, log }: FigureOptions): Promise<FigureResult> {
  const probes = quick ? PROBES.quick : PROBES.full;
  // Quick mode too measures 1,000 runs (a few seconds each), in one process per kind.
  const bare = (await measure("bare", probes)).median;
  const rows: Row[] = [];
  const details: Record<string, unknown> = { bare };
  for (const kind of ["memory", "sqlite"] as const) {
    const { median: result, all } = await measure(kind, probes);
    details[kind] = { median: result, rssKbPerRun: all.map((p) => perRunKb(p, "rss")) };
    const rss = perRunKb(result, "rss");
    const heap = perRunKb(result, "heapUsed");
    log(`${kind}: ${rss.toFixed(1)} KB RSS/run, ${heap.toFixed(1)} KB heap/run`);
    rows.push(
      row({
        figure: FIGURE,
        configuration: `${RUNS.toLocaleString("en-US")} runs idle in DELAY, ${kind === "memory" ? "in-memory store" : "SQLite"} · RSS per run`,
        value: rss,
        unit: "KB/run",
        detail: `${probes > 1 ? `median of ${probes} processes (${all.map((p) => perRunKb(p, "rss").toFixed(1)).join(", ")}); ` : ""}heap ${heap.toFixed(1)} KB/run; RSS ${(result.before.rss / 2 ** 20).toFixed(0)} → ${(result.after.rss / 2 ** 20).toFixed(0)} MB`,
        baseline: { label: "bare sleeping task", value: perRunKb(bare, "rss") },
        target: { op: "<=", value: TARGET_KB_PER_RUN },
      }),
    );
  }
  return { rows, details };
}
