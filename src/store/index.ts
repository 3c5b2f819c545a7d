/**
 * Opens the store the configuration names: SQLite (file created on first start) or
 * PostgreSQL, migrated before it is returned.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";
import type BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import type { Logger } from "pino";
import { PrismaClient as PostgresClient } from "./generated/postgresql/client.ts";
import { PrismaClient as SqliteClient } from "./generated/sqlite/client.ts";
import { type MigrationOutcome, migratePostgres, migrateSqlite } from "./migrate.ts";
import { createPgDriver, createSqliteDriver, Mutex } from "./sql.ts";
import { SqlStore } from "./sql-store.ts";
import type { Store } from "./types.ts";

export interface OpenStoreOptions {
  readonly databaseUrl: string;
  readonly provider: "sqlite" | "postgresql";
  /** Told which migrations were applied or changed on disk. */
  readonly onMigrated?: (outcome: MigrationOutcome) => void;
  /** PostgreSQL connections in the pool. @default 10 */
  readonly poolSize?: number;
  /** PostgreSQL: name the SQL layer's statements, so that each is planned once per connection. @default true */
  readonly preparedStatements?: boolean;
  /** Where connection errors are reported. @default silent */
  readonly logger?: Pick<Logger, "warn" | "debug">;
}

type AdapterFactory = PrismaBetterSQLite3 | PrismaPg;
type Adapter = Awaited<ReturnType<AdapterFactory["connect"]>>;

/**
 * Wraps an adapter so that every statement Prisma sends is counted with those of the SQL
 * layer, and hands the adapter to `onConnect`.
 */
function countingFactory<F extends AdapterFactory>(
  inner: F,
  stats: { queries: number },
  onConnect?: (adapter: Adapter) => void,
): F {
  const count = <T extends { queryRaw: Adapter["queryRaw"]; executeRaw: Adapter["executeRaw"] }>(
    queryable: T,
  ): T => {
    const queryRaw = queryable.queryRaw.bind(queryable);
    const executeRaw = queryable.executeRaw.bind(queryable);
    queryable.queryRaw = (query) => {
      stats.queries++;
      return queryRaw(query);
    };
    queryable.executeRaw = (query) => {
      stats.queries++;
      return executeRaw(query);
    };
    return queryable;
  };
  return Object.assign(Object.create(Object.getPrototypeOf(inner)), inner, {
    provider: inner.provider,
    adapterName: inner.adapterName,
    connect: async () => {
      const adapter = count(await inner.connect());
      const startTransaction = adapter.startTransaction.bind(adapter);
      adapter.startTransaction = async (level) => count(await startTransaction(level));
      onConnect?.(adapter);
      return adapter;
    },
    connectToShadowDb: () => inner.connectToShadowDb(),
  }) as F;
}

async function openSqlite(options: OpenStoreOptions): Promise<Store> {
  const file = options.databaseUrl.replace(/^file:/, "");
  if (file !== ":memory:") mkdirSync(path.dirname(file), { recursive: true });
  const stats = { queries: 0 };
  let db: BetterSqlite3.Database | undefined;
  const factory = countingFactory(
    new PrismaBetterSQLite3(
      { url: options.databaseUrl, timeout: 5000 },
      { timestampFormat: "iso8601" },
    ),
    stats,
    (adapter) => {
      // The adapter keeps its better-sqlite3 handle in `client`; the SQL layer shares it so
      // that there is one connection and one writer.
      db = (adapter as unknown as { client: BetterSqlite3.Database }).client;
    },
  );
  const prisma = new SqliteClient({ adapter: factory });
  await prisma.$connect();
  if (!db) throw new Error("the SQLite adapter did not expose its connection");
  db.pragma("journal_mode = WAL");
  // NORMAL in WAL mode: a power loss may drop the last commits but never corrupts the file.
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  // Not `onMigrated?.(migrateSqlite(db))`: optional chaining would skip the migration itself.
  const migrated = migrateSqlite(db);
  options.onMigrated?.(migrated);
  const lock = new Mutex();
  return new SqlStore({
    provider: "sqlite",
    prisma,
    sql: createSqliteDriver(db, lock, stats),
    writeLock: lock,
    close: () => prisma.$disconnect(),
  });
}

async function openPostgres(options: OpenStoreOptions): Promise<Store> {
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize ?? 10 });
  // A connection failing must not crash the process, whoever holds it: an idle one is reported
  // on the pool (which replaces it); one checked out (by Prisma's or the SQL layer's
  // transactions, or a plain query) on its client, where a listener from the moment the client
  // exists keeps the 'error' event from going unheard. The call using it rejects on its own.
  // Logged at debug: the outage itself is logged once by the engine (engine/availability.ts).
  pool.on("error", (error) =>
    options.logger?.debug({ err: error }, "an idle PostgreSQL connection failed; replacing it"),
  );
  pool.on("connect", (client) =>
    client.on("error", (error) =>
      options.logger?.debug({ err: error }, "a PostgreSQL connection failed"),
    ),
  );
  try {
    const migrated = await migratePostgres(pool);
    options.onMigrated?.(migrated);
  } catch (error) {
    await pool.end();
    throw error;
  }
  const sql = createPgDriver(pool, undefined, options.logger, {
    preparedStatements: options.preparedStatements,
  });
  const factory = countingFactory(new PrismaPg(pool), sql.stats);
  const prisma = new PostgresClient({ adapter: factory });
  return new SqlStore({
    provider: "postgresql",
    // The two generated clients have the same models; the store is written against one type.
    prisma: prisma as unknown as SqliteClient,
    sql,
    close: async () => {
      await prisma.$disconnect();
      await pool.end();
    },
  });
}

/** Opens and migrates the configured database. */
export function openStore(options: OpenStoreOptions): Promise<Store> {
  return options.provider === "postgresql" ? openPostgres(options) : openSqlite(options);
}
