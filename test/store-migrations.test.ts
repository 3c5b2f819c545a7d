/**
 * The SQL providers (SQLite and, when it answers, PostgreSQL): migrations applied when a store
 * opens, and a createRun that fails as one transaction.
 */
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it } from "vitest";
import { openStore } from "../src/store/index.ts";
import type { MigrationOutcome } from "../src/store/migrate.ts";
import type { Store } from "../src/store/types.ts";
import { createTestDatabase, describeProviders, type TestDatabase } from "./helpers/databases.ts";
import {
  definition,
  describeStore,
  event,
  newRun,
  sqlProviders,
} from "./helpers/store-fixtures.ts";

const MIGRATIONS_ROOT = fileURLToPath(new URL("../prisma/migrations/", import.meta.url));

describeProviders(sqlProviders)("migrations on %s", (provider) => {
  const databases: TestDatabase[] = [];
  const stores: Store[] = [];

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    for (const database of databases.splice(0)) await database.drop();
  });

  const migrationFolders = () =>
    readdirSync(`${MIGRATIONS_ROOT}${provider}`, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();

  async function newDatabase(): Promise<TestDatabase> {
    const database = await createTestDatabase(provider);
    databases.push(database);
    return database;
  }

  async function open(database: TestDatabase, outcomes: MigrationOutcome[]): Promise<Store> {
    const store = await openStore({
      provider,
      databaseUrl: database.url,
      poolSize: 2,
      onMigrated: (outcome) => outcomes.push(outcome),
    });
    stores.push(store);
    return store;
  }

  it("applies every migration on a new database and nothing on the next open", async () => {
    const folders = migrationFolders();
    expect(folders.length).toBeGreaterThan(0);
    const database = await newDatabase();

    const firstOutcomes: MigrationOutcome[] = [];
    const first = await open(database, firstOutcomes);
    expect(firstOutcomes).toEqual([{ applied: folders, changed: [] }]);
    const pipeline = await first.createPipeline(definition("persisted"));

    const secondOutcomes: MigrationOutcome[] = [];
    const second = await open(database, secondOutcomes);
    expect(secondOutcomes).toEqual([{ applied: [], changed: [] }]);
    expect(await second.getPipelines([pipeline.id])).toEqual([pipeline]);
  });

  it("two stores opened at once on a new database both succeed, one applying the migrations", async () => {
    const database = await newDatabase();
    const outcomes: MigrationOutcome[] = [];
    const [a, b] = await Promise.all([open(database, outcomes), open(database, outcomes)]);
    const applied = outcomes.map((outcome) => outcome.applied).sort((x, y) => x.length - y.length);
    expect(applied).toEqual([[], migrationFolders()]);

    const pipeline = await a.createPipeline(definition("shared"));
    expect(await b.getPipelines([pipeline.id])).toEqual([pipeline]);
  });
});

describeStore(
  "transactions",
  (store, _provider) => {
    it("a createRun that fails leaves nothing behind, and no reader sees it meanwhile", async () => {
      const pipeline = await store.createPipeline(definition("atomic"));
      let settled = false;
      // Two events with one seq break the (runId, seq) key after the run row is written.
      const failing = store
        .createRun(newRun(pipeline), [event(1, "RUN_STARTED"), event(1, "RUN_STARTED")])
        .then(
          () => "created",
          (error: unknown) => (error instanceof Error ? "rejected" : "threw a non-error"),
        )
        .finally(() => {
          settled = true;
        });
      const seen: number[] = [];
      while (!settled) seen.push((await store.listRuns({ first: 10 })).items.length);
      expect(await failing).toBe("rejected");

      expect(seen.length).toBeGreaterThan(0);
      expect(seen.filter((count) => count !== 0)).toEqual([]);
      expect(await store.listRuns({ first: 10 })).toEqual({ items: [], hasNextPage: false });
      const [after] = await store.getPipelines([pipeline.id]);
      expect([after?.runCount, after?.successCount, after?.errorCount]).toEqual([0, 0, 0]);
    });
  },
  sqlProviders,
);
