/**
 * The run list queries, written so that their cost follows the page, not the history: each
 * reads its rows through an index in id order and stops at the page's end.
 *
 * - The newest runs of each pipeline of a page: one index seek per pipeline on
 *   ("pipelineId", "id") — a LATERAL join on PostgreSQL, a correlated `IN (… LIMIT)` on SQLite —
 *   instead of ranking every run of those pipelines.
 * - Runs in some statuses: one ordered seek per status on ("status", "id") (or
 *   ("pipelineId", "status", "id")), merged and cut to the page; a status without runs costs a
 *   single index probe, where a filter on the primary key would scan the whole table backwards.
 *
 * `EXPLAIN` of each is checked in test/store-plans.test.ts on both databases.
 */
import type { SqlValue } from "./sql.ts";
import type { RunFilter } from "./types.ts";

/** Every column of a run but its definition (the largest; see the definitions cache). */
export const RUN_COLUMN_NAMES = [
  "id",
  "pipelineId",
  "pipelineVersion",
  "status",
  "triggerData",
  "error",
  "createdAt",
  "startedAt",
  "completedAt",
  "deadlineAt",
  "ownerId",
  "leaseExpiresAt",
  "cancelRequested",
  "rerunOf",
] as const;

const columns = (prefix = "") => RUN_COLUMN_NAMES.map((c) => `${prefix}"${c}"`).join(", ");
export const RUN_COLUMNS = columns();

export interface SqlQuery {
  readonly text: string;
  readonly params: SqlValue[];
}

type Dialect = "sqlite" | "postgresql";

/** A list parameter, as the dialect takes one (see SqlBase.inList). */
const list = (dialect: Dialect, values: readonly string[]): [string, SqlValue] =>
  dialect === "postgresql"
    ? ["unnest(?::text[])", values as unknown as SqlValue]
    : ["json_each(?)", JSON.stringify(values)];

/** Runs newest first, optionally of one pipeline and in some statuses; `first + 1` rows. */
export function listRunsQuery(_dialect: Dialect, filter: RunFilter): SqlQuery {
  const { first, after, pipelineId } = filter;
  const statuses = [...new Set(filter.statuses ?? [])];
  const where = (status?: string): [string, SqlValue[]] => {
    const parts: string[] = [];
    const params: SqlValue[] = [];
    if (pipelineId) parts.push(`"pipelineId" = ?`), params.push(pipelineId);
    if (status) parts.push(`"status" = ?`), params.push(status);
    if (after) parts.push(`"id" < ?`), params.push(after);
    return [parts.length ? `WHERE ${parts.join(" AND ")}` : "", params];
  };
  if (statuses.length <= 1) {
    const [clause, params] = where(statuses[0]);
    return {
      text: `SELECT ${RUN_COLUMNS} FROM "PipelineRun" ${clause} ORDER BY "id" DESC LIMIT ?`,
      params: [...params, first + 1],
    };
  }
  const params: SqlValue[] = [];
  const parts = statuses.map((status) => {
    const [clause, own] = where(status);
    params.push(...own, first + 1);
    return `SELECT * FROM (SELECT ${RUN_COLUMNS} FROM "PipelineRun" ${clause} ORDER BY "id" DESC LIMIT ?) s`;
  });
  return {
    text: `SELECT * FROM (${parts.join(" UNION ALL ")}) merged ORDER BY "id" DESC LIMIT ?`,
    params: [...params, first + 1],
  };
}

/** The newest `limit` runs of each pipeline, grouped by pipeline, newest first. */
export function latestRunsQuery(
  dialect: Dialect,
  pipelineIds: readonly string[],
  limit: number,
): SqlQuery {
  const [ids, param] = list(dialect, pipelineIds);
  if (dialect === "postgresql") {
    return {
      text: `SELECT r.* FROM ${ids} AS p("pipelineId") CROSS JOIN LATERAL (SELECT ${RUN_COLUMNS} FROM "PipelineRun" WHERE "pipelineId" = p."pipelineId" ORDER BY "id" DESC LIMIT ?) r ORDER BY r."pipelineId", r."id" DESC`,
      params: [param, limit],
    };
  }
  return {
    text: `SELECT ${columns("r.")} FROM ${ids} p JOIN "PipelineRun" r ON r."id" IN (SELECT "id" FROM "PipelineRun" WHERE "pipelineId" = p."value" ORDER BY "id" DESC LIMIT ?) ORDER BY r."pipelineId", r."id" DESC`,
    params: [param, limit],
  };
}
