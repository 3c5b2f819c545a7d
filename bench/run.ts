/**
 * `npm run bench`: runs every figure, each in its own process, prints one table and writes the
 * raw results to bench/results/latest.json.
 *
 *   npm run bench                       all figures (under 10 minutes on 2 cores)
 *   npm run bench -- --quick            fewer, shorter rounds (about 4 minutes on a loaded 2-core machine)
 *   npm run bench -- --only=cancel,reads
 *
 * Needs PostgreSQL and Redis as the tests do (TEST_POSTGRES_URL, TEST_REDIS_URL).
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { machine } from "./lib/machine.ts";
import type { FigureResult, Row } from "./lib/report.ts";
import { renderTable } from "./lib/table.ts";

const FIGURES = [
  "throughput",
  "fanout",
  "cancel",
  "reads",
  "memory",
  "multi-instance",
  "actions",
  "many-runs",
  "latency",
  "history",
  "joins",
] as const;
type FigureName = (typeof FIGURES)[number];

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv: readonly string[]): { quick: boolean; only: FigureName[] } {
  let quick = false;
  let only: FigureName[] = [...FIGURES];
  for (const arg of argv) {
    if (arg === "--quick") quick = true;
    else if (arg.startsWith("--only=")) {
      const names = arg.slice("--only=".length).split(",").filter(Boolean);
      const unknown = names.filter((n) => !(FIGURES as readonly string[]).includes(n));
      if (unknown.length > 0 || names.length === 0)
        throw new TypeError(
          `Expected --only=<${FIGURES.join("|")}>[,...], got \`${arg}\` (unknown: ${unknown.join(", ")})`,
        );
      only = FIGURES.filter((f) => names.includes(f));
    } else throw new TypeError(`Unknown argument \`${arg}\`; use --quick and --only=<names>`);
  }
  return { quick, only };
}

interface FigureRun {
  readonly name: FigureName;
  readonly seconds: number;
  readonly result?: FigureResult;
  readonly error?: string;
}

/** Runs one figure in a child process with a hard time limit. */
async function runFigure(name: FigureName, quick: boolean, dir: string): Promise<FigureRun> {
  const out = path.join(dir, `${name}.json`);
  const limitMs = (quick ? 90 : 300) * 1000;
  const started = performance.now();
  const args = [
    "--expose-gc",
    // graphql-ws adds a listener per subscriber to the bus's EventTarget; Node warns past 10.
    "--disable-warning=MaxListenersExceededWarning",
    "--import",
    "tsx",
    path.join(here, "figure.ts"),
    name,
    out,
    ...(quick ? ["--quick"] : []),
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "inherit", "inherit"] });
  const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
  const code = await new Promise<number | string>((resolve) =>
    child.once("exit", (c, signal) => resolve(c ?? signal ?? "unknown")),
  );
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) {
    const error =
      code === "SIGKILL" ? `killed after ${limitMs / 1000} s` : `exited with ${String(code)}`;
    return { name, seconds, error };
  }
  return { name, seconds, result: JSON.parse(readFileSync(out, "utf8")) as FigureResult };
}

async function main(): Promise<void> {
  const { quick, only } = parseArgs(process.argv.slice(2));
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
  const started = performance.now();
  const about = await machine();
  process.stderr.write(
    `bench: ${only.join(", ")}${quick ? " (quick)" : ""} on ${about.cpus}× ${about.cpuModel}, Node ${about.node}, commit ${about.commit}, load ${about.loadAverage}\n`,
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), "pipeline-bench-"));
  const runs: FigureRun[] = [];
  try {
    for (const name of only) {
      process.stderr.write(`bench: ${name}…\n`);
      const run = await runFigure(name, quick, dir);
      process.stderr.write(
        `bench: ${name} ${run.error ? `FAILED (${run.error})` : "done"} in ${run.seconds.toFixed(1)} s\n`,
      );
      runs.push(run);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const wallSeconds = (performance.now() - started) / 1000;
  const rows: Row[] = runs.flatMap((r) => r.result?.rows ?? []);
  const failed = runs.filter((r) => r.error);
  const report = {
    date: new Date().toISOString(),
    command,
    quick,
    wallSeconds,
    machine: about,
    loadAverageAtEnd: Math.round(os.loadavg()[0]! * 100) / 100,
    figures: Object.fromEntries(
      runs.map((r) => [
        r.name,
        { seconds: r.seconds, error: r.error ?? null, details: r.result?.details ?? null },
      ]),
    ),
    rows,
  };
  mkdirSync(path.join(here, "results"), { recursive: true });
  writeFileSync(path.join(here, "results", "latest.json"), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\n${renderTable(rows)}\n`);
  for (const run of failed) console.log(`FAILED ${run.name}: ${run.error}`);
  const missed = rows.filter((r) => r.met === false).length;
  console.log(
    `${rows.length} rows, ${missed} target(s) missed, ${failed.length} figure(s) failed; ${wallSeconds.toFixed(0)} s in all; raw results in bench/results/latest.json`,
  );
  process.exitCode = failed.length > 0 ? 1 : 0;
}

await main();
