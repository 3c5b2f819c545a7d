/**
 * Stored history, fast: copies of one real, finished run (its row, node runs and events) made
 * with bulk `INSERT … SELECT` statements, straight on the database the store uses. Columns are
 * read from the database, so the copies follow the schema as it changes; only the run id, its
 * pipeline and the node runs' and events' run id differ from the original. Copied ids sort
 * before every real one (UUIDv7 with a zero timestamp): history lies in the past.
 */
import Database from "better-sqlite3";
import pg from "pg";
import type { Provider } from "./engine.ts";

export interface HistoryWriter {
  /** Adds copies number `from` … `to - 1` of `templateRunId`, spread over the pipelines. */
  copyRuns(
    templateRunId: string,
    pipelineIds: readonly string[],
    from: number,
    to: number,
  ): Promise<void>;
  /** The id of copy number `n`. */
  idOf(n: number): string;
  /** Refreshes the planner's statistics (PostgreSQL; autovacuum would do it in time). */
  analyze(): Promise<void>;
  close(): Promise<void>;
}

const idOf = (n: number) => `00000000-0000-7000-8000-${n.toString(16).padStart(12, "0")}`;

type Columns = Record<"PipelineRun" | "NodeRun" | "RunEvent", string[]>;
const TABLES = ["PipelineRun", "NodeRun", "RunEvent"] as const;

/** `INSERT … SELECT` lists: every column copied from the template but the ones replaced. */
function selectList(columns: readonly string[], replaced: Record<string, string>, from: string) {
  const names = columns.map((c) => `"${c}"`).join(", ");
  const values = columns.map((c) => replaced[c] ?? `${from}."${c}"`).join(", ");
  return { names, values };
}

/**
 * Statements that copy runs whose numbers come from a set `seq(i)` (the caller's CTE). The
 * copies' node runs and events are copied from the template's, joined on the new runs by id.
 */
function statements(columns: Columns, idExpr: string, param: (n: number) => string) {
  const run = selectList(columns.PipelineRun, { id: idExpr, pipelineId: param(2) }, "t");
  const nodeRun = selectList(columns.NodeRun, { runId: "r.id" }, "n");
  const event = selectList(columns.RunEvent, { runId: "r.id" }, "e");
  const runsOfBatch = `r.id >= ${param(3)} AND r.id <= ${param(4)} AND r."pipelineId" = ${param(2)}`;
  return {
    runs: `INSERT INTO "PipelineRun" (${run.names}) SELECT ${run.values} FROM seq, "PipelineRun" t WHERE t.id = ${param(1)}`,
    nodeRuns: `INSERT INTO "NodeRun" (${nodeRun.names}) SELECT ${nodeRun.values} FROM "PipelineRun" r, "NodeRun" n WHERE ${runsOfBatch} AND n."runId" = ${param(1)}`,
    events: `INSERT INTO "RunEvent" (${event.names}) SELECT ${event.values} FROM "PipelineRun" r, "RunEvent" e WHERE ${runsOfBatch} AND e."runId" = ${param(1)}`,
  };
}

/** Splits copies from … to-1 into one contiguous block per pipeline. */
function blocks(pipelineIds: readonly string[], from: number, to: number) {
  const per = Math.ceil((to - from) / pipelineIds.length);
  return pipelineIds
    .map((pipelineId, k) => ({
      pipelineId,
      first: from + k * per,
      last: Math.min(to, from + (k + 1) * per) - 1,
    }))
    .filter((b) => b.first <= b.last);
}

function sqliteWriter(url: string): HistoryWriter {
  const db = new Database(url.replace(/^file:/, ""));
  db.pragma("busy_timeout = 30000");
  const columns = Object.fromEntries(
    TABLES.map((t) => [
      t,
      (db.prepare(`PRAGMA table_info("${t}")`).all() as { name: string }[]).map((c) => c.name),
    ]),
  ) as Columns;
  const sql = statements(
    columns,
    "printf('00000000-0000-7000-8000-%012x', seq.i)",
    (n) => ["", "@template", "@pipelineId", "@firstId", "@lastId"][n]!,
  );
  const seq =
    "WITH RECURSIVE seq(i) AS (SELECT @first UNION ALL SELECT i + 1 FROM seq WHERE i < @last) ";
  const insertRuns = db.prepare(seq + sql.runs);
  const insertNodeRuns = db.prepare(sql.nodeRuns);
  const insertEvents = db.prepare(sql.events);
  const copy = db.transaction((template: string, block: ReturnType<typeof blocks>[number]) => {
    const { pipelineId, first, last } = block;
    insertRuns.run({ template, pipelineId, first, last });
    const batch = { template, pipelineId, firstId: idOf(first), lastId: idOf(last) };
    insertNodeRuns.run(batch);
    insertEvents.run(batch);
  });
  return {
    idOf,
    async copyRuns(template, pipelineIds, from, to) {
      for (const block of blocks(pipelineIds, from, to)) copy(template, block);
    },
    async analyze() {},
    async close() {
      db.close();
    },
  };
}

async function postgresWriter(url: string): Promise<HistoryWriter> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const columns = {} as Columns;
  for (const table of TABLES) {
    const { rows } = await client.query<{ column_name: string }>(
      "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
      [table],
    );
    columns[table] = rows.map((r) => r.column_name);
  }
  const sql = statements(
    columns,
    "'00000000-0000-7000-8000-' || lpad(to_hex(seq.i), 12, '0')",
    (n) => `$${n}::text`,
  );
  return {
    idOf,
    async copyRuns(template, pipelineIds, from, to) {
      for (const block of blocks(pipelineIds, from, to)) {
        const ids = [template, block.pipelineId, idOf(block.first), idOf(block.last)];
        await client.query("BEGIN");
        await client.query(
          `WITH seq(i) AS (SELECT generate_series($3::int, $4::int)) ${sql.runs}`,
          [template, block.pipelineId, block.first, block.last],
        );
        await client.query(sql.nodeRuns, ids);
        await client.query(sql.events, ids);
        await client.query("COMMIT");
      }
    },
    async analyze() {
      await client.query("ANALYZE");
    },
    async close() {
      await client.end();
    },
  };
}

/** A writer of copied history on the store's database. */
export function openHistoryWriter(
  provider: Exclude<Provider, "memory">,
  url: string,
): Promise<HistoryWriter> {
  return provider === "sqlite" ? Promise.resolve(sqliteWriter(url)) : postgresWriter(url);
}
