/**
 * One measurement of the memory figure, in a fresh process started with --expose-gc:
 *   node --expose-gc --import tsx bench/memory-probe.ts <memory|sqlite|bare> <runs>
 * Prints one JSON line: RSS and heap before and after `runs` runs are idle in a long DELAY.
 */
import { setTimeout as wait } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { sleep } from "../src/engine/errors.ts";
import { createBenchEngine, type Provider } from "./lib/engine.ts";
import { withTimeout } from "./lib/timeout.ts";

export interface MemoryProbe {
  readonly kind: string;
  readonly runs: number;
  readonly before: NodeJS.MemoryUsage;
  readonly after: NodeJS.MemoryUsage;
}

/** Called with the process settled before the runs start, and again once they are all idle. */
export type Checkpoint = (moment: "before" | "after") => Promise<void> | void;

/** Settled memory: collect a few times with a pause, as a long-idle process would be. */
async function settled(): Promise<NodeJS.MemoryUsage> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("start this probe with --expose-gc");
  for (let i = 0; i < 3; i++) {
    gc();
    await wait(100);
  }
  return process.memoryUsage();
}

async function until(what: string, done: () => boolean): Promise<void> {
  await withTimeout(
    (async () => {
      while (!done()) await wait(20);
    })(),
    60_000,
    what,
  );
}

/** The floor: per run, an AbortController, a pending cancellable sleep and a small record. */
async function probeBare(runs: number, checkpoint: Checkpoint): Promise<MemoryProbe> {
  const held = new Map<string, { controller: AbortController; sleeping: Promise<void> }>();
  const start = (i: number) => {
    const controller = new AbortController();
    held.set(`run-${i}`, {
      controller,
      sleeping: sleep(3_600_000, controller.signal).catch(() => {}),
    });
  };
  for (let i = 0; i < 20; i++) start(-i - 1);
  for (const [id, entry] of held) {
    entry.controller.abort();
    held.delete(id);
  }
  const before = await settled();
  await checkpoint("before");
  for (let i = 0; i < runs; i++) start(i);
  const after = await settled();
  await checkpoint("after");
  for (const entry of held.values()) entry.controller.abort();
  return { kind: "bare", runs, before, after };
}

async function probeEngine(
  provider: Provider,
  runs: number,
  checkpoint: Checkpoint,
): Promise<MemoryProbe> {
  // A deployment meant for this many idle runs raises both limits (defaults 256 and 64): a
  // DELAY node keeps its node slot while it sleeps.
  const bench = await createBenchEngine(provider, {
    maxActiveRuns: runs + 100,
    maxConcurrentNodes: runs + 100,
  });
  try {
    const pipelineId = await bench.createPipeline({
      name: "idle",
      nodes: [
        { id: "start", type: "TRIGGER" },
        { id: "sleep", type: "DELAY", config: { seconds: 3600 } },
      ],
      edges: [{ source: "start", target: "sleep" }],
    });
    const startRuns = async (n: number) => {
      const ids: string[] = [];
      for (let i = 0; i < n; i += 50) {
        const batch = Array.from({ length: Math.min(50, n - i) }, () =>
          bench.engine.runPipeline(pipelineId),
        );
        ids.push(...(await Promise.all(batch)).map((run) => run.id));
      }
      return ids;
    };
    // Warm-up: the code paths of starting and cancelling runs are loaded and compiled.
    for (const id of await startRuns(20)) await bench.engine.cancelRun(id);
    const before = await settled();
    await checkpoint("before");
    await startRuns(runs);
    await until(
      "every run to sleep in its DELAY node",
      () => bench.engine.activeRuns === runs && bench.engine.queuedNodes === runs,
    );
    await wait(500); // the writer has committed the runs' first events
    const after = await settled();
    await checkpoint("after");
    return { kind: provider, runs, before, after };
  } finally {
    await bench.close();
  }
}

/** Measures `runs` idle runs of `kind` in this process. */
export function probeMemory(
  kind: "bare" | Provider,
  runs: number,
  checkpoint: Checkpoint = () => {},
): Promise<MemoryProbe> {
  return kind === "bare" ? probeBare(runs, checkpoint) : probeEngine(kind, runs, checkpoint);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [kind = "memory", count = "1000"] = process.argv.slice(2);
  const result = await probeMemory(kind as "bare" | Provider, Number(count));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}
