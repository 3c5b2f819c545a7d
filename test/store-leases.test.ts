/**
 * The Store contract on every available provider: leases on runs (claim, renew, release)
 * and cancel requests.
 */
import { describe, expect, it } from "vitest";
import type { RunRecord } from "../src/domain/records.ts";
import {
  at,
  describeStore,
  ids,
  lease,
  MISSING_ID,
  sorted,
  storeShortcuts,
} from "./helpers/store-fixtures.ts";

describeStore("store", (store) => {
  const { createPipeline, createRun, getRun, patch } = storeShortcuts(() => store);

  describe("leases", () => {
    it("claimRun takes a QUEUED run and keeps it from others until the lease expires", async () => {
      const pipeline = await createPipeline();
      const run = await createRun(pipeline);
      const taken = await store.claimRun(run.id, lease("a", 0, 30));
      expect(taken).toEqual({ ...run, ownerId: "a", leaseExpiresAt: at(30) });
      expect(await getRun(run.id)).toEqual(taken);

      expect(await store.claimRun(run.id, lease("b", 10, 40))).toBeNull();
      expect(await getRun(run.id)).toEqual(taken);

      const renewed = await store.claimRun(run.id, lease("a", 20, 50));
      expect([renewed?.ownerId, renewed?.leaseExpiresAt]).toEqual(["a", at(50)]);

      expect(await store.claimRun(run.id, lease("b", 49, 80))).toBeNull();
      const stolen = await store.claimRun(run.id, lease("b", 51, 80));
      expect([stolen?.ownerId, stolen?.leaseExpiresAt]).toEqual(["b", at(80)]);
      expect((await getRun(run.id))?.ownerId).toBe("b");
    });

    it("createRun with a lease makes the run held from the start: others' claims skip it", async () => {
      const pipeline = await createPipeline();
      const run = await createRun(pipeline, { status: "QUEUED", lease: lease("a", 0, 30) });
      expect([run.status, run.ownerId, run.leaseExpiresAt]).toEqual(["QUEUED", "a", at(30)]);
      expect(await store.claimRuns(10, lease("b", 10, 40))).toEqual([]);
      expect(await store.claimRun(run.id, lease("b", 10, 40))).toBeNull();
      expect((await store.claimRun(run.id, lease("a", 10, 40)))?.ownerId).toBe("a");
      const taken = await store.claimRuns(10, lease("b", 41, 70));
      expect(taken.map((r) => [r.id, r.ownerId])).toEqual([[run.id, "b"]]);
    });

    it("claimRun takes a RUNNING run but never a terminal or missing one", async () => {
      const pipeline = await createPipeline();
      const running = await createRun(pipeline, { status: "RUNNING", startedAt: at(0) });
      expect((await store.claimRun(running.id, lease("a", 0, 30)))?.ownerId).toBe("a");
      for (const status of ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"] as const) {
        const ended = await createRun(pipeline, { status });
        expect([status, await store.claimRun(ended.id, lease("a", 0, 30))]).toEqual([status, null]);
        expect((await getRun(ended.id))?.ownerId).toBeNull();
      }
      const later = await createRun(pipeline);
      await patch([{ id: later.id, status: "COMPLETED" }]);
      expect(await store.claimRun(later.id, lease("a", 0, 30))).toBeNull();
      expect(await store.claimRun(MISSING_ID, lease("a", 0, 30))).toBeNull();
    });

    it("claimRuns takes at most `limit` claimable runs, oldest first, skipping held ones", async () => {
      const pipeline = await createPipeline();
      await createRun(pipeline, { status: "COMPLETED" });
      const runs: RunRecord[] = [];
      for (let i = 0; i < 5; i++) runs.push(await createRun(pipeline, { status: "QUEUED" }));
      await createRun(pipeline, { status: "FAILED" });
      const [r1, r2, r3, r4, r5] = ids(runs);
      await store.claimRun(r2!, lease("other", 0, 60));

      const first = await store.claimRuns(2, lease("a", 1, 30));
      expect(ids(first)).toEqual([r1, r3]);
      expect(first.map((run) => [run.ownerId, run.leaseExpiresAt])).toEqual([
        ["a", at(30)],
        ["a", at(30)],
      ]);
      expect(await store.getRuns([r1!, r3!])).toEqual(first);

      const rest = await store.claimRuns(10, lease("c", 2, 40));
      expect(ids(rest)).toEqual([r4, r5]);
      expect(await store.claimRuns(10, lease("d", 3, 40))).toEqual([]);
      expect(await store.claimRuns(0, lease("d", 100, 130))).toEqual([]);

      // Every lease above has expired at 100: all five are claimable again, oldest first.
      const expired = await store.claimRuns(10, lease("d", 100, 130));
      expect(ids(expired)).toEqual([r1, r2, r3, r4, r5]);
      expect((await store.getRuns(ids(runs) as string[])).map((run) => run?.ownerId)).toEqual([
        "d",
        "d",
        "d",
        "d",
        "d",
      ]);
    });

    it("renewLeases extends and returns only the leases the owner still holds", async () => {
      const pipeline = await createPipeline();
      const [r1, r2, r3] = ids([
        await createRun(pipeline),
        await createRun(pipeline),
        await createRun(pipeline),
      ]) as string[];
      await store.claimRun(r1!, lease("a", 0, 30));
      await store.claimRun(r2!, lease("a", 0, 30));
      await store.claimRun(r3!, lease("b", 0, 30));

      const held = await store.renewLeases([r1!, r2!, r3!, MISSING_ID], lease("a", 10, 90));
      expect(sorted(held)).toEqual(sorted([r1!, r2!]));
      const after = await store.getRuns([r1!, r2!, r3!]);
      expect(after.map((run) => [run?.ownerId, run?.leaseExpiresAt])).toEqual([
        ["a", at(90)],
        ["a", at(90)],
        ["b", at(30)],
      ]);

      await patch([{ id: r2!, status: "COMPLETED" }]);
      expect(await store.renewLeases([r1!, r2!], lease("a", 20, 100))).toEqual([r1]);

      // b takes r1 once a's lease (until 100) has expired; a holds nothing any more.
      expect((await store.claimRun(r1!, lease("b", 101, 130)))?.ownerId).toBe("b");
      expect(await store.renewLeases([r1!, r2!], lease("a", 102, 160))).toEqual([]);
      expect((await getRun(r1!))?.leaseExpiresAt).toEqual(at(130));
      expect(await store.renewLeases([], lease("a", 102, 160))).toEqual([]);
    });

    it("releaseRuns makes the owner's runs claimable at once", async () => {
      const pipeline = await createPipeline();
      const r1 = await createRun(pipeline);
      const r2 = await createRun(pipeline);
      await store.claimRuns(2, lease("a", 0, 60));

      await store.releaseRuns([r1.id, r2.id], "b");
      expect((await store.getRuns([r1.id, r2.id])).map((run) => run?.ownerId)).toEqual(["a", "a"]);
      expect(await store.claimRun(r1.id, lease("b", 1, 30))).toBeNull();

      await store.releaseRuns([r1.id, r2.id], "a");
      expect(await store.getRuns([r1.id, r2.id])).toEqual([r1, r2]);
      expect((await store.claimRun(r1.id, lease("b", 1, 30)))?.ownerId).toBe("b");
      expect(ids(await store.claimRuns(10, lease("c", 1, 30)))).toEqual([r2.id]);
    });

    it("requestCancel marks active runs only, and cancelRequested lists them", async () => {
      const pipeline = await createPipeline();
      const queued = await createRun(pipeline);
      const running = await createRun(pipeline, { status: "RUNNING" });
      const done = await createRun(pipeline, { status: "COMPLETED" });
      const untouched = await createRun(pipeline);

      expect(await store.cancelRequested([queued.id, running.id, done.id])).toEqual([]);
      expect(await store.requestCancel(queued.id)).toEqual({ ...queued, cancelRequested: true });
      expect(await store.requestCancel(running.id)).toEqual({ ...running, cancelRequested: true });
      expect(await store.requestCancel(done.id)).toEqual(done);
      expect(await store.requestCancel(MISSING_ID)).toBeNull();
      expect((await getRun(queued.id))?.cancelRequested).toBe(true);

      const marked = await store.cancelRequested([
        done.id,
        running.id,
        untouched.id,
        queued.id,
        MISSING_ID,
      ]);
      expect(sorted(marked)).toEqual(sorted([queued.id, running.id]));
      expect(await store.cancelRequested([])).toEqual([]);
    });
  });
});
