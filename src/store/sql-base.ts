/** What the SQL store's parts share: the driver, list parameters, paging. */
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

export abstract class SqlBase {
  constructor(protected readonly sql: SqlDriver) {}

  /** A list parameter: one statement text whatever the number of values. */
  protected inList(column: string, values: readonly string[]): [string, SqlValue] {
    return this.sql.dialect === "postgresql"
      ? [`${column} = ANY(?::text[])`, values as unknown as SqlValue]
      : [`${column} IN (SELECT value FROM json_each(?))`, JSON.stringify(values)];
  }
}
