/**
 * PostgreSQL: a commit in one statement. The fencing check, the events, the node runs, the run
 * patches and the pipeline's counters are data-modifying CTEs of one statement, atomic without
 * a transaction: one round trip instead of seven (BEGIN, the check, three writes, the counters,
 * COMMIT). A short run's whole life is then two round trips: its creation and this.
 *
 * Taken only for batches whose patched runs all name one pipeline (`RunPatch.pipelineId`, set
 * by the engine): its counter row is then the only row locked besides the batch's runs, which
 * are locked first, in id order, as every commit locks them; other batches use the
 * transaction. Same rules as that path: only runs `ownerId` holds are written, a terminal run
 * never changes again, and its counters move once.
 */
import { counterOf, RUN_STATUSES, TERMINAL_RUN_STATUSES } from "../domain/status.ts";
import type { SqlExecutor, SqlValue } from "./sql.ts";
import {
  EVENT_COLUMNS,
  eventRow,
  NODE_RUN_COLUMNS,
  NODE_RUN_UPSERT,
  nodeRunRow,
} from "./sql-rows.ts";
import type { CommitOutcome, RunPatch, WriteBatch } from "./types.ts";

const TERMINAL = [...TERMINAL_RUN_STATUSES];
const SUCCESSES = RUN_STATUSES.filter((status) => counterOf(status) === "successCount");
const ERRORS = RUN_STATUSES.filter((status) => counterOf(status) === "errorCount");

const FIELDS = [
  { name: "status", type: "text" },
  { name: "error", type: "text" },
  { name: "startedAt", type: "timestamptz" },
  { name: "completedAt", type: "timestamptz" },
  { name: "deadlineAt", type: "timestamptz" },
] as const;

const list = (names: readonly string[]) => names.map((n) => `"${n}"`).join(", ");
const unnest = (types: readonly string[]) =>
  `unnest(${types.map((type) => `?::${type}[]`).join(", ")})`;

const STATEMENT = `WITH held AS (
  SELECT "id" FROM "PipelineRun" WHERE "id" = ANY(?::text[]) AND "ownerId" = ? ORDER BY "id" FOR UPDATE
), events AS (
  INSERT INTO "RunEvent" (${list(EVENT_COLUMNS.map((c) => c.name))})
  SELECT * FROM ${unnest(EVENT_COLUMNS.map((c) => c.pgType))} AS u(${list(EVENT_COLUMNS.map((c) => c.name))})
  WHERE u."runId" IN (SELECT "id" FROM held) ON CONFLICT DO NOTHING
), nodes AS (
  INSERT INTO "NodeRun" (${list(NODE_RUN_COLUMNS.map((c) => c.name))})
  SELECT * FROM ${unnest(NODE_RUN_COLUMNS.map((c) => c.pgType))} AS u(${list(NODE_RUN_COLUMNS.map((c) => c.name))})
  WHERE u."runId" IN (SELECT "id" FROM held) ${NODE_RUN_UPSERT}
), patched AS (
  UPDATE "PipelineRun" AS r SET
    ${FIELDS.map((f) => `"${f.name}" = CASE WHEN u."has_${f.name}" THEN u."${f.name}" ELSE r."${f.name}" END`).join(",\n    ")},
    "ownerId" = CASE WHEN u."status" = ANY(?::text[]) THEN NULL ELSE r."ownerId" END,
    "leaseExpiresAt" = CASE WHEN u."status" = ANY(?::text[]) THEN NULL ELSE r."leaseExpiresAt" END
  FROM ${unnest(["text", ...FIELDS.flatMap((f) => ["bool", f.type])])}
    AS u("id", ${FIELDS.map((f) => `"has_${f.name}", "${f.name}"`).join(", ")})
  WHERE r."id" = u."id" AND r."id" IN (SELECT "id" FROM held) AND r."status" <> ALL(?::text[])
  RETURNING r."pipelineId", u."status"
), counted AS (
  UPDATE "Pipeline" SET
    "successCount" = "successCount" + (SELECT count(*) FROM patched WHERE "status" = ANY(?::text[])),
    "errorCount" = "errorCount" + (SELECT count(*) FROM patched WHERE "status" = ANY(?::text[]))
  WHERE "id" = ? AND EXISTS (SELECT 1 FROM patched WHERE "status" = ANY(?::text[]))
)
SELECT "id" FROM held`;

/** Columns of rows as one array per column, for unnest. */
const columnsOf = (rows: readonly SqlValue[][], width: number): SqlValue[][] =>
  Array.from({ length: width }, (_, i) => rows.map((row) => row[i] ?? null));

/** The commit, or null when the batch is not one this statement takes (see above). */
export async function commitInOneStatement(
  sql: SqlExecutor,
  batch: WriteBatch,
): Promise<CommitOutcome | null> {
  const { events, nodeRuns, runs, ownerId } = batch;
  if (ownerId === undefined) return null;
  const pipelineId = runs[0]?.pipelineId ?? null;
  if (runs.some((patch) => patch.pipelineId === undefined || patch.pipelineId !== pipelineId))
    return null;
  // Two patches of one run apply in order: the transaction's path does that.
  if (new Set(runs.map((patch) => patch.id)).size < runs.length) return null;
  const ids = [
    ...new Set([
      ...events.map((e) => e.runId),
      ...nodeRuns.map((n) => n.runId),
      ...runs.map((r) => r.id),
    ]),
  ];
  const patches = [...runs].sort((a, b) => (a.id < b.id ? -1 : 1));
  const patchColumns: SqlValue[][] = [patches.map((patch) => patch.id)];
  for (const { name } of FIELDS) {
    patchColumns.push(patches.map((patch) => patch[name] !== undefined));
    patchColumns.push(patches.map((patch: RunPatch) => patch[name] ?? null));
  }
  const arrays = (values: SqlValue[][]) => values as unknown as SqlValue[];
  const held = await sql.query<{ id: string }>(STATEMENT, [
    ids as unknown as SqlValue,
    ownerId,
    ...arrays(columnsOf(events.map(eventRow), EVENT_COLUMNS.length)),
    ...arrays(columnsOf(nodeRuns.map(nodeRunRow), NODE_RUN_COLUMNS.length)),
    TERMINAL as unknown as SqlValue,
    TERMINAL as unknown as SqlValue,
    ...arrays(patchColumns),
    TERMINAL as unknown as SqlValue,
    SUCCESSES as unknown as SqlValue,
    ERRORS as unknown as SqlValue,
    pipelineId,
    [...SUCCESSES, ...ERRORS] as unknown as SqlValue,
  ]);
  const kept = new Set(held.map((row) => String(row.id)));
  return { rejectedRuns: ids.filter((id) => !kept.has(id)) };
}
