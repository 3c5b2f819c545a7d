/**
 * The Store contract on every available provider (memory, SQLite and, when it answers,
 * PostgreSQL): pipelines, and what holds for the store as a whole (it keeps its own copies,
 * it counts its queries). Every test gets a fresh store.
 */
import { describe, expect, it } from "vitest";
import type { PipelineDefinition } from "../src/domain/definition.ts";
import type { PipelineRecord } from "../src/domain/records.ts";
import {
  at,
  breaker,
  definition,
  describeStore,
  event,
  ids,
  MISSING_ID,
  nodeRun,
  smallDefinition,
  storeShortcuts,
} from "./helpers/store-fixtures.ts";

describeStore("store", (store) => {
  const { createPipeline, createRun, getRun, patch } = storeShortcuts(() => store);

  describe("pipelines", () => {
    it("createPipeline round-trips through getPipelines with zero counters and version 1", async () => {
      const before = Date.now();
      const created = await createPipeline("triage ✓");
      const after = Date.now();
      expect(created).toEqual({
        id: expect.any(String),
        definition: definition("triage ✓"),
        runCount: 0,
        successCount: 0,
        errorCount: 0,
        version: 1,
        createdAt: expect.any(Date),
        updatedAt: expect.any(Date),
      });
      expect(created.createdAt.getTime()).toBeGreaterThanOrEqual(before);
      expect(created.createdAt.getTime()).toBeLessThanOrEqual(after);
      expect(created.updatedAt).toEqual(created.createdAt);
      expect(await store.getPipelines([created.id])).toEqual([created]);
    });

    it("getPipelines keeps the order of the ids and gives null for missing ones", async () => {
      const a = await createPipeline("a");
      const b = await createPipeline("b");
      const found = await store.getPipelines([b.id, MISSING_ID, a.id, b.id]);
      expect(ids(found)).toEqual([b.id, undefined, a.id, b.id]);
      expect(found[1]).toBeNull();
      expect(found.map((p) => p?.definition.name)).toEqual(["b", undefined, "a", "b"]);
      expect(await store.getPipelines([])).toEqual([]);
    });

    it("updatePipeline replaces the definition, bumps the version and keeps the counters", async () => {
      const created = await createPipeline("original");
      await createRun(created, { status: "COMPLETED" });
      const updated = await store.updatePipeline(created.id, smallDefinition);
      expect(updated).toEqual({
        id: created.id,
        definition: smallDefinition,
        runCount: 1,
        successCount: 1,
        errorCount: 0,
        version: 2,
        createdAt: created.createdAt,
        updatedAt: expect.any(Date),
      });
      expect(updated!.updatedAt.getTime()).toBeGreaterThanOrEqual(created.updatedAt.getTime());
      expect(await store.getPipelines([created.id])).toEqual([updated]);

      const again = await store.updatePipeline(created.id, definition("third"));
      expect(again?.version).toBe(3);
      expect(again?.definition).toEqual(definition("third"));
      expect(await store.updatePipeline(MISSING_ID, smallDefinition)).toBeNull();
      expect(await store.getPipelines([MISSING_ID])).toEqual([null]);
    });

    it("listPipelines pages newest first with first/after", async () => {
      const created: PipelineRecord[] = [];
      for (let i = 1; i <= 5; i++) created.push(await createPipeline(`p${i}`));
      const [p1, p2, p3, p4, p5] = created.map((p) => p.id);

      const page1 = await store.listPipelines({ first: 2 });
      expect([ids(page1.items), page1.hasNextPage]).toEqual([[p5, p4], true]);
      expect(page1.items[0]).toEqual(created[4]);
      const page2 = await store.listPipelines({ first: 2, after: p4 });
      expect([ids(page2.items), page2.hasNextPage]).toEqual([[p3, p2], true]);
      const page3 = await store.listPipelines({ first: 2, after: p2 });
      expect([ids(page3.items), page3.hasNextPage]).toEqual([[p1], false]);

      const exact = await store.listPipelines({ first: 5, after: null });
      expect([ids(exact.items), exact.hasNextPage]).toEqual([[p5, p4, p3, p2, p1], false]);
      const more = await store.listPipelines({ first: 10 });
      expect([ids(more.items), more.hasNextPage]).toEqual([[p5, p4, p3, p2, p1], false]);
      const end = await store.listPipelines({ first: 3, after: p1 });
      expect(end).toEqual({ items: [], hasNextPage: false });
    });

    it("deletePipeline refuses while a run is QUEUED or RUNNING", async () => {
      for (const status of ["QUEUED", "RUNNING"] as const) {
        const pipeline = await createPipeline(status);
        const active = await createRun(pipeline, { status });
        await createRun(pipeline, { status: "COMPLETED" });
        expect(await store.deletePipeline(pipeline.id)).toBe("has_active_runs");
        expect(ids(await store.getPipelines([pipeline.id]))).toEqual([pipeline.id]);
        expect((await getRun(active.id))?.status).toBe(status);

        await patch([{ id: active.id, status: "CANCELLED", completedAt: at(5) }]);
        expect(await store.deletePipeline(pipeline.id)).toBe("deleted");
        expect(await store.getPipelines([pipeline.id])).toEqual([null]);
      }
    });

    it("deletePipeline reports deleted, then not_found", async () => {
      const pipeline = await createPipeline();
      const other = await createPipeline("other");
      expect(await store.deletePipeline(MISSING_ID)).toBe("not_found");
      expect(await store.deletePipeline(pipeline.id)).toBe("deleted");
      expect(await store.deletePipeline(pipeline.id)).toBe("not_found");
      expect(await store.getPipelines([pipeline.id, other.id])).toEqual([null, other]);
    });

    it("deletePipeline takes the runs, node runs, events and breakers with it", async () => {
      const doomed = await createPipeline("doomed");
      const kept = await createPipeline("kept");
      const done = await createRun(doomed, { status: "COMPLETED" }, [event(1, "RUN_STARTED")]);
      const failed = await createRun(doomed, { status: "FAILED", error: "boom" }, [
        event(1, "RUN_STARTED"),
        event(2, "RUN_FAILED"),
      ]);
      const survivor = await createRun(kept, { status: "COMPLETED" }, [event(1, "RUN_STARTED")]);
      await store.commit({
        events: [{ ...event(2, "RUN_COMPLETED"), runId: done.id }],
        nodeRuns: [nodeRun(done.id, "start"), nodeRun(survivor.id, "start")],
        runs: [],
      });
      await store.updateBreaker(doomed.id, "fetch", () => breaker(doomed.id, "fetch"));
      await store.updateBreaker(kept.id, "fetch", () => breaker(kept.id, "fetch"));

      expect(await store.deletePipeline(doomed.id)).toBe("deleted");

      expect(ids(await store.getRuns([done.id, failed.id, survivor.id]))).toEqual([
        undefined,
        undefined,
        survivor.id,
      ]);
      expect(await store.getEvents(done.id, 0)).toEqual([]);
      expect(await store.getEvents(failed.id, 0)).toEqual([]);
      expect(await store.lastSeq(failed.id)).toBe(0);
      const nodeRuns = await store.getNodeRuns([done.id, survivor.id]);
      expect(nodeRuns.get(done.id)).toEqual([]);
      expect(nodeRuns.get(survivor.id)?.map((n) => n.nodeId)).toEqual(["start"]);
      const breakers = await store.getBreakers([doomed.id, kept.id]);
      expect(breakers.get(doomed.id)).toEqual([]);
      expect(breakers.get(kept.id)).toEqual([breaker(kept.id, "fetch")]);
      expect(await store.getBreaker(doomed.id, "fetch")).toBeNull();
      expect(ids((await store.listRuns({ first: 10 })).items)).toEqual([survivor.id]);
      expect(await store.getEvents(survivor.id, 0)).toHaveLength(1);
    });
  });

  it("keeps its own copies: changing the caller's objects afterwards changes nothing", async () => {
    const input: { -readonly [K in keyof PipelineDefinition]: PipelineDefinition[K] } =
      definition("copied");
    const pipeline = await store.createPipeline(input);
    input.name = "changed";
    const triggerData = { list: [1] };
    const eventData = { delayMs: 5 };
    const run = await createRun(pipeline, { triggerData }, [
      event(1, "RUN_STARTED", { data: eventData }),
    ]);
    triggerData.list.push(2);
    eventData.delayMs = 999;
    const output = { rows: [1] };
    const commitData = { status: 200 };
    await store.commit({
      events: [{ ...event(2, "NODE_COMPLETED", { data: commitData }), runId: run.id }],
      nodeRuns: [nodeRun(run.id, "fetch", { output })],
      runs: [],
    });
    output.rows.push(2);
    commitData.status = 500;
    const [read] = await store.getRuns([run.id]);
    (read!.triggerData as { list: number[] }).list.push(3);

    expect((await store.getPipelines([pipeline.id]))[0]?.definition.name).toBe("copied");
    expect((await getRun(run.id))?.triggerData).toEqual({ list: [1] });
    expect((await store.getEvents(run.id, 0)).map((e) => e.data)).toEqual([
      { delayMs: 5 },
      { status: 200 },
    ]);
    expect((await store.getNodeRuns([run.id])).get(run.id)?.[0]?.output).toEqual({ rows: [1] });
  });

  it("counts the queries it makes in stats.queries", async () => {
    const pipeline = await createPipeline();
    const run = await createRun(pipeline);
    const reads: (() => Promise<unknown>)[] = [
      () => store.getPipelines([pipeline.id]),
      () => store.listPipelines({ first: 5 }),
      () => store.getRuns([run.id]),
      () => store.listRuns({ first: 5 }),
      () => store.getNodeRuns([run.id]),
      () => store.getEvents(run.id, 0),
      () => store.getBreakers([pipeline.id]),
    ];
    for (const read of reads) {
      const before = store.stats.queries;
      await read();
      expect([read.toString(), store.stats.queries > before]).toEqual([read.toString(), true]);
    }
  });
});
