/**
 * A thin SQL layer over the connection Prisma also uses (one better-sqlite3 handle, or one pg
 * pool), for the run and event path where Prisma Client's per-query cost dominates: a batch
 * of 2,000 node results took 110 ms through `$executeRawUnsafe` and 16 ms with prepared
 * statements here (see README, "Storage").
 *
 * SQL is written once with `?` placeholders and double-quoted identifiers, which both
 * databases accept; PostgreSQL placeholders are numbered on the fly.
 */
import type BetterSqlite3 from "better-sqlite3";
import { LRUCache } from "lru-cache";
import type pg from "pg";
import type { Logger } from "pino";

export type SqlValue = string | number | boolean | Date | null;

export interface SqlColumn {
  readonly name: string;
  /** PostgreSQL array element type for bulk inserts. */
  readonly pgType: "text" | "int4" | "timestamptz" | "bool";
}

export interface SqlExecutor {
  query<T = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Returns the number of rows changed. */
  execute(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /**
   * Inserts many rows with one statement per chunk. `conflict` is appended verbatim (an
   * `ON CONFLICT …` clause).
   */
  insertMany(
    table: string,
    columns: readonly SqlColumn[],
    rows: readonly (readonly SqlValue[])[],
    conflict?: string,
  ): Promise<void>;
}

export interface SqlDriver extends SqlExecutor {
  readonly dialect: "sqlite" | "postgresql";
  /** Runs `work` in one transaction; on PostgreSQL `FOR UPDATE` inside it locks rows. */
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Increments for every statement sent. */
  readonly stats: { queries: number };
}

/** A FIFO async lock. */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();

  async run<T>(work: () => Promise<T>): Promise<T> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    try {
      return await work();
    } finally {
      release();
    }
  }
}

/** The text format Prisma's SQLite adapter writes DateTime columns in. */
export const sqliteTimestamp = (date: Date): string => date.toISOString().replace("Z", "+00:00");

function sqliteParam(value: SqlValue): string | number | null {
  if (value instanceof Date) return sqliteTimestamp(value);
  if (typeof value === "boolean") return value ? 1 : 0;
  return value;
}

/**
 * SQLite through better-sqlite3. The driver is synchronous; a transaction holds `lock` so that
 * no other statement on the shared connection (Prisma's included: the store takes the same
 * lock for its writes) can slip into it between two awaits.
 */
export function createSqliteDriver(
  db: BetterSqlite3.Database,
  lock: Mutex,
  stats = { queries: 0 },
): SqlDriver {
  const cache = new LRUCache<string, BetterSqlite3.Statement>({ max: 500 });
  const prepare = (sql: string): BetterSqlite3.Statement => {
    let statement = cache.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      // Prisma turns safe integers on for the whole connection; this layer wants numbers.
      if (statement.reader) statement.safeIntegers(false);
      cache.set(sql, statement);
    }
    return statement;
  };
  const executor: SqlExecutor = {
    async query<T>(sql: string, params: readonly SqlValue[] = []) {
      stats.queries++;
      return prepare(sql).all(...params.map(sqliteParam)) as T[];
    },
    async execute(sql, params = []) {
      stats.queries++;
      return prepare(sql).run(...params.map(sqliteParam)).changes;
    },
    async insertMany(table, columns, rows, conflict = "") {
      if (rows.length === 0) return;
      // One prepared single-row statement run N times inside the caller's transaction is the
      // fastest form on SQLite (no statement text per batch size).
      const statement = prepare(
        `INSERT INTO "${table}" (${columns.map((c) => `"${c.name}"`).join(", ")}) VALUES (${columns.map(() => "?").join(", ")}) ${conflict}`,
      );
      stats.queries++;
      for (const row of rows) statement.run(...row.map(sqliteParam));
    },
  };
  // Outside a transaction a statement runs at once, unless a transaction is open on the
  // connection (it awaits between statements): then it waits, so that nobody reads what that
  // transaction has not committed, or writes into it.
  const outside =
    <A extends unknown[], R>(run: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      db.inTransaction ? lock.run(() => run(...args)) : run(...args);
  return {
    dialect: "sqlite",
    stats,
    query: outside(executor.query) as SqlExecutor["query"],
    execute: outside(executor.execute),
    insertMany: outside(executor.insertMany),
    transaction: (work) =>
      lock.run(async () => {
        prepare("BEGIN IMMEDIATE").run();
        try {
          const result = await work(executor);
          prepare("COMMIT").run();
          return result;
        } catch (error) {
          if (db.inTransaction) prepare("ROLLBACK").run();
          throw error;
        }
      }),
  };
}

function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** Most texts a pool prepares; later ones are sent unnamed. */
const MAX_PREPARED = 200;
/** "cached plan must not change result type": a table changed under a prepared `SELECT *`. */
const PLAN_CHANGED = "0A000";

/**
 * Names for the texts the SQL layer sends, so that each connection parses and plans a text
 * once instead of on every call: a commit of the run path is one statement of five CTEs, and
 * a short run's p50 went from 5.4 to 3.6 ms with them (README, "Storage"). The run path's
 * texts are a fixed set; past `MAX_PREPARED` distinct texts (statements built for a varying
 * number of rows) they go unnamed, so that a connection holds a bounded number.
 */
class StatementNames {
  readonly #texts = new Map<string, { readonly name?: string; readonly text: string }>();
  #named = 0;

  constructor(private readonly enabled: boolean) {}

  of(sql: string): { readonly name?: string; readonly text: string } {
    let config = this.#texts.get(sql);
    if (config) return config;
    const text = numbered(sql);
    if (!this.enabled || this.#named >= MAX_PREPARED) return { text };
    config = { name: `pipelines_${this.#named++}`, text };
    this.#texts.set(sql, config);
    return config;
  }

  /** Sends `sql` unnamed from now on (its prepared plan no longer fits the table). */
  forget(sql: string): void {
    this.#texts.set(sql, { text: numbered(sql) });
  }
}

function pgExecutor(
  client: pg.Pool | pg.PoolClient,
  stats: { queries: number },
  names: StatementNames,
  inTransaction: boolean,
): SqlExecutor {
  const send = async (sql: string, params: readonly SqlValue[]) => {
    stats.queries++;
    const config = names.of(sql);
    try {
      return await client.query({ ...config, values: params as SqlValue[] });
    } catch (error) {
      if (config.name === undefined || (error as { code?: string }).code !== PLAN_CHANGED)
        throw error;
      // A migration changed a table this prepared text reads. The statement did not run: send
      // it again unnamed, unless it was part of a transaction, which the error aborted.
      names.forget(sql);
      if (inTransaction) throw error;
      stats.queries++;
      return client.query({ ...names.of(sql), values: params as SqlValue[] });
    }
  };
  return {
    async query<T>(sql: string, params: readonly SqlValue[] = []) {
      return (await send(sql, params)).rows as T[];
    },
    async execute(sql, params = []) {
      return (await send(sql, params)).rowCount ?? 0;
    },
    async insertMany(table, columns, rows, conflict = "") {
      if (rows.length === 0) return;
      // unnest() over one array per column: one statement and one parameter per column,
      // whatever the number of rows.
      const arrays = columns.map((_, i) => rows.map((row) => row[i] ?? null));
      await send(
        `INSERT INTO "${table}" (${columns.map((c) => `"${c.name}"`).join(", ")}) SELECT * FROM unnest(${columns.map((c) => `?::${c.pgType}[]`).join(", ")}) ${conflict}`,
        arrays as unknown as SqlValue[],
      );
    },
  };
}

/** PostgreSQL through the pg pool Prisma's adapter also draws from. */
export function createPgDriver(
  pool: pg.Pool,
  stats = { queries: 0 },
  logger?: Pick<Logger, "debug">,
  { preparedStatements = true }: { preparedStatements?: boolean } = {},
): SqlDriver {
  const names = new StatementNames(preparedStatements);
  return {
    dialect: "postgresql",
    stats,
    ...pgExecutor(pool, stats, names, false),
    async transaction(work) {
      const client = await pool.connect();
      // A connection that fails while checked out emits 'error' on the client, not the pool;
      // unheard, it would end the process (store/index.ts also listens on every client from
      // its creation). The failing query rejects on its own.
      let broken: Error | undefined;
      const onError = (error: Error) => {
        broken = error;
        logger?.debug({ err: error }, "a PostgreSQL connection failed during a transaction");
      };
      client.on("error", onError);
      try {
        stats.queries++;
        await client.query("BEGIN");
        const result = await work(pgExecutor(client, stats, names, true));
        stats.queries++;
        await client.query("COMMIT");
        return result;
      } catch (error) {
        await client.query("ROLLBACK").catch((rollbackError: unknown) => {
          // ROLLBACK failing means the connection is gone: do not put it back in the pool.
          broken ??=
            rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        });
        throw error;
      } finally {
        client.off("error", onError);
        client.release(broken);
      }
    },
  };
}
