/**
 * The Store contract on every available provider: creating runs with their first events,
 * reading and listing them, and the pipeline counters createRun moves.
 */
import { describe, expect, it } from "vitest";
import type { JsonValue } from "../src/domain/json.ts";
import type { RunRecord } from "../src/domain/records.ts";
import type { RunStatus } from "../src/domain/status.ts";
import {
  at,
  definition,
  describeStore,
  event,
  ids,
  MISSING_ID,
  newRun,
  nodeRun,
  smallDefinition,
  sorted,
  storeShortcuts,
} from "./helpers/store-fixtures.ts";

describeStore("store", (store) => {
  const { createPipeline, createRun, getRun, counters } = storeShortcuts(() => store);

  it("creates many runs of one pipeline at once: all land, and each is counted once", async () => {
    const pipeline = await createPipeline();
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, () => store.createRun(newRun(pipeline), [])),
    );
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    expect((await store.getPipelines([pipeline.id]))[0]?.runCount).toBe(40);
    expect((await store.listRuns({ first: 100, pipelineId: pipeline.id })).items).toHaveLength(40);
  });

  it("createRun of a pipeline that does not exist is a NOT_FOUND StoreError, and stores nothing", async () => {
    const pipeline = await createPipeline();
    await store.deletePipeline(pipeline.id);
    await expect(store.createRun(newRun(pipeline), [])).rejects.toMatchObject({
      name: "StoreError",
      code: "NOT_FOUND",
    });
    expect((await store.listRuns({ first: 10 })).items).toEqual([]);
  });

  describe("runs", () => {
    it("createRuns creates many runs in one go, NOT_FOUND for a missing pipeline only", async () => {
      const [a, b] = [await createPipeline("a"), await createPipeline("b")];
      const created = await store.createRuns([
        { run: newRun(a), events: [event(1, "RUN_STARTED")] },
        { run: newRun({ ...b, id: MISSING_ID }) },
        { run: newRun(b, { status: "FAILED" }) },
        { run: newRun(a, { status: "COMPLETED" }) },
      ]);
      expect(created.map((r) => (r instanceof Error ? r.message : r.pipelineId))).toEqual([
        a.id,
        `pipeline "${MISSING_ID}" does not exist`,
        b.id,
        a.id,
      ]);
      expect((created[1] as { code?: string }).code).toBe("NOT_FOUND");
      const ids = created.filter((r) => !(r instanceof Error)).map((r) => (r as { id: string }).id);
      expect(new Set(ids).size).toBe(3);
      expect((await store.getRuns(ids)).map((r) => [r?.pipelineId, r?.status])).toEqual([
        [a.id, "QUEUED"],
        [b.id, "FAILED"],
        [a.id, "COMPLETED"],
      ]);
      expect((await store.getEvents(ids[0]!, 0)).map((e) => e.type)).toEqual(["RUN_STARTED"]);
      const counts = (await store.getPipelines([a.id, b.id])).map((p) => [
        p?.runCount,
        p?.successCount,
        p?.errorCount,
      ]);
      expect(counts).toEqual([
        [2, 1, 0],
        [1, 0, 1],
      ]);
    });

    it("a run onlyIfCurrent is created at its pipeline's version and refused with VERSION_CHANGED once the pipeline moved on, on every path", async () => {
      const [a, b] = [await createPipeline("a"), await createPipeline("b")];
      const current = { onlyIfCurrent: true };
      // At the version stored: created, whichever way the batch is written.
      const [fresh] = await store.createRuns([{ run: newRun(a, current) }]);
      const mixed = await store.createRuns([
        { run: newRun(a, current), events: [event(1, "RUN_STARTED")] },
        { run: newRun(b, current) },
      ]);
      expect(
        [fresh, ...mixed].map((r) => (r instanceof Error ? r.message : r?.pipelineVersion)),
      ).toEqual([1, 1, 1]);
      const a2 = (await store.updatePipeline(a.id, smallDefinition))!;
      expect(a2.version).toBe(2);
      // Started from version 1 after the update: refused; version 2, and b, still created.
      const stale = await store.createRuns([
        { run: newRun(a, current) },
        { run: newRun(a, current) },
      ]);
      const together = await store.createRuns([
        { run: newRun(a, current) },
        { run: newRun(a2, current) },
        { run: newRun(b, current), events: [event(1, "RUN_STARTED")] },
        { run: newRun(a) },
        { run: newRun({ ...b, id: MISSING_ID }, current) },
      ]);
      const outcome = (r: (typeof together)[number]) =>
        r instanceof Error ? (r as { code?: string }).code : r.pipelineVersion;
      expect(stale.map(outcome)).toEqual(["VERSION_CHANGED", "VERSION_CHANGED"]);
      expect(together.map(outcome)).toEqual(["VERSION_CHANGED", 2, 1, 1, "NOT_FOUND"]);
      expect(stale[0]).toMatchObject({
        message: `pipeline "${a.id}" is no longer at version 1`,
      });
      // Refused runs are neither stored nor counted.
      const [countA, countB] = await store.getPipelines([a.id, b.id]);
      expect([countA?.runCount, countB?.runCount]).toEqual([4, 2]);
      expect((await store.listRuns({ first: 100, pipelineId: a.id })).items).toHaveLength(4);
    });

    it("createRun stores a re-run's link and its first node runs with the run, atomically", async () => {
      const pipeline = await createPipeline();
      const source = await createRun(pipeline, { status: "FAILED" });
      const rerun = await store.createRun(
        { ...newRun(pipeline), rerunOf: source.id },
        [event(1, "RUN_STARTED")],
        [
          {
            ...nodeRun("unused", "start", { output: { n: 1 }, attempts: 0 }),
            reusedFrom: source.id,
          },
        ],
      );
      expect(rerun.rerunOf).toBe(source.id);
      expect((await getRun(rerun.id))?.rerunOf).toBe(source.id);
      expect((await getRun(source.id))?.rerunOf).toBeNull();
      const [stored] = (await store.getNodeRuns([rerun.id])).get(rerun.id)!;
      expect([
        stored?.runId,
        stored?.nodeId,
        stored?.attempts,
        stored?.output,
        stored?.reusedFrom,
      ]).toEqual([rerun.id, "start", 0, { n: 1 }, source.id]);
    });

    it("createRun stores the run and its first events in order", async () => {
      const pipeline = await createPipeline();
      const events = [
        event(1, "RUN_STARTED"),
        event(2, "NODE_STARTED", { nodeId: "start", attempt: 1 }),
        event(3, "NODE_RETRYING", { nodeId: "fetch", attempt: 2, data: { delayMs: 200 } }),
        event(4, "NODE_COMPLETED", { nodeId: "fetch", data: { output: { ok: true, n: [1] } } }),
      ];
      const before = Date.now();
      const created = await createRun(
        pipeline,
        { status: "RUNNING", triggerData: { user: "zoë" }, startedAt: at(0) },
        events,
      );
      const after = Date.now();
      expect(created).toEqual({
        id: expect.any(String),
        pipelineId: pipeline.id,
        pipelineVersion: 1,
        status: "RUNNING",
        triggerData: { user: "zoë" },
        error: null,
        definition: pipeline.definition,
        createdAt: expect.any(Date),
        startedAt: at(0),
        completedAt: null,
        deadlineAt: null,
        ownerId: null,
        leaseExpiresAt: null,
        cancelRequested: false,
        rerunOf: null,
      });
      expect(created.createdAt.getTime()).toBeGreaterThanOrEqual(before);
      expect(created.createdAt.getTime()).toBeLessThanOrEqual(after);
      expect(await getRun(created.id)).toEqual(created);

      const stored = events.map((e) => ({ ...e, runId: created.id }));
      expect(await store.getEvents(created.id, 0)).toEqual(stored);
      expect(await store.getEvents(created.id, 1)).toEqual(stored.slice(1));
      expect(await store.getEvents(created.id, 0, 2)).toEqual(stored.slice(0, 2));
      expect(await store.getEvents(created.id, 2, 1)).toEqual([stored[2]]);
      expect(await store.getEvents(created.id, 4)).toEqual([]);
      expect(await store.lastSeq(created.id)).toBe(4);

      const quiet = await createRun(pipeline);
      expect(await store.getEvents(quiet.id, 0)).toEqual([]);
      expect(await store.lastSeq(quiet.id)).toBe(0);
      expect(await store.lastSeq(MISSING_ID)).toBe(0);
    });

    it("createRun adds to runCount, and to successCount or errorCount for a finished run", async () => {
      const pipeline = await createPipeline();
      const steps: [RunStatus, { runs: number; successes: number; errors: number }][] = [
        ["QUEUED", { runs: 1, successes: 0, errors: 0 }],
        ["RUNNING", { runs: 2, successes: 0, errors: 0 }],
        ["COMPLETED", { runs: 3, successes: 1, errors: 0 }],
        ["FAILED", { runs: 4, successes: 1, errors: 1 }],
        ["TIMED_OUT", { runs: 5, successes: 1, errors: 2 }],
        ["CANCELLED", { runs: 6, successes: 1, errors: 2 }],
      ];
      for (const [status, expected] of steps) {
        await createRun(pipeline, { status });
        expect([status, await counters(pipeline)]).toEqual([status, expected]);
      }
    });

    it("getRuns keeps the order of the ids and gives null for missing ones", async () => {
      const pipeline = await createPipeline();
      const first = await createRun(pipeline);
      const second = await createRun(pipeline, { status: "FAILED" });
      const found = await store.getRuns([second.id, MISSING_ID, first.id]);
      expect(found).toEqual([second, null, first]);
      expect(await store.getRuns([])).toEqual([]);
    });

    it("listRuns filters by pipeline and statuses, newest first, page by page", async () => {
      const a = await createPipeline("a");
      const b = await createPipeline("b");
      const statusesOfA: RunStatus[] = ["QUEUED", "COMPLETED", "FAILED", "COMPLETED", "RUNNING"];
      const runsOfA: RunRecord[] = [];
      for (const status of statusesOfA) runsOfA.push(await createRun(a, { status }));
      const [a1, a2, a3, a4, a5] = ids(runsOfA);
      const b1 = (await createRun(b, { status: "COMPLETED" })).id;
      const b2 = (await createRun(b, { status: "QUEUED" })).id;

      const all = await store.listRuns({ first: 10 });
      expect([ids(all.items), all.hasNextPage]).toEqual([[b2, b1, a5, a4, a3, a2, a1], false]);

      const ofA1 = await store.listRuns({ pipelineId: a.id, first: 2 });
      expect([ids(ofA1.items), ofA1.hasNextPage]).toEqual([[a5, a4], true]);
      const ofA2 = await store.listRuns({ pipelineId: a.id, first: 2, after: a4 });
      expect([ids(ofA2.items), ofA2.hasNextPage]).toEqual([[a3, a2], true]);
      const ofA3 = await store.listRuns({ pipelineId: a.id, first: 2, after: a2 });
      expect([ids(ofA3.items), ofA3.hasNextPage]).toEqual([[a1], false]);

      const completed = await store.listRuns({ statuses: ["COMPLETED"], first: 10 });
      expect(ids(completed.items)).toEqual([b1, a4, a2]);
      expect(completed.items.every((run) => run.status === "COMPLETED")).toBe(true);
      const completedOfA = await store.listRuns({
        pipelineId: a.id,
        statuses: ["COMPLETED"],
        first: 10,
      });
      expect([ids(completedOfA.items), completedOfA.hasNextPage]).toEqual([[a4, a2], false]);

      const twoStatuses = { statuses: ["COMPLETED", "QUEUED"] as RunStatus[], first: 2 };
      const mixed1 = await store.listRuns(twoStatuses);
      expect([ids(mixed1.items), mixed1.hasNextPage]).toEqual([[b2, b1], true]);
      const mixed2 = await store.listRuns({ ...twoStatuses, after: b1 });
      expect([ids(mixed2.items), mixed2.hasNextPage]).toEqual([[a4, a2], true]);
      const mixed3 = await store.listRuns({ ...twoStatuses, after: a2 });
      expect([ids(mixed3.items), mixed3.hasNextPage]).toEqual([[a1], false]);

      expect(await store.listRuns({ statuses: ["CANCELLED"], first: 10 })).toEqual({
        items: [],
        hasNextPage: false,
      });
      expect(await store.listRuns({ pipelineId: MISSING_ID, first: 10 })).toEqual({
        items: [],
        hasNextPage: false,
      });
      expect(await store.listRuns({ pipelineId: b.id, first: 10 })).toEqual({
        items: await store.getRuns([b2, b1]),
        hasNextPage: false,
      });
    });

    it("latestRuns gives the newest `first` runs of each pipeline", async () => {
      const a = await createPipeline("a");
      const b = await createPipeline("b");
      const empty = await createPipeline("empty");
      const runsOfA: string[] = [];
      for (let i = 0; i < 3; i++) {
        runsOfA.push((await createRun(a)).id);
        // Interleaved so that a pipeline's runs are not adjacent in id order.
        if (i === 0) await createRun(b, { status: "COMPLETED" });
      }
      const [a1, a2, a3] = runsOfA;
      const [b1] = ids((await store.listRuns({ pipelineId: b.id, first: 10 })).items);

      const latest = await store.latestRuns([a.id, b.id, empty.id], 2);
      expect(sorted([...latest.keys()])).toEqual(sorted([a.id, b.id, empty.id]));
      const pageOfA = latest.get(a.id)!;
      expect([ids(pageOfA.items), pageOfA.hasNextPage]).toEqual([[a3, a2], true]);
      expect(pageOfA.items).toEqual(await store.getRuns([a3!, a2!]));
      const pageOfB = latest.get(b.id)!;
      expect([ids(pageOfB.items), pageOfB.hasNextPage]).toEqual([[b1], false]);
      expect(latest.get(empty.id)).toEqual({ items: [], hasNextPage: false });

      const three = (await store.latestRuns([a.id], 3)).get(a.id)!;
      expect([ids(three.items), three.hasNextPage]).toEqual([[a3, a2, a1], false]);
      expect((await store.latestRuns([], 2)).size).toBe(0);
    });

    it("a run keeps the definition it was created with when the pipeline changes", async () => {
      const pipeline = await createPipeline("v1");
      const run = await createRun(pipeline);
      await store.updatePipeline(pipeline.id, smallDefinition);
      const reloaded = await getRun(run.id);
      expect(reloaded?.definition).toEqual(definition("v1"));
      expect(reloaded?.pipelineVersion).toBe(1);
      const [listed] = (await store.listRuns({ pipelineId: pipeline.id, first: 1 })).items;
      expect(listed?.definition).toEqual(definition("v1"));
    });

    it("triggerData round-trips any JSON value", async () => {
      const pipeline = await createPipeline();
      const values: JsonValue[] = [
        null,
        { user: "Zoë", tags: ["a", "b"], nested: { deep: [1, { x: null }] }, empty: {} },
        [1, "two", null, true, { three: 3 }, []],
        0,
        -12.5,
        2 ** 53 - 1,
        1e-7,
        "",
        'héllo 世界 🚀 "quoted" \\ back\nslash \u0000 nul',
        true,
        false,
      ];
      const created: RunRecord[] = [];
      for (const triggerData of values) created.push(await createRun(pipeline, { triggerData }));
      expect(created.map((run) => run.triggerData)).toEqual(values);
      const reloaded = await store.getRuns(created.map((run) => run.id));
      expect(reloaded.map((run) => run?.triggerData)).toEqual(values);
      expect(reloaded[0]?.triggerData).toBeNull();
      const listed = await store.listRuns({ pipelineId: pipeline.id, first: values.length });
      expect(listed.items.map((run) => run.triggerData)).toEqual([...values].reverse());
    });
  });
});
