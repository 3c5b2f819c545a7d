/**
 * Run patches inside a commit's transaction. A patch to a terminal status is applied only if
 * the run has not ended yet, and frees its lease; the runs it ended are returned, so that their
 * pipelines' counters move exactly once.
 */
import type { RunStatus } from "../domain/status.ts";
import { TERMINAL_RUN_STATUSES } from "../domain/status.ts";
import { type SqlExecutor, type SqlValue, sqliteTimestamp } from "./sql.ts";
import type { RunPatch } from "./types.ts";

const TERMINAL = [...TERMINAL_RUN_STATUSES];
/** The fields a RunPatch may set, and their PostgreSQL types for unnest. */
const PATCH_FIELDS = ["status", "error", "startedAt", "completedAt", "deadlineAt"] as const;
const PATCH_TYPES: Record<string, string> = {
  id: "text",
  status: "text",
  error: "text",
  startedAt: "timestamptz",
  completedAt: "timestamptz",
  deadlineAt: "timestamptz",
};

/** A patch that ended its run: the pipeline's counters are due. */
export interface RunEnding {
  readonly pipelineId: string;
  readonly status: RunStatus;
}

export async function applyRunPatchesOneByOne(
  tx: SqlExecutor,
  patches: readonly RunPatch[],
): Promise<RunEnding[]> {
  const endings: RunEnding[] = [];
  for (const patch of patches) {
    const ended = await applyRunPatch(tx, patch);
    if (ended) endings.push(ended);
  }
  return endings;
}

/**
 * PostgreSQL: the patches that set the same fields in one statement each (rows from unnest,
 * in id order), instead of a round trip per run: 2,000 runs ending together are a few
 * statements. Same rule as applyRunPatch.
 */
export async function applyRunPatchesTogether(
  tx: SqlExecutor,
  patches: readonly RunPatch[],
): Promise<RunEnding[]> {
  // Two patches of one run in a batch apply in order, each seeing the other's effect.
  if (new Set(patches.map((patch) => patch.id)).size < patches.length)
    return applyRunPatchesOneByOne(tx, patches);
  const endings: RunEnding[] = [];
  for (const [fields, group] of byShape(patches)) {
    const columns = ["id", ...fields];
    const arrays = columns.map((column) =>
      group.map((patch) => (patch as unknown as Record<string, SqlValue>)[column] ?? null),
    );
    const sets = fields.map((field) => `"${field}" = u."${field}"`);
    // A terminal status frees the lease; a non-terminal one leaves it.
    if (fields.includes("status"))
      sets.push(
        `"ownerId" = CASE WHEN u."status" = ANY(?::text[]) THEN NULL ELSE r."ownerId" END`,
        `"leaseExpiresAt" = CASE WHEN u."status" = ANY(?::text[]) THEN NULL ELSE r."leaseExpiresAt" END`,
      );
    const statusParams = fields.includes("status") ? [TERMINAL, TERMINAL] : [];
    const rows = await tx.query<{ pipelineId: string; status: string | null }>(
      `UPDATE "PipelineRun" AS r SET ${sets.join(", ")} FROM unnest(${columns.map((column) => `?::${PATCH_TYPES[column]}[]`).join(", ")}) AS u(${columns.map((c) => `"${c}"`).join(", ")}) WHERE r."id" = u."id" AND r."status" <> ALL(?::text[]) RETURNING r."pipelineId", ${fields.includes("status") ? `u."status"` : "NULL"} AS "status"`,
      [
        ...(statusParams as unknown as SqlValue[]),
        ...(arrays as unknown as SqlValue[]),
        TERMINAL as unknown as SqlValue,
      ],
    );
    for (const row of rows) {
      const status = row.status as RunStatus | null;
      if (status && TERMINAL_RUN_STATUSES.has(status))
        endings.push({ pipelineId: String(row.pipelineId), status });
    }
  }
  return endings;
}

/**
 * SQLite: the same, the rows of each group given as one JSON array (json_each) instead of a
 * statement per run: for 2,000 one-node runs ending in one commit, the statement per run was a
 * tenth of the engine's whole time. Same rule as applyRunPatch.
 */
export async function applyRunPatchesAsJson(
  tx: SqlExecutor,
  patches: readonly RunPatch[],
): Promise<RunEnding[]> {
  if (patches.length < 2 || new Set(patches.map((patch) => patch.id)).size < patches.length)
    return applyRunPatchesOneByOne(tx, patches);
  const endings: RunEnding[] = [];
  for (const [fields, group] of byShape(patches)) {
    const columns = ["id", ...fields];
    const rows = group.map((patch) =>
      columns.map((column) => {
        const value = (patch as unknown as Record<string, SqlValue | undefined>)[column] ?? null;
        return value instanceof Date ? sqliteTimestamp(value) : value;
      }),
    );
    const terminal = TERMINAL.map(() => "?").join(", ");
    const sets = fields.map((field) => `"${field}" = u."${field}"`);
    if (fields.includes("status"))
      sets.push(
        `"ownerId" = CASE WHEN u."status" IN (${terminal}) THEN NULL ELSE "ownerId" END`,
        `"leaseExpiresAt" = CASE WHEN u."status" IN (${terminal}) THEN NULL ELSE "leaseExpiresAt" END`,
      );
    const statusParams = fields.includes("status") ? [...TERMINAL, ...TERMINAL] : [];
    const updated = await tx.query<{ pipelineId: string; status: string }>(
      `UPDATE "PipelineRun" SET ${sets.join(", ")} FROM (SELECT ${columns.map((column, i) => `value ->> ${i} AS "${column}"`).join(", ")} FROM json_each(?)) AS u WHERE "PipelineRun"."id" = u."id" AND "PipelineRun"."status" NOT IN (${terminal}) RETURNING "pipelineId", "status"`,
      [...statusParams, JSON.stringify(rows), ...TERMINAL],
    );
    if (!fields.includes("status")) continue;
    for (const row of updated) {
      const status = String(row.status) as RunStatus;
      if (TERMINAL_RUN_STATUSES.has(status))
        endings.push({ pipelineId: String(row.pipelineId), status });
    }
  }
  return endings;
}

/** Patches grouped by the fields they set (patches that set none are left out). */
function byShape(patches: readonly RunPatch[]): Map<(typeof PATCH_FIELDS)[number][], RunPatch[]> {
  const shapes = new Map<string, { fields: (typeof PATCH_FIELDS)[number][]; group: RunPatch[] }>();
  for (const patch of patches) {
    const fields = PATCH_FIELDS.filter((field) => patch[field] !== undefined);
    if (fields.length === 0) continue;
    const key = fields.join(",");
    const shape = shapes.get(key);
    if (shape) shape.group.push(patch);
    else shapes.set(key, { fields, group: [patch] });
  }
  return new Map([...shapes.values()].map(({ fields, group }) => [fields, group]));
}

/**
 * Applies a patch unless the run has ended already. Returns the run's pipeline and new
 * status when the patch ended it (its counters are then due), else null. Invariant: a
 * terminal run never changes again, and its counters move exactly once.
 */
async function applyRunPatch(tx: SqlExecutor, patch: RunPatch): Promise<RunEnding | null> {
  const sets: string[] = [];
  const params: SqlValue[] = [];
  for (const field of PATCH_FIELDS) {
    if (patch[field] !== undefined) {
      sets.push(`"${field}" = ?`);
      params.push(patch[field]);
    }
  }
  const terminal = patch.status !== undefined && TERMINAL_RUN_STATUSES.has(patch.status);
  if (terminal) sets.push(`"ownerId" = NULL`, `"leaseExpiresAt" = NULL`);
  if (sets.length === 0) return null;
  const updated = await tx.query<{ pipelineId: string }>(
    `UPDATE "PipelineRun" SET ${sets.join(", ")} WHERE "id" = ? AND "status" NOT IN (${TERMINAL.map(() => "?").join(", ")}) RETURNING "pipelineId"`,
    [...params, patch.id, ...TERMINAL],
  );
  return updated.length > 0 && terminal
    ? { pipelineId: String(updated[0]!.pipelineId), status: patch.status! }
    : null;
}
