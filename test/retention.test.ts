/**
 * Retention (src/retention.ts) on every store: finished runs older than RUN_RETENTION, and
 * those beyond MAX_RETAINED_RUNS, go with their node runs and events, in the background at
 * RETENTION_INTERVAL_MS or by a direct pass; recent and active runs stay; the pipelines'
 * counters (totals of every run ever started) do not move.
 */
import pino from "pino";
import { afterEach, expect, it } from "vitest";
import type { PipelineRecord, RunRecord } from "../src/domain/records.ts";
import type { RunStatus } from "../src/domain/status.ts";
import { type Retention, startRetention } from "../src/retention.ts";
import type { Store } from "../src/store/types.ts";
import { definition, describeStore, event, newRun, nodeRun } from "./helpers/store-fixtures.ts";
import { waitFor } from "./helpers/wait.ts";

const HOUR = 3_600_000;
const logger = pino({ level: "silent" });

let retention: Retention | undefined;
afterEach(async () => {
  retention?.stop();
  await retention?.idle();
  retention = undefined;
});

/** A run with two events and a node run; finished `agoMs` ago when `status` is terminal. */
async function seedRun(
  store: Store,
  pipeline: PipelineRecord,
  status: RunStatus,
  agoMs: number,
): Promise<RunRecord> {
  const startedAt = new Date(Date.now() - agoMs - 1000);
  const run = await store.createRun(newRun(pipeline, { status: "RUNNING", startedAt }), [
    event(1, "RUN_STARTED", { at: startedAt }),
  ]);
  const terminal = status !== "RUNNING" && status !== "QUEUED";
  await store.commit({
    events: [
      { ...event(2, "NODE_STARTED", { nodeId: "start", at: startedAt }), runId: run.id },
      ...(terminal
        ? [{ ...event(3, `RUN_${status}` as "RUN_COMPLETED"), runId: run.id, at: new Date() }]
        : []),
    ],
    nodeRuns: [nodeRun(run.id, "start")],
    runs: terminal ? [{ id: run.id, status, completedAt: new Date(Date.now() - agoMs) }] : [],
  });
  return run;
}

async function remaining(store: Store, runs: Record<string, RunRecord>) {
  const found = await store.getRuns(Object.values(runs).map((r) => r.id));
  const nodeRuns = await store.getNodeRuns(Object.values(runs).map((r) => r.id));
  const left: Record<string, [number, number]> = {};
  for (const [name, run] of Object.entries(runs)) {
    const index = Object.values(runs).indexOf(run);
    if (found[index])
      left[name] = [(await store.getEvents(run.id, 0)).length, nodeRuns.get(run.id)?.length ?? 0];
    else {
      // A deleted run leaves nothing behind.
      expect([await store.getEvents(run.id, 0), nodeRuns.get(run.id) ?? []]).toEqual([[], []]);
    }
  }
  return left;
}

async function counters(store: Store, pipeline: PipelineRecord) {
  const [record] = await store.getPipelines([pipeline.id]);
  return [record!.runCount, record!.successCount, record!.errorCount];
}

describeStore("retention", (store) => {
  it("deletes finished runs older than RUN_RETENTION in the background, keeping recent and active ones", async () => {
    const pipeline = await store.createPipeline(definition("kept"));
    const runs = {
      oldCompleted: await seedRun(store, pipeline, "COMPLETED", 3 * HOUR),
      oldFailed: await seedRun(store, pipeline, "FAILED", 2 * HOUR),
      oldTimedOut: await seedRun(store, pipeline, "TIMED_OUT", 2 * HOUR),
      oldCancelled: await seedRun(store, pipeline, "CANCELLED", 2 * HOUR),
      recent: await seedRun(store, pipeline, "COMPLETED", 60_000),
      // Started hours ago and still going: never deleted, however old.
      active: await seedRun(store, pipeline, "RUNNING", 5 * HOUR),
    };
    const queued = await store.createRun(
      newRun(pipeline, { startedAt: new Date(Date.now() - 9 * HOUR) }),
      [],
    );
    expect(await counters(store, pipeline)).toEqual([7, 2, 2]);
    retention = startRetention(
      store,
      { runRetentionMs: HOUR, maxRetainedRuns: undefined, retentionIntervalMs: 100 },
      logger,
    );
    // No pass is called here: the timer's pass is what empties the old runs.
    await waitFor("the background pass", async () =>
      (await store.getRuns([runs.oldCompleted.id, runs.oldCancelled.id])).every((r) => !r),
    );
    await retention.idle();
    expect(await remaining(store, runs)).toEqual({ recent: [3, 1], active: [2, 1] });
    expect((await store.getRuns([queued.id]))[0]?.status).toBe("QUEUED");
    // The counters are totals of every run started, not of the runs still stored.
    expect(await counters(store, pipeline)).toEqual([7, 2, 2]);
    const listed = await store.listRuns({ pipelineId: pipeline.id, first: 50 });
    expect(listed.items.map((r) => r.id).sort()).toEqual(
      [runs.recent.id, runs.active.id, queued.id].sort(),
    );
    // A later pass finds nothing more to delete.
    expect(await retention.runOnce()).toBe(0);
  });

  it("keeps only the newest MAX_RETAINED_RUNS finished runs, never counting active ones", async () => {
    const pipeline = await store.createPipeline(definition("capped"));
    const finished: RunRecord[] = [];
    for (let i = 0; i < 5; i++) finished.push(await seedRun(store, pipeline, "COMPLETED", 1000));
    const active = await seedRun(store, pipeline, "RUNNING", 0);
    retention = startRetention(
      store,
      { runRetentionMs: undefined, maxRetainedRuns: 2, retentionIntervalMs: 86_400_000 },
      logger,
    );
    expect(await retention.runOnce()).toBe(3);
    const left = await store.getRuns([...finished, active].map((r) => r.id));
    expect(left.map((r) => r?.status ?? null)).toEqual([
      null,
      null,
      null,
      "COMPLETED",
      "COMPLETED",
      "RUNNING",
    ]);
    expect(await counters(store, pipeline)).toEqual([6, 5, 0]);
    expect(await retention.runOnce()).toBe(0);
  });

  it("starts no timer when neither setting is given", async () => {
    const pipeline = await store.createPipeline(definition("forever"));
    const old = await seedRun(store, pipeline, "COMPLETED", 1000 * HOUR);
    retention = startRetention(
      store,
      { runRetentionMs: undefined, maxRetainedRuns: undefined, retentionIntervalMs: 100 },
      logger,
    );
    // A direct pass with nothing configured deletes nothing either.
    expect(await retention.runOnce()).toBe(0);
    expect((await store.getRuns([old.id]))[0]?.id).toBe(old.id);
  });
});
