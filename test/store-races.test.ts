/**
 * Writers racing on one store: on every available provider, and on PostgreSQL with row
 * locks held from another connection so that the interleaving is the one under test.
 */
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RunRecord } from "../src/domain/records.ts";
import type { Store } from "../src/store/types.ts";
import { createTestDatabase, postgresAnswers, type TestDatabase } from "./helpers/databases.ts";
import {
  breaker,
  definition,
  describeStore,
  ids,
  lease,
  newRun,
  sorted,
  storeShortcuts,
} from "./helpers/store-fixtures.ts";
import { waitFor } from "./helpers/wait.ts";

describeStore("store", (store) => {
  const { createPipeline, createRun, getRun, counters, patch } = storeShortcuts(() => store);

  describe("racing writers", () => {
    it("ends a run once when terminal patches race, and counts it once", async () => {
      const pipeline = await createPipeline();
      const runs: RunRecord[] = [];
      for (let i = 0; i < 4; i++) runs.push(await createRun(pipeline, { status: "RUNNING" }));
      await Promise.all(
        runs.flatMap((run) => [
          patch([{ id: run.id, status: "COMPLETED" }]),
          patch([{ id: run.id, status: "FAILED", error: "raced" }]),
        ]),
      );
      const ended = await store.getRuns(ids(runs) as string[]);
      const statuses = ended.map((run) => run?.status);
      expect(statuses.every((s) => s === "COMPLETED" || s === "FAILED")).toBe(true);
      const successes = statuses.filter((s) => s === "COMPLETED").length;
      expect(await counters(pipeline)).toEqual({ runs: 4, successes, errors: 4 - successes });
    });

    it("gives a run to exactly one of two owners claiming it at once", async () => {
      const pipeline = await createPipeline();
      for (let i = 0; i < 4; i++) {
        const run = await createRun(pipeline);
        const [a, b] = await Promise.all([
          store.claimRun(run.id, lease("a", 0, 30)),
          store.claimRun(run.id, lease("b", 0, 30)),
        ]);
        const winners = [a, b].filter((claim) => claim !== null).map((claim) => claim.ownerId);
        expect(winners).toHaveLength(1);
        expect((await getRun(run.id))?.ownerId).toBe(winners[0]);
      }
    });

    it("splits the claimable runs between two claimRuns calls without overlap", async () => {
      const pipeline = await createPipeline();
      const runs: string[] = [];
      for (let i = 0; i < 6; i++) runs.push((await createRun(pipeline)).id);
      const [a, b] = await Promise.all([
        store.claimRuns(4, lease("a", 0, 30)),
        store.claimRuns(4, lease("b", 0, 30)),
      ]);
      expect(sorted([...ids(a), ...ids(b)] as string[])).toEqual(sorted(runs));
      const owners = new Map([...a, ...b].map((run) => [run.id, run.ownerId]));
      const stored = await store.getRuns(runs);
      expect(stored.map((run) => run?.ownerId)).toEqual(runs.map((id) => owners.get(id)));
    });

    it("loses no update when updateBreaker calls on a stored row race", async () => {
      const pipeline = await createPipeline();
      await store.updateBreaker(pipeline.id, "fetch", () => breaker(pipeline.id, "fetch"));
      const seen: number[] = [];
      await Promise.all(
        Array.from({ length: 8 }, () =>
          store.updateBreaker(pipeline.id, "fetch", (current) => {
            seen.push(current?.failureCount ?? -1);
            return current && { ...current, failureCount: current.failureCount + 1 };
          }),
        ),
      );
      expect([...seen].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect((await store.getBreaker(pipeline.id, "fetch"))?.failureCount).toBe(8);
    });
  });
});

/**
 * Races on PostgreSQL made deterministic: a third connection holds a lock that parks the
 * store's statements, an observer connection waits until they are all parked, then the lock
 * is let go. (pg_stat_activity is read from its own connection: inside a transaction
 * PostgreSQL would keep serving the first snapshot of it.)
 */
describe.skipIf(!postgresAnswers)("row locks on postgresql", () => {
  let database: TestDatabase;
  let store: Store;
  let locker: pg.Client;
  let observer: pg.Client;

  beforeEach(async () => {
    database = await createTestDatabase("postgresql");
    store = await database.open();
    locker = new pg.Client({ connectionString: database.url });
    observer = new pg.Client({ connectionString: database.url });
    await locker.connect();
    await observer.connect();
  });
  afterEach(async () => {
    await locker.end();
    await observer.end();
    await store.close();
    await database.drop();
  });

  /** Resolves once `count` sessions of the database wait on a lock. */
  async function parked(count: number): Promise<void> {
    await waitFor(
      `${count} sessions waiting on a lock`,
      async () => {
        const { rows } = await observer.query<{ waiting: number }>(
          `SELECT count(*)::int AS "waiting" FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        return rows[0]!.waiting >= count;
      },
      { intervalMs: 2 },
    );
  }

  it("updateBreaker stays a read-modify-write when two writers create the first row", async () => {
    const pipeline = await store.createPipeline(definition("breaker"));
    // Reads go on; the writes of both calls wait until the lock is released.
    await locker.query("BEGIN");
    await locker.query(`LOCK TABLE "NodeBreaker" IN SHARE MODE`);
    const seen: (number | null)[] = [];
    const fail = () =>
      store.updateBreaker(pipeline.id, "fetch", (current) => {
        seen.push(current?.failureCount ?? null);
        return breaker(pipeline.id, "fetch", { failureCount: (current?.failureCount ?? 0) + 1 });
      });
    const both = Promise.all([fail(), fail()]);
    try {
      await parked(2);
    } finally {
      await locker.query("COMMIT");
    }
    const results = await both;

    expect((await store.getBreaker(pipeline.id, "fetch"))?.failureCount).toBe(2);
    expect(results.map((row) => row?.failureCount).sort()).toEqual([1, 2]);
    expect(seen.at(-1)).toBe(1);
  });

  it("deletePipeline racing createRun never deletes a run it let be created", async () => {
    const pipeline = await store.createPipeline(definition("contended"));
    // createRun inserts its run, then waits to move the counters; deletePipeline comes next.
    await locker.query("BEGIN");
    await locker.query(`SELECT 1 FROM "Pipeline" WHERE "id" = $1 FOR NO KEY UPDATE`, [pipeline.id]);
    const creating = store.createRun(newRun(pipeline), []).then(
      (run) => ({ created: run?.id ?? "null" }),
      () => ({ created: "rejected" }),
    );
    await parked(1).catch(async (error: unknown) => {
      await locker.query("COMMIT");
      throw error;
    });
    const deleting = store.deletePipeline(pipeline.id);
    try {
      await parked(2);
    } finally {
      await locker.query("COMMIT");
    }
    const [{ created }, outcome] = await Promise.all([creating, deleting]);
    const stored = ids((await store.listRuns({ first: 10 })).items);

    // Either order is fine, but not both: a run that was created blocks the delete, and a
    // pipeline that was deleted takes no run.
    const summary = { outcome, created: created === "rejected" ? "rejected" : "run", stored };
    expect([
      { outcome: "has_active_runs", created: "run", stored: [created] },
      { outcome: "deleted", created: "rejected", stored: [] },
    ]).toContainEqual(summary);
  });
});
