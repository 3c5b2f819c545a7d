/** What the SQL store's parts share: the driver, list parameters, paging. */
import { ACTIVE_RUN_STATUSES } from "../domain/status.ts";
import type { SqlDriver, SqlValue } from "./sql.ts";
import type { Page } from "./types.ts";

export function page<T>(rows: T[], first: number): Page<T> {
  return { items: rows.slice(0, first), hasNextPage: rows.length > first };
}

export function groupBy<T>(keys: readonly string[], items: readonly T[], key: (item: T) => string) {
  const groups = new Map<string, T[]>(keys.map((k) => [k, []]));
  for (const item of items) groups.get(key(item))?.push(item);
  return groups;
}

/**
 * `"status" IN ('QUEUED', 'RUNNING')`, written from the domain's list of active statuses
 * (literals, not parameters: the list is ours and fixed, and the planner sees it).
 */
export const ACTIVE_STATUS_SQL = `"status" IN (${ACTIVE_RUN_STATUSES.map((s) => `'${s}'`).join(", ")})`;

export abstract class SqlBase {
  constructor(protected readonly sql: SqlDriver) {}

  /** A list parameter: one statement text whatever the number of values. */
  protected inList(column: string, values: readonly string[]): [string, SqlValue] {
    return this.sql.dialect === "postgresql"
      ? [`${column} = ANY(?::text[])`, values as unknown as SqlValue]
      : [`${column} IN (SELECT value FROM json_each(?))`, JSON.stringify(values)];
  }
}
