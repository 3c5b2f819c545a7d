/**
 * Where the time goes: CPU profile of the measured window of one scenario, summarised.
 *
 *   npx tsx bench/profile.ts <fanout|reads|throughput> [--quick]
 *   npx tsx bench/profile.ts action [wide|star] [--store=memory|sqlite|postgresql] [--parallel]
 *   node --expose-gc --import tsx bench/profile.ts memory
 *
 * Prints self time by area and by function, and inclusive time of our own functions; writes
 * the raw profile to bench/results/<scenario>.cpuprofile (open it in Chrome DevTools). The
 * memory scenario prints what grew on the heap per idle run instead. `action` profiles figure 7's
 * 2,000-node DAG of ACTION no-ops (wide by default, SQLite by default): its "self time by
 * module" list shows whether any one piece of the engine's bookkeeping takes over 10 %.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { writeHeapSnapshot } from "node:v8";
import { actionDags, registerNoop, timedRun } from "./actions.ts";
import { measureServer as fanoutServer } from "./fanout.ts";
import { generateDag } from "./lib/dag.ts";
import { createBenchEngine, type Provider } from "./lib/engine.ts";
import { heapByConstructor, heapGrowth } from "./lib/heap.ts";
import { profilingHooks, renderProfile, summarizeProfile } from "./lib/profiler.ts";
import { probeMemory } from "./memory-probe.ts";
import { measureReadsServer } from "./reads.ts";

const SCENARIOS = {
  /** 1,000 subscribers on one run: the server's side of the fan-out. */
  fanout: async (hooks, quick) => {
    await fanoutServer(1000, quick ? 8 : 20, hooks);
  },
  /** The real server under the reads load (the bare baseline is not profiled). */
  reads: async (hooks, quick) => {
    await measureReadsServer(quick ? 3 : 10, hooks);
  },
  /** 1,000 idle runs on SQLite: heap snapshots before and after, what grew per run. */
  memory: async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "bench-heap-"));
    const files: Record<string, string> = {};
    const probe = await probeMemory("sqlite", 1000, (moment) => {
      files[moment] = writeHeapSnapshot(path.join(dir, `${moment}.heapsnapshot`));
    });
    const growth = heapGrowth(heapByConstructor(files.before!), heapByConstructor(files.after!));
    const total = growth.reduce((sum, entry) => sum + entry.bytes, 0);
    const kb = (bytes: number) => (bytes / probe.runs / 1024).toFixed(2).padStart(6);
    console.log(
      `## memory: RSS +${kb(probe.after.rss - probe.before.rss)} KB/run, heap used +${kb(probe.after.heapUsed - probe.before.heapUsed)} KB/run, external +${kb(probe.after.external - probe.before.external)} KB/run`,
    );
    console.log(`\nheap growth by constructor (self size; all: ${kb(total)} KB/run):`);
    for (const entry of growth.slice(0, 25))
      console.log(
        `  ${kb(entry.bytes)} KB/run  ${(entry.count / probe.runs).toFixed(1).padStart(5)}/run  ${entry.key}`,
      );
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  },
  /**
   * Figure 7's ACTION DAG (wide or star; SQLite unless --store= says otherwise), 10 runs; with
   * --parallel its baseline, the same DAG of PARALLEL nodes, to set the two profiles side by side.
   */
  action: async (hooks) => {
    const shape = process.argv[3]?.startsWith("--") ? "wide" : (process.argv[3] ?? "wide");
    const store = (process.argv.find((a) => a.startsWith("--store="))?.slice(8) ??
      "sqlite") as Provider;
    const dags = actionDags().find((d) => d.shape.startsWith(shape));
    if (!dags || !["memory", "sqlite", "postgresql"].includes(store))
      throw new TypeError(
        `Expected \`action [wide|star] [--store=…] [--parallel]\`, got \`${shape} ${store}\``,
      );
    const bench = await createBenchEngine(store);
    try {
      registerNoop(bench);
      const dag = process.argv.includes("--parallel") ? dags.parallel : dags.action;
      const pipelineId = await bench.createPipeline(dag.input);
      await timedRun(bench, pipelineId);
      await hooks.begin();
      for (let i = 0; i < 10; i++) await timedRun(bench, pipelineId);
      await hooks.end();
      console.log(`action DAG: ${dag.name} on ${store}, 10 runs profiled`);
    } finally {
      await bench.close();
    }
  },
  /** Wide 2,000-node DAG on SQLite, 10 runs after a warm-up. */
  throughput: async (hooks) => {
    const bench = await createBenchEngine("sqlite");
    try {
      const pipelineId = await bench.createPipeline(generateDag("wide", 2000).input);
      const once = async () => {
        const run = await bench.engine.runPipeline(pipelineId);
        await bench.waitForEnd(run.id);
      };
      await once();
      await hooks.begin();
      for (let i = 0; i < 10; i++) await once();
      await hooks.end();
    } finally {
      await bench.close();
    }
  },
} satisfies Record<
  string,
  (hooks: ReturnType<typeof profilingHooks>, quick: boolean) => Promise<void>
>;

const [name] = process.argv.slice(2);
if (!name || !(name in SCENARIOS)) {
  console.error(`usage: bench/profile.ts <${Object.keys(SCENARIOS).join("|")}> [--quick]`);
  process.exit(2);
}
const hooks = profilingHooks();
await SCENARIOS[name as keyof typeof SCENARIOS](hooks, process.argv.includes("--quick"));
const profile = hooks.profile();
const results = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "results");
mkdirSync(results, { recursive: true });
const file = path.join(results, `${name}.cpuprofile`);
writeFileSync(file, JSON.stringify(profile));
console.log(renderProfile(name, summarizeProfile(profile)));
console.log(`\nraw profile: ${path.relative(process.cwd(), file)}`);
process.exit(0);
