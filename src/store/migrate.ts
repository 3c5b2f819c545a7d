/**
 * Applies the committed migrations (prisma/migrations/<provider>/<name>/migration.sql) at
 * start-up. The SQL files are written by `prisma migrate diff` (see scripts/prisma.ts); they
 * are applied here rather than by `prisma migrate deploy` because Prisma's WASM schema engine
 * cannot read a live PostgreSQL database (prisma/orm#27403). Applied migrations are recorded
 * in `_prisma_migrations` with Prisma's own layout and checksums, so the Prisma CLI agrees.
 *
 * Several instances may start at once: PostgreSQL serialises them with an advisory lock,
 * SQLite with BEGIN IMMEDIATE. Each migration is one transaction.
 */
import { createHash, randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type BetterSqlite3 from "better-sqlite3";
import type pg from "pg";
import { sqliteTimestamp } from "./sql.ts";

export const MIGRATIONS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../prisma/migrations",
);

export interface Migration {
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

export interface MigrationOutcome {
  readonly applied: readonly string[];
  /** Names whose file changed after being applied (not re-applied; logged by the caller). */
  readonly changed: readonly string[];
}

/** Migrations for a provider, in name order (names start with a timestamp). */
export function readMigrations(
  provider: "sqlite" | "postgresql",
  dir = MIGRATIONS_DIR,
): Migration[] {
  const root = path.join(dir, provider);
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter(
      (entry) => entry.isDirectory() && existsSync(path.join(root, entry.name, "migration.sql")),
    )
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(path.join(root, name, "migration.sql"), "utf8");
      return { name, sql, checksum: createHash("sha256").update(sql).digest("hex") };
    });
}

function compare(migrations: readonly Migration[], applied: Map<string, string>) {
  return {
    pending: migrations.filter((m) => !applied.has(m.name)),
    changed: migrations
      .filter((m) => applied.has(m.name) && applied.get(m.name) !== m.checksum)
      .map((m) => m.name),
  };
}

const SQLITE_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" TEXT PRIMARY KEY NOT NULL,
  "checksum" TEXT NOT NULL,
  "finished_at" DATETIME,
  "migration_name" TEXT NOT NULL,
  "logs" TEXT,
  "rolled_back_at" DATETIME,
  "started_at" DATETIME NOT NULL DEFAULT current_timestamp,
  "applied_steps_count" INTEGER UNSIGNED NOT NULL DEFAULT 0
)`;

/** Applies pending migrations to a SQLite database. Synchronous: it runs before serving. */
export function migrateSqlite(db: BetterSqlite3.Database, dir?: string): MigrationOutcome {
  const migrations = readMigrations("sqlite", dir);
  db.exec(SQLITE_TABLE);
  const appliedNames: string[] = [];
  let changed: string[] = [];
  // BEGIN IMMEDIATE takes the write lock before reading the list, so two processes starting
  // on one file cannot both apply the same migration.
  const run = db.transaction(() => {
    const rows = db
      .prepare(
        `SELECT "migration_name", "checksum" FROM "_prisma_migrations" WHERE "rolled_back_at" IS NULL AND "finished_at" IS NOT NULL`,
      )
      .all() as { migration_name: string; checksum: string }[];
    const state = compare(migrations, new Map(rows.map((r) => [r.migration_name, r.checksum])));
    changed = state.changed;
    for (const migration of state.pending) {
      const started = sqliteTimestamp(new Date());
      db.exec(migration.sql);
      db.prepare(
        `INSERT INTO "_prisma_migrations" ("id", "checksum", "finished_at", "migration_name", "started_at", "applied_steps_count") VALUES (?, ?, ?, ?, ?, 1)`,
      ).run(randomUUID(), migration.checksum, sqliteTimestamp(new Date()), migration.name, started);
      appliedNames.push(migration.name);
    }
  });
  run.immediate();
  return { applied: appliedNames, changed };
}

const PG_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;
/** Arbitrary but fixed: the advisory lock all instances of this server agree on. */
const PG_LOCK_KEY = 72_707_369;

/** Applies pending migrations to a PostgreSQL database. */
export async function migratePostgres(pool: pg.Pool, dir?: string): Promise<MigrationOutcome> {
  const migrations = readMigrations("postgresql", dir);
  const client = await pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [PG_LOCK_KEY]);
    try {
      await client.query(PG_TABLE);
      const { rows } = await client.query<{ migration_name: string; checksum: string }>(
        `SELECT "migration_name", "checksum" FROM "_prisma_migrations" WHERE "rolled_back_at" IS NULL AND "finished_at" IS NOT NULL`,
      );
      const state = compare(migrations, new Map(rows.map((r) => [r.migration_name, r.checksum])));
      const applied: string[] = [];
      for (const migration of state.pending) {
        const started = new Date();
        await client.query("BEGIN");
        try {
          // No parameters: pg sends it with the simple protocol, which runs every statement.
          await client.query(migration.sql);
          await client.query(
            `INSERT INTO "_prisma_migrations" ("id", "checksum", "finished_at", "migration_name", "started_at", "applied_steps_count") VALUES ($1, $2, now(), $3, $4, 1)`,
            [randomUUID(), migration.checksum, migration.name, started],
          );
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK");
          throw new Error(`migration ${migration.name} failed: ${(error as Error).message}`);
        }
        applied.push(migration.name);
      }
      return { applied, changed: state.changed };
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [PG_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
}
