/**
 * Figure 6: several instances. 1, then 2, server processes (test/helpers/process.ts) on one
 * fresh PostgreSQL database and Redis. Workers fire runs of a 20-node pipeline (PARALLEL nodes)
 * through HTTP, round-robin over the instances, at a fixed number of requests in flight for a
 * fixed time; afterwards every run is waited for, and the completed runs per second are read
 * from the database: completed runs / (last completedAt − first createdAt).
 *
 * Baseline: the single instance.
 */
import { setTimeout as wait } from "node:timers/promises";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../test/helpers/databases.ts";
import { request, type ServerProcess, startServerProcess } from "../test/helpers/process.ts";
import { REDIS_URL } from "../test/helpers/services.ts";
import { type FigureOptions, type FigureResult, type Row, row } from "./lib/report.ts";
import { percentile } from "./lib/stats.ts";

const FIGURE = "6 multi-instance";
const IN_FLIGHT = 16;
const CREATE = `mutation($input: PipelineInput!) { createPipeline(input: $input) { id } }`;
const RUN = `mutation($id: ID!) { runPipeline(id: $id) { id } }`;

/** trigger → 6 → 6 → 6 → join: 20 nodes. */
function pipelineInput(name: string) {
  const nodes: { id: string; type: string }[] = [{ id: "start", type: "TRIGGER" }];
  const edges: { source: string; target: string }[] = [];
  let above = ["start"];
  for (let level = 0; level < 3; level++) {
    const current = Array.from({ length: 6 }, (_, i) => `l${level}n${i}`);
    current.forEach((id, i) => {
      nodes.push({ id, type: "PARALLEL" });
      edges.push({ source: above[i % above.length]!, target: id });
    });
    above = current;
  }
  nodes.push({ id: "join", type: "PARALLEL" });
  for (const id of above) edges.push({ source: id, target: "join" });
  return { name, nodes, edges };
}

/**
 * Fires runs for `seconds`, `IN_FLIGHT` requests at a time; worker `w` starts runs of
 * `pipelineIds[w % length]`. A request the server refuses is counted with its message, not
 * retried.
 */
async function fire(urls: readonly string[], pipelineIds: readonly string[], seconds: number) {
  const deadline = Date.now() + seconds * 1000;
  let fired = 0;
  const refused = new Map<string, number>();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async (_, worker) => {
      const id = pipelineIds[worker % pipelineIds.length]!;
      let n = worker;
      while (Date.now() < deadline) {
        const url = urls[n++ % urls.length]!;
        try {
          await request<{ runPipeline: { id: string } }>(url, RUN, { id });
          fired++;
        } catch (error) {
          const message = (error as Error).message;
          refused.set(message, (refused.get(message) ?? 0) + 1);
        }
      }
    }),
  );
  return { fired, refused: Object.fromEntries(refused) };
}

interface Outcome {
  readonly fired: number;
  /** runPipeline requests answered with an error, by message. */
  readonly refused: Record<string, number>;
  readonly completed: number;
  readonly failed: number;
  readonly runsPerSecond: number;
  /** createdAt → completedAt of each run, ms. */
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
}

async function outcome(
  db: pg.Client,
  pipelineIds: readonly string[],
  { fired, refused }: Awaited<ReturnType<typeof fire>>,
): Promise<Outcome> {
  // Every fired run ends; then the figures come from the database.
  for (let i = 0; ; i++) {
    const { rows } = await db.query<{ pending: string }>(
      `SELECT count(*) AS pending FROM "PipelineRun" WHERE "pipelineId" = ANY($1) AND status IN ('QUEUED', 'RUNNING')`,
      [pipelineIds],
    );
    if (Number(rows[0]!.pending) === 0) break;
    if (i > 600) throw new Error(`${rows[0]!.pending} runs still going after 60 s`);
    await wait(100);
  }
  const { rows } = await db.query<{ status: string; createdAt: Date; completedAt: Date | null }>(
    `SELECT status, "createdAt", "completedAt" FROM "PipelineRun" WHERE "pipelineId" = ANY($1)`,
    [pipelineIds],
  );
  const completed = rows.filter((r) => r.status === "COMPLETED");
  const first = Math.min(...rows.map((r) => r.createdAt.getTime()));
  const last = Math.max(...completed.map((r) => r.completedAt!.getTime()));
  const latencies = completed.map((r) => r.completedAt!.getTime() - r.createdAt.getTime());
  return {
    fired,
    refused,
    completed: completed.length,
    failed: rows.length - completed.length,
    runsPerSecond: completed.length > 0 ? (completed.length / (last - first)) * 1000 : 0,
    latencyP50Ms: percentile(latencies, 50),
    latencyP99Ms: percentile(latencies, 99),
  };
}

/** The two ways of firing: every worker on one pipeline, or each on its own. */
const LAYOUTS = ["one pipeline", "a pipeline per worker"] as const;
type Layout = (typeof LAYOUTS)[number];

async function measure(
  database: TestDatabase,
  db: pg.Client,
  instances: number,
  seconds: number,
  log: FigureOptions["log"],
): Promise<Record<Layout, Outcome>> {
  const processes: ServerProcess[] = [];
  try {
    for (let i = 0; i < instances; i++) {
      processes.push(
        await startServerProcess(`bench-${instances}-${i + 1}`, {
          DATABASE_URL: database.url,
          REDIS_URL,
          // The load is one client's: the per-key limits would refuse most of it.
          RATE_LIMIT_RUNS: "0",
          RATE_LIMIT_WRITES: "0",
        }),
      );
    }
    const urls = processes.map((p) => p.url);
    const create = async (name: string) =>
      (
        await request<{ createPipeline: { id: string } }>(urls[0]!, CREATE, {
          input: pipelineInput(name),
        })
      ).createPipeline.id;
    const pipelines = async (layout: Layout, name: string) =>
      Promise.all(
        Array.from({ length: layout === "one pipeline" ? 1 : IN_FLIGHT }, (_, i) =>
          create(`${name}-${i}`),
        ),
      );
    const warmup = await pipelines("a pipeline per worker", `warm-up-${instances}`);
    await outcome(db, warmup, await fire(urls, warmup, Math.min(2, seconds / 2)));
    const results = {} as Record<Layout, Outcome>;
    for (const layout of LAYOUTS) {
      const ids = await pipelines(layout, `measured-${instances}-${layout}`);
      const result = await outcome(db, ids, await fire(urls, ids, seconds));
      const refused = Object.values(result.refused).reduce((a, b) => a + b, 0);
      log(
        `${instances} instance(s), ${layout}: ${result.runsPerSecond.toFixed(0)} runs/s (${result.completed} completed, ${result.failed} not, ${refused} requests refused)`,
      );
      results[layout] = result;
    }
    return results;
  } finally {
    for (const p of processes) {
      const errors = p.logs.filter((line) => /"level":(50|60)/.test(line));
      if (errors.length > 0)
        log(`${p.name} logged ${errors.length} errors; first: ${errors[0]!.slice(0, 300)}`);
    }
    for (const p of processes) p.kill("SIGTERM");
    await Promise.all(
      processes.map((p) => Promise.race([p.exited, wait(15_000).then(() => p.kill("SIGKILL"))])),
    );
  }
}

export async function run({ quick, log }: FigureOptions): Promise<FigureResult> {
  const seconds = quick ? 3 : 12;
  const database = await createTestDatabase("postgresql");
  // Migrate once, before several processes start on the database.
  await (await database.open()).close();
  const db = new pg.Client({ connectionString: database.url });
  await db.connect();
  try {
    const one = await measure(database, db, 1, seconds, log);
    const two = await measure(database, db, 2, seconds, log);
    const describe = (o: Outcome) => {
      const refused = Object.values(o.refused).reduce((a, b) => a + b, 0);
      return `${(o.runsPerSecond * 20).toFixed(0)} nodes/s; run p50 ${o.latencyP50Ms.toFixed(0)} ms, p99 ${o.latencyP99Ms.toFixed(0)} ms${
        refused === 0
          ? ""
          : `; ${refused} of ${refused + o.fired} runPipeline requests refused (${Object.keys(o.refused).join(", ")})`
      }${o.failed > 0 ? `; ${o.failed} runs did not complete` : ""}`;
    };
    const rows: Row[] = [];
    for (const layout of LAYOUTS) {
      rows.push(
        row({
          figure: FIGURE,
          configuration: `1 instance, PG + Redis, ${IN_FLIGHT} in flight, ${layout}`,
          value: one[layout].runsPerSecond,
          unit: "runs/s",
          detail: describe(one[layout]),
        }),
        row({
          figure: FIGURE,
          configuration: `2 instances, PG + Redis, ${IN_FLIGHT} in flight, ${layout}`,
          value: two[layout].runsPerSecond,
          unit: "runs/s",
          detail: describe(two[layout]),
          baseline: { label: "1 instance", value: one[layout].runsPerSecond },
        }),
      );
    }
    return { rows, details: { seconds, inFlight: IN_FLIGHT, nodes: 20, one, two } };
  } finally {
    await db.end();
    await database.drop();
  }
}
