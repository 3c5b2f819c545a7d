/**
 * The Store contract on every available provider: commit, the one write of a running run
 * (events, node runs and run patches), and the rules it keeps for terminal runs.
 */
import { describe, expect, it } from "vitest";
import type { JsonValue } from "../src/domain/json.ts";
import type { RunEventRecord } from "../src/domain/records.ts";
import type { RunStatus } from "../src/domain/status.ts";
import type { WriteBatch } from "../src/store/types.ts";
import {
  asRead,
  at,
  describeStore,
  event,
  lease,
  MISSING_ID,
  type NewEvent,
  nodeRun,
  sorted,
  storeShortcuts,
} from "./helpers/store-fixtures.ts";

describeStore("store", (store) => {
  const { createPipeline, createRun, getRun, counters, patch } = storeShortcuts(() => store);

  describe("commit", () => {
    it("appends events in seq order and ignores a duplicate seq without losing the batch", async () => {
      const pipeline = await createPipeline();
      const run = await createRun(pipeline, { status: "RUNNING" }, [
        event(1, "RUN_STARTED"),
        event(2, "NODE_STARTED", { nodeId: "start", attempt: 1 }),
      ]);
      const withRun = (e: NewEvent): RunEventRecord => ({ ...e, runId: run.id });
      const e4 = withRun(event(4, "NODE_STARTED", { nodeId: "fetch", attempt: 1 }));
      const e3 = withRun(event(3, "NODE_COMPLETED", { nodeId: "start", data: { out: "ü" } }));
      await store.commit({ events: [e4, e3], nodeRuns: [], runs: [] });
      expect((await store.getEvents(run.id, 0)).map((e) => e.seq)).toEqual([1, 2, 3, 4]);

      const duplicate = withRun(event(2, "RUN_FAILED", { data: { replayed: true } }));
      const e5 = withRun(event(5, "NODE_COMPLETED", { nodeId: "fetch", data: { status: 200 } }));
      await store.commit({
        events: [duplicate, e5],
        nodeRuns: [nodeRun(run.id, "fetch")],
        runs: [{ id: run.id, deadlineAt: at(60) }],
      });
      expect(await store.getEvents(run.id, 0)).toEqual([
        withRun(event(1, "RUN_STARTED")),
        withRun(event(2, "NODE_STARTED", { nodeId: "start", attempt: 1 })),
        e3,
        e4,
        e5,
      ]);
      expect(await store.lastSeq(run.id)).toBe(5);
      expect((await store.getNodeRuns([run.id])).get(run.id)).toEqual([
        asRead(nodeRun(run.id, "fetch")),
      ]);
      expect((await getRun(run.id))?.deadlineAt).toEqual(at(60));
    });

    it("upserts node runs by run and node, with their output as JSON", async () => {
      const pipeline = await createPipeline();
      const run = await createRun(pipeline, { status: "RUNNING" });
      const other = await createRun(pipeline, { status: "RUNNING" });
      const outputs: Record<string, JsonValue | undefined> = {
        a_none: undefined,
        b_null: null,
        c_zero: 0,
        d_empty: "",
        e_false: false,
        f_object: { status: 200, body: "ok ✓", headers: { "x-a": ["1", "2"] }, none: null },
        g_array: [1, [2, [3]], { four: 4 }],
      };
      await store.commit({
        events: [],
        nodeRuns: Object.entries(outputs).map(([nodeId, output]) =>
          nodeRun(run.id, nodeId, { output }),
        ),
        runs: [],
      });
      const stored = (await store.getNodeRuns([run.id])).get(run.id) ?? [];
      const byNode = new Map(stored.map((n) => [n.nodeId, n]));
      expect(sorted([...byNode.keys()])).toEqual(Object.keys(outputs));
      for (const [nodeId, output] of Object.entries(outputs)) {
        expect([nodeId, byNode.get(nodeId)]).toEqual([
          nodeId,
          asRead(nodeRun(run.id, nodeId, { output })),
        ]);
      }
      expect(byNode.get("a_none")?.output).toBeUndefined();
      expect(byNode.get("b_null")?.output).toBeNull();

      await store.commit({
        events: [],
        nodeRuns: [nodeRun(other.id, "fetch", { status: "RUNNING", completedAt: null })],
        runs: [],
      });
      const replacement = nodeRun(run.id, "f_object", {
        status: "FAILED",
        attempts: 3,
        output: undefined,
        error: "HTTP 503",
        startedAt: at(10),
        completedAt: at(11),
      });
      await store.commit({ events: [], nodeRuns: [replacement], runs: [] });

      const after = await store.getNodeRuns([run.id, other.id, MISSING_ID]);
      const rows = after.get(run.id) ?? [];
      expect(rows).toHaveLength(Object.keys(outputs).length);
      const replaced = rows.find((n) => n.nodeId === "f_object");
      expect(replaced).toEqual(asRead(replacement));
      expect(replaced?.output).toBeUndefined();
      expect(after.get(other.id)).toEqual([
        asRead(nodeRun(other.id, "fetch", { status: "RUNNING", completedAt: null })),
      ]);
      expect(after.get(MISSING_ID)).toEqual([]);
    });

    it("applies run patches and leaves out the fields a patch does not name", async () => {
      const pipeline = await createPipeline();
      const run = await createRun(pipeline, { triggerData: { keep: true } });
      await patch([{ id: run.id, status: "RUNNING", startedAt: at(1), deadlineAt: at(121) }]);
      expect(await getRun(run.id)).toEqual({
        ...run,
        status: "RUNNING",
        startedAt: at(1),
        deadlineAt: at(121),
      });
      await patch([{ id: run.id, error: "transient" }]);
      expect((await getRun(run.id))?.error).toBe("transient");
      await patch([{ id: run.id, error: null }]);
      expect(await getRun(run.id)).toEqual({
        ...run,
        status: "RUNNING",
        startedAt: at(1),
        deadlineAt: at(121),
      });
      expect(await counters(pipeline)).toEqual({ runs: 1, successes: 0, errors: 0 });
    });

    it("moves the counters once per terminal status: COMPLETED, FAILED, TIMED_OUT, not CANCELLED", async () => {
      const expected: [RunStatus, { runs: number; successes: number; errors: number }][] = [
        ["COMPLETED", { runs: 1, successes: 1, errors: 0 }],
        ["FAILED", { runs: 1, successes: 0, errors: 1 }],
        ["TIMED_OUT", { runs: 1, successes: 0, errors: 1 }],
        ["CANCELLED", { runs: 1, successes: 0, errors: 0 }],
      ];
      for (const [status, counts] of expected) {
        const pipeline = await createPipeline(status);
        const run = await createRun(pipeline, { status: "RUNNING", startedAt: at(0) });
        await patch([{ id: run.id, status, completedAt: at(9), error: `ended ${status}` }]);
        expect([status, await counters(pipeline)]).toEqual([status, counts]);
        const ended = await getRun(run.id);
        expect([ended?.status, ended?.completedAt, ended?.error]).toEqual([
          status,
          at(9),
          `ended ${status}`,
        ]);
      }
    });

    it("never changes a terminal run again, and its counters move once", async () => {
      const pipeline = await createPipeline();
      const run = await createRun(pipeline, { status: "RUNNING", startedAt: at(0) });
      await patch([{ id: run.id, status: "COMPLETED", completedAt: at(5) }]);
      const finished = await getRun(run.id);
      expect(finished?.status).toBe("COMPLETED");

      for (const late of [
        { id: run.id, status: "FAILED", error: "late", completedAt: at(6) },
        { id: run.id, status: "COMPLETED", completedAt: at(7) },
        { id: run.id, status: "TIMED_OUT" },
        { id: run.id, status: "CANCELLED" },
        { id: run.id, status: "RUNNING" },
        { id: run.id, status: "QUEUED", startedAt: at(8) },
        { id: run.id, error: "late error", deadlineAt: at(100) },
      ] satisfies WriteBatch["runs"]) {
        await patch([late]);
        expect([late, await getRun(run.id)]).toEqual([late, finished]);
      }
      expect(await counters(pipeline)).toEqual({ runs: 1, successes: 1, errors: 0 });
    });

    it("applies only the first of two terminal patches in one batch", async () => {
      const pipeline = await createPipeline();
      const run = await createRun(pipeline, { status: "RUNNING" });
      await patch([
        { id: run.id, status: "FAILED", error: "first" },
        { id: run.id, status: "COMPLETED", error: null },
      ]);
      const ended = await getRun(run.id);
      expect([ended?.status, ended?.error]).toEqual(["FAILED", "first"]);
      expect(await counters(pipeline)).toEqual({ runs: 1, successes: 0, errors: 1 });
    });

    it("does not count a run created terminal a second time", async () => {
      const pipeline = await createPipeline();
      const run = await createRun(pipeline, { status: "FAILED", error: "Validation failed: x" });
      await patch([{ id: run.id, status: "COMPLETED", error: null }]);
      const reloaded = await getRun(run.id);
      expect([reloaded?.status, reloaded?.error]).toEqual(["FAILED", "Validation failed: x"]);
      expect(await counters(pipeline)).toEqual({ runs: 1, successes: 0, errors: 1 });
    });

    it("a terminal patch clears the lease, a non-terminal one keeps it", async () => {
      const pipeline = await createPipeline();
      const run = await createRun(pipeline);
      await store.claimRun(run.id, lease("worker-a", 0, 30));
      await patch([{ id: run.id, status: "RUNNING", startedAt: at(1) }]);
      const running = await getRun(run.id);
      expect([running?.ownerId, running?.leaseExpiresAt]).toEqual(["worker-a", at(30)]);
      await patch([{ id: run.id, status: "CANCELLED", completedAt: at(2) }]);
      const cancelled = await getRun(run.id);
      expect([cancelled?.status, cancelled?.ownerId, cancelled?.leaseExpiresAt]).toEqual([
        "CANCELLED",
        null,
        null,
      ]);
    });

    it("writes a fenced batch of one pipeline's runs whole, leaving out runs held by others", async () => {
      const pipeline = await createPipeline();
      const [mine, ending, theirs, ended] = await Promise.all(
        [0, 1, 2, 3].map(() => createRun(pipeline, { status: "RUNNING" })),
      );
      for (const run of [mine!, ending!, ended!])
        await store.claimRun(run.id, lease("worker-a", 0, 30));
      await store.claimRun(theirs!.id, lease("worker-b", 0, 30));
      await patch([{ id: ended!.id, status: "FAILED", error: "earlier", completedAt: at(1) }]);
      // As the engine writes it: every patch names the run's pipeline.
      const p = pipeline.id;
      const outcome = await store.commit({
        ownerId: "worker-a",
        events: [
          { ...event(1, "RUN_STARTED"), runId: mine!.id },
          { ...event(1, "RUN_STARTED"), runId: ending!.id },
          { ...event(2, "RUN_COMPLETED"), runId: ending!.id },
          { ...event(1, "RUN_STARTED"), runId: theirs!.id },
        ],
        nodeRuns: [nodeRun(mine!.id, "start", { output: { n: 1 } }), nodeRun(theirs!.id, "start")],
        runs: [
          { id: mine!.id, pipelineId: p, status: "RUNNING", startedAt: at(1), deadlineAt: at(61) },
          { id: ending!.id, pipelineId: p, status: "COMPLETED", error: null, completedAt: at(3) },
          { id: theirs!.id, pipelineId: p, status: "COMPLETED", error: null, completedAt: at(3) },
          { id: ended!.id, pipelineId: p, status: "COMPLETED", error: null, completedAt: at(4) },
        ],
      });
      // An ended run has no owner any more: its patch is left out too.
      expect(outcome.rejectedRuns).toEqual([theirs!.id, ended!.id]);
      const read = await Promise.all([mine, ending, theirs, ended].map((r) => getRun(r!.id)));
      expect(read.map((r) => [r?.status, r?.ownerId ?? null, r?.error ?? null])).toEqual([
        ["RUNNING", "worker-a", null],
        ["COMPLETED", null, null],
        ["RUNNING", "worker-b", null],
        ["FAILED", null, "earlier"],
      ]);
      expect([read[0]?.startedAt, read[0]?.deadlineAt, read[1]?.completedAt]).toEqual([
        at(1),
        at(61),
        at(3),
      ]);
      expect((await store.getEvents(mine!.id, 0)).map((e) => e.type)).toEqual(["RUN_STARTED"]);
      expect((await store.getEvents(ending!.id, 0)).map((e) => e.type)).toEqual([
        "RUN_STARTED",
        "RUN_COMPLETED",
      ]);
      expect(await store.getEvents(theirs!.id, 0)).toEqual([]);
      expect((await store.getNodeRuns([mine!.id])).get(mine!.id)).toEqual([
        asRead(nodeRun(mine!.id, "start", { output: { n: 1 } })),
      ]);
      expect((await store.getNodeRuns([theirs!.id])).get(theirs!.id) ?? []).toEqual([]);
      expect(await counters(pipeline)).toEqual({ runs: 4, successes: 1, errors: 1 });
      // The same batch again changes nothing: events kept once, the counters moved once.
      await store.commit({
        ownerId: "worker-a",
        events: [{ ...event(1, "RUN_STARTED"), runId: mine!.id }],
        nodeRuns: [],
        runs: [{ id: ending!.id, pipelineId: p, status: "FAILED", error: "x", completedAt: at(9) }],
      });
      expect((await store.getEvents(mine!.id, 0)).length).toBe(1);
      expect((await getRun(ending!.id))?.status).toBe("COMPLETED");
      expect(await counters(pipeline)).toEqual({ runs: 4, successes: 1, errors: 1 });
    });

    it("applies patches of many runs in one batch, each by its own fields", async () => {
      const pipeline = await createPipeline();
      const other = await createPipeline();
      const runs = await Promise.all(
        Array.from({ length: 6 }, (_, i) => createRun(i < 5 ? pipeline : other)),
      );
      for (const run of runs) await store.claimRun(run.id, lease("worker-a", 0, 30));
      const [done, failed, started, deadline, ended, elsewhere] = runs as [
        (typeof runs)[number],
        ...(typeof runs)[number][],
      ];
      await patch([{ id: ended!.id, status: "CANCELLED", completedAt: at(1) }]);
      await patch([
        { id: done.id, status: "COMPLETED", error: null, completedAt: at(5) },
        { id: failed!.id, status: "FAILED", error: 'node "x" failed', completedAt: at(6) },
        { id: started!.id, status: "RUNNING", startedAt: at(2), deadlineAt: at(62) },
        { id: deadline!.id, deadlineAt: at(90) },
        { id: ended!.id, status: "COMPLETED", error: null, completedAt: at(7) },
        { id: elsewhere!.id, status: "TIMED_OUT", error: "late", completedAt: at(8) },
      ]);
      const read = await Promise.all(runs.map((run) => getRun(run.id)));
      expect(
        read.map((r) => [r?.status, r?.error ?? null, r?.ownerId ?? null, r?.completedAt ?? null]),
      ).toEqual([
        ["COMPLETED", null, null, at(5)],
        ["FAILED", 'node "x" failed', null, at(6)],
        ["RUNNING", null, "worker-a", null],
        ["QUEUED", null, "worker-a", null],
        ["CANCELLED", null, null, at(1)],
        ["TIMED_OUT", "late", null, at(8)],
      ]);
      expect([read[2]?.startedAt, read[2]?.deadlineAt, read[3]?.deadlineAt]).toEqual([
        at(2),
        at(62),
        at(90),
      ]);
      expect(await counters(pipeline)).toEqual({ runs: 5, successes: 1, errors: 1 });
      expect(await counters(other)).toEqual({ runs: 1, successes: 0, errors: 1 });
    });
  });
});
