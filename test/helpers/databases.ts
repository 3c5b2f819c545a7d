/**
 * Fresh databases for store and server tests: a SQLite file in a temp directory, or a new
 * PostgreSQL database (created from the `test` database and dropped afterwards).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { describe } from "vitest";
import { openStore } from "../../src/store/index.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import type { Store } from "../../src/store/types.ts";
import { POSTGRES_URL, serviceAvailable } from "./services.ts";

export type Provider = "memory" | "sqlite" | "postgresql";

export interface TestDatabase {
  readonly provider: Provider;
  readonly url: string;
  /** Opens (and migrates) a store on the database; several may be open at once. */
  open(): Promise<Store>;
  drop(): Promise<void>;
}

export async function createTestDatabase(
  provider: Exclude<Provider, "memory">,
): Promise<TestDatabase> {
  if (provider === "sqlite") {
    const dir = mkdtempSync(path.join(tmpdir(), "pipelines-test-"));
    const url = `file:${path.join(dir, "test.db")}`;
    return {
      provider,
      url,
      open: () => openStore({ provider, databaseUrl: url }),
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const name = `t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const target = new URL(POSTGRES_URL);
  target.pathname = `/${name}`;
  const url = target.toString();
  return {
    provider,
    url,
    open: () => openStore({ provider, databaseUrl: url, poolSize: 5 }),
    drop: async () => {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.end();
    },
  };
}

/** Whether PostgreSQL answers (with REQUIRE_SERVICES=1 its absence fails instead). */
export const postgresAnswers = await serviceAvailable("postgres");

/**
 * The providers to run a suite on: memory (unless left out), SQLite and PostgreSQL. Run them
 * with describeProviders, which reports the PostgreSQL suites as skipped when it does not answer.
 */
export async function availableProviders(withMemory = true): Promise<Provider[]> {
  return withMemory ? ["memory", "sqlite", "postgresql"] : ["sqlite", "postgresql"];
}

/**
 * `describe.each(providers)`, except that a suite whose database does not answer is reported
 * as skipped, so it stays in the count, instead of being left out of it.
 */
export function describeProviders<P extends Provider>(providers: readonly P[]) {
  return (title: string, body: (provider: P) => void): void => {
    for (const provider of providers)
      describe.skipIf(provider === "postgresql" && !postgresAnswers)(
        title.replace("%s", provider),
        () => body(provider),
      );
  };
}

/** A fresh store of the provider, with a cleanup that closes and drops it. */
export async function freshStore(
  provider: Provider,
): Promise<{ store: Store; cleanup: () => Promise<void> }> {
  if (provider === "memory") return { store: new MemoryStore(), cleanup: async () => {} };
  const db = await createTestDatabase(provider);
  const store = await db.open();
  return {
    store,
    cleanup: async () => {
      await store.close();
      await db.drop();
    },
  };
}
