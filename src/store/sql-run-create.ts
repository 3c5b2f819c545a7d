/**
 * Creating runs: many in one transaction when they are started at the same moment (2,000
 * one-node runs cost one transaction, not 2,000). The pipelines' counters are moved first,
 * one statement per pipeline in id order: the update takes each pipeline's row lock, so runs
 * of one pipeline created concurrently queue behind it instead of deadlocking, and a pipeline
 * found missing (deleted since the caller read it) gives its runs a clean NOT_FOUND.
 *
 * A run `onlyIfCurrent` is checked against the pipeline's version under that same lock: a
 * pipeline updated since the caller read it gives the run VERSION_CHANGED, and it is neither
 * inserted nor counted.
 */
import type { PipelineDefinition } from "../domain/definition.ts";
import type { RunRecord } from "../domain/records.ts";
import { counterOf } from "../domain/status.ts";
import { stringifyJson } from "./codec.ts";
import { newId } from "./ids.ts";
import type { SqlColumn, SqlExecutor, SqlValue } from "./sql.ts";
import { type NewRunRequest, StoreError, versionChanged } from "./types.ts";

const RUN_INSERT_COLUMNS: readonly SqlColumn[] = [
  { name: "id", pgType: "text" },
  { name: "pipelineId", pgType: "text" },
  { name: "pipelineVersion", pgType: "int4" },
  { name: "status", pgType: "text" },
  { name: "triggerData", pgType: "text" },
  { name: "error", pgType: "text" },
  { name: "definition", pgType: "text" },
  { name: "createdAt", pgType: "timestamptz" },
  { name: "startedAt", pgType: "timestamptz" },
  { name: "completedAt", pgType: "timestamptz" },
  { name: "cancelRequested", pgType: "bool" },
  { name: "ownerId", pgType: "text" },
  { name: "leaseExpiresAt", pgType: "timestamptz" },
  { name: "rerunOf", pgType: "text" },
];

/** A definition's JSON, made once for all the runs of a version created together. */
const definitionTexts = new WeakMap<PipelineDefinition, string>();
function definitionText(definition: PipelineDefinition): string {
  let text = definitionTexts.get(definition);
  if (text === undefined) {
    text = JSON.stringify(definition);
    definitionTexts.set(definition, text);
  }
  return text;
}

export interface CreatedRuns {
  /** In the order of the requests: the run, or NOT_FOUND. */
  readonly records: (RunRecord | StoreError)[];
  /** The requests whose runs were inserted, with their ids, for their events and node runs. */
  readonly inserted: readonly { readonly id: string; readonly request: NewRunRequest }[];
}

/** Runs per pipeline, and how many of them are created successful or failed already. */
function countsOf(requests: readonly NewRunRequest[]) {
  const counts = new Map<string, { runs: number; successes: number; errors: number }>();
  for (const { run } of requests) {
    const count = counts.get(run.pipelineId) ?? { runs: 0, successes: 0, errors: 0 };
    const counter = counterOf(run.status);
    count.runs++;
    if (counter === "successCount") count.successes++;
    if (counter === "errorCount") count.errors++;
    counts.set(run.pipelineId, count);
  }
  return counts;
}

const COUNT_RUNS = `UPDATE "Pipeline" SET "runCount" = "runCount" + ?, "successCount" = "successCount" + ?, "errorCount" = "errorCount" + ? WHERE "id" = ?`;

/** The current versions of the pipelines of runs `onlyIfCurrent`, rows locked in id order. */
const CURRENT_VERSIONS = {
  postgresql: `SELECT "id", "version" FROM "Pipeline" WHERE "id" = ANY(?::text[]) ORDER BY "id" FOR UPDATE`,
  // The caller's transaction holds SQLite's write lock already.
  sqlite: `SELECT "id", "version" FROM "Pipeline" WHERE "id" IN (SELECT value FROM json_each(?))`,
};

/** The runs `onlyIfCurrent` whose pipeline is (still there and) at another version now. */
async function staleRequests(
  tx: SqlExecutor,
  dialect: "sqlite" | "postgresql",
  requests: readonly NewRunRequest[],
): Promise<ReadonlySet<NewRunRequest>> {
  const checked = requests.filter((request) => request.run.onlyIfCurrent);
  if (checked.length === 0) return new Set();
  const ids = [...new Set(checked.map((request) => request.run.pipelineId))];
  const rows = await tx.query<{ id: string; version: number }>(CURRENT_VERSIONS[dialect], [
    dialect === "postgresql" ? (ids as unknown as SqlValue) : JSON.stringify(ids),
  ]);
  const versions = new Map(rows.map((row) => [row.id, Number(row.version)]));
  return new Set(
    checked.filter(({ run }) => {
      const version = versions.get(run.pipelineId);
      return version !== undefined && version !== run.pipelineVersion;
    }),
  );
}

/** Moves the counters and inserts the runs, inside the caller's transaction. */
export async function insertRuns(
  tx: SqlExecutor,
  dialect: "sqlite" | "postgresql",
  requests: readonly NewRunRequest[],
): Promise<CreatedRuns> {
  const stale = await staleRequests(tx, dialect, requests);
  const existing = new Set<string>();
  for (const [pipelineId, { runs, successes, errors }] of [
    ...countsOf(requests.filter((request) => !stale.has(request))),
  ].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const counted = await tx.execute(COUNT_RUNS, [runs, successes, errors, pipelineId]);
    if (counted > 0) existing.add(pipelineId);
  }
  const created = runRows(requests, existing, stale);
  await tx.insertMany("PipelineRun", RUN_INSERT_COLUMNS, created.rows);
  return created;
}

const INSERT_AT_ONCE = (counted: string) =>
  `WITH counted AS (${counted} RETURNING "id") INSERT INTO "PipelineRun" (${RUN_INSERT_COLUMNS.map((c) => `"${c.name}"`).join(", ")}) SELECT * FROM unnest(${RUN_INSERT_COLUMNS.map((c) => `?::${c.pgType}[]`).join(", ")}) WHERE EXISTS (SELECT 1 FROM counted) RETURNING "id"`;
const INSERT_ANY_VERSION = INSERT_AT_ONCE(COUNT_RUNS);
const INSERT_IF_CURRENT = INSERT_AT_ONCE(`${COUNT_RUNS} AND "version" = ?`);

/**
 * PostgreSQL, runs of one pipeline with no events or node runs of their own (runs started
 * fresh), all `onlyIfCurrent` at one version or none of them: the counters and the rows in one
 * statement, atomic without a transaction: one round trip instead of four (BEGIN, counters,
 * rows, COMMIT). Null when the requests are not such a batch.
 */
export async function insertRunsAtOnce(
  sql: SqlExecutor,
  requests: readonly NewRunRequest[],
): Promise<(RunRecord | StoreError)[] | null> {
  const first = requests[0]!.run;
  const fresh = requests.every(
    ({ run, events, nodeRuns }) =>
      !events?.length &&
      !nodeRuns?.length &&
      run.pipelineId === first.pipelineId &&
      Boolean(run.onlyIfCurrent) === Boolean(first.onlyIfCurrent) &&
      (!first.onlyIfCurrent || run.pipelineVersion === first.pipelineVersion),
  );
  if (!fresh) return null;
  const { pipelineId } = first;
  const { runs, successes, errors } = countsOf(requests).get(pipelineId)!;
  const created = runRows(requests, new Set([pipelineId]), new Set());
  const arrays = RUN_INSERT_COLUMNS.map((_, i) => created.rows.map((row) => row[i] ?? null));
  const counted = first.onlyIfCurrent
    ? [runs, successes, errors, pipelineId, first.pipelineVersion]
    : [runs, successes, errors, pipelineId];
  const inserted = await sql.query<{ id: string }>(
    first.onlyIfCurrent ? INSERT_IF_CURRENT : INSERT_ANY_VERSION,
    [...counted, ...(arrays as unknown as SqlValue[])],
  );
  if (inserted.length > 0) return created.records;
  // Nothing inserted: the pipeline is gone, or (only then asked) at another version.
  const found =
    first.onlyIfCurrent &&
    (await sql.query(`SELECT 1 FROM "Pipeline" WHERE "id" = ?`, [pipelineId])).length > 0;
  return requests.map(() =>
    found
      ? versionChanged(first)
      : new StoreError("NOT_FOUND", `pipeline "${pipelineId}" does not exist`),
  );
}

/**
 * The records and rows of the runs whose pipeline exists; NOT_FOUND for the others, and
 * VERSION_CHANGED for the `stale` ones.
 */
function runRows(
  requests: readonly NewRunRequest[],
  existing: ReadonlySet<string>,
  stale: ReadonlySet<NewRunRequest>,
): CreatedRuns & {
  rows: SqlValue[][];
} {
  const now = new Date();
  const inserted: { id: string; request: NewRunRequest }[] = [];
  const rows: SqlValue[][] = [];
  const records = requests.map((request): RunRecord | StoreError => {
    const { run } = request;
    if (stale.has(request)) return versionChanged(run);
    if (!existing.has(run.pipelineId))
      return new StoreError("NOT_FOUND", `pipeline "${run.pipelineId}" does not exist`);
    const record: RunRecord = {
      id: newId(),
      pipelineId: run.pipelineId,
      pipelineVersion: run.pipelineVersion,
      status: run.status,
      triggerData: structuredClone(run.triggerData),
      error: run.error,
      definition: run.definition,
      createdAt: now,
      startedAt: run.startedAt,
      completedAt: run.completedAt,
      deadlineAt: null,
      ownerId: run.lease?.ownerId ?? null,
      leaseExpiresAt: run.lease?.leaseUntil ?? null,
      cancelRequested: false,
      rerunOf: run.rerunOf ?? null,
    };
    inserted.push({ id: record.id, request });
    rows.push([
      record.id,
      record.pipelineId,
      record.pipelineVersion,
      record.status,
      stringifyJson(run.triggerData),
      record.error,
      definitionText(run.definition),
      now,
      record.startedAt,
      record.completedAt,
      false,
      record.ownerId,
      record.leaseExpiresAt,
      record.rerunOf,
    ]);
    return record;
  });
  return { records, inserted, rows };
}
