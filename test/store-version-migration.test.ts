/**
 * The migration that adds PipelineVersion, on each SQL provider: a pipeline stored before it
 * gets its current definition as its one version.
 */
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import pg from "pg";
import { afterEach, expect, it } from "vitest";
import { openStore } from "../src/store/index.ts";
import { migratePostgres, migrateSqlite } from "../src/store/migrate.ts";
import { createTestDatabase, describeProviders, type TestDatabase } from "./helpers/databases.ts";
import { definition, sqlProviders } from "./helpers/store-fixtures.ts";

const MIGRATIONS = fileURLToPath(new URL("../prisma/migrations/", import.meta.url));
const ID = "0190a000-0000-7000-8000-000000000001";
const UPDATED = new Date("2026-11-30T10:00:00.000Z");

/** A copy of the migrations of `provider` that stops before the versions table. */
function migrationsBeforeVersions(provider: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), "pipelines-migrations-"));
  for (const name of readdirSync(path.join(MIGRATIONS, provider))) {
    if (name.endsWith("_pipeline_versions")) break;
    cpSync(path.join(MIGRATIONS, provider, name), path.join(dir, provider, name), {
      recursive: true,
    });
  }
  return dir;
}

describeProviders(sqlProviders)("the PipelineVersion migration on %s", (provider) => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await database?.drop();
  });

  it("gives every existing pipeline its current definition as a version", async () => {
    database = await createTestDatabase(provider);
    const old = migrationsBeforeVersions(provider);
    const d = definition("before");
    const values = [
      ID,
      d.name,
      JSON.stringify(d.nodes),
      JSON.stringify(d.edges),
      d.maxRetriesPerNode,
      d.timeoutSeconds,
      d.maxConcurrency,
      d.breaker.failureThreshold,
      d.breaker.recoveryTimeoutMs,
      3,
    ];
    const insert = `INSERT INTO "Pipeline" ("id", "name", "nodes", "edges", "maxRetriesPerNode", "timeoutSeconds", "maxConcurrency", "breakerFailureThreshold", "breakerRecoveryTimeoutMs", "version", "createdAt", "updatedAt")`;
    try {
      if (provider === "sqlite") {
        const db = new Database(database.url.replace(/^file:/, ""));
        migrateSqlite(db, old);
        db.prepare(`${insert} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
          ...values,
          "2026-11-01T00:00:00.000Z",
          UPDATED.toISOString(),
        );
        db.close();
      } else {
        const pool = new pg.Pool({ connectionString: database.url, max: 1 });
        await migratePostgres(pool, old);
        await pool.query(`${insert} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, [
          ...values,
          new Date("2026-11-01T00:00:00.000Z"),
          UPDATED,
        ]);
        await pool.end();
      }
    } finally {
      rmSync(old, { recursive: true, force: true });
    }

    const store = await openStore({ provider, databaseUrl: database.url, poolSize: 2 });
    try {
      expect((await store.getPipelineVersions([ID])).get(ID)).toEqual([
        { pipelineId: ID, version: 3, definition: d, createdAt: UPDATED },
      ]);
      const updated = await store.updatePipeline(ID, definition("after"));
      expect(updated?.version).toBe(4);
      expect((await store.getPipelineVersions([ID])).get(ID)?.map((v) => v.version)).toEqual([
        4, 3,
      ]);
    } finally {
      await store.close();
    }
  });
});
