/**
 * The Store contract (src/store/types.ts) on every available provider: memory, SQLite and,
 * when it answers, PostgreSQL. Every test gets a fresh store; the dates that decide an outcome
 * (leases, events) are explicit, so nothing here waits on the clock.
 */
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { JsonValue, PipelineDefinition } from "../src/engine/definition.ts";
import type { RunEventType, RunStatus } from "../src/engine/types.ts";
import { openStore } from "../src/store/index.ts";
import type { MigrationOutcome } from "../src/store/migrate.ts";
import type {
  BreakerRecord,
  LeaseArgs,
  NewRun,
  NodeRunRecord,
  PipelineRecord,
  RunEventRecord,
  RunRecord,
  Store,
  WriteBatch,
} from "../src/store/types.ts";
import {
  availableProviders,
  createTestDatabase,
  freshStore,
  type TestDatabase,
} from "./helpers/databases.ts";

const providers = await availableProviders();
const sqlProviders = providers.filter(
  (provider): provider is "sqlite" | "postgresql" => provider !== "memory",
);

/** A well-formed UUIDv7 that no store ever hands out. */
const MISSING_ID = "00000000-0000-7000-8000-000000000000";
const T0 = Date.parse("2026-01-01T00:00:00.000Z");
/** A fixed instant `seconds` after T0. */
const at = (seconds: number): Date => new Date(T0 + seconds * 1000);
const lease = (ownerId: string, now: number, until: number): LeaseArgs => ({
  ownerId,
  now: at(now),
  leaseUntil: at(until),
});

function definition(name: string): PipelineDefinition {
  return {
    name,
    nodes: [
      { id: "start", type: "TRIGGER", config: {} },
      {
        id: "fetch",
        type: "ACTION",
        name: "Fetch ✓",
        config: { action: "http", url: "http://127.0.0.1:9/x", headers: { accept: "*/*" } },
        retry: { maxAttempts: 4, initialDelayMs: 100, maxDelayMs: 2000, jitter: true },
        timeoutMs: 5000,
        continueOnFail: true,
        breaker: { failureThreshold: 2, recoveryTimeoutMs: 500 },
      },
      { id: "ok", type: "CONDITION", config: { expression: "inputs.fetch.status == 200" } },
      { id: "alert", type: "ACTION", config: { action: "log", message: "échec «fetch» 🚨" } },
    ],
    edges: [
      { source: "start", target: "fetch" },
      { source: "fetch", target: "ok" },
      { source: "ok", target: "alert", branch: "FALSE" },
    ],
    maxRetriesPerNode: 4,
    timeoutSeconds: 120,
    maxConcurrency: 3,
    breaker: { failureThreshold: 7, recoveryTimeoutMs: 1234 },
  };
}

const smallDefinition: PipelineDefinition = {
  name: "renamed",
  nodes: [{ id: "only", type: "TRIGGER", config: { note: null } }],
  edges: [],
  maxRetriesPerNode: 1,
  timeoutSeconds: 60,
  maxConcurrency: null,
  breaker: { failureThreshold: 1, recoveryTimeoutMs: 10 },
};

type NewEvent = Omit<RunEventRecord, "runId">;
const event = (seq: number, type: RunEventType, fields: Partial<NewEvent> = {}): NewEvent => ({
  seq,
  type,
  nodeId: null,
  attempt: null,
  at: at(seq),
  data: null,
  ...fields,
});

const newRun = (pipeline: PipelineRecord, fields: Partial<NewRun> = {}): NewRun => ({
  pipelineId: pipeline.id,
  pipelineVersion: pipeline.version,
  status: "QUEUED",
  triggerData: null,
  error: null,
  definition: pipeline.definition,
  startedAt: null,
  completedAt: null,
  ...fields,
});

const nodeRun = (runId: string, nodeId: string, fields: Partial<NodeRunRecord> = {}) =>
  ({
    runId,
    nodeId,
    status: "COMPLETED",
    attempts: 1,
    output: undefined,
    error: null,
    startedAt: at(1),
    completedAt: at(2),
    ...fields,
  }) satisfies NodeRunRecord;

const breaker = (pipelineId: string, nodeId: string, fields: Partial<BreakerRecord> = {}) =>
  ({
    pipelineId,
    nodeId,
    state: "CLOSED",
    failureCount: 0,
    openedAt: null,
    trialStartedAt: null,
    updatedAt: at(0),
    ...fields,
  }) satisfies BreakerRecord;

const ids = (items: readonly ({ readonly id: string } | null)[]) => items.map((i) => i?.id);
const sorted = (values: readonly string[]) => [...values].sort();

describe.each(providers)("store on %s", (provider) => {
  let store: Store;
  let cleanup: () => Promise<void>;

  beforeEach(async () => {
    ({ store, cleanup } = await freshStore(provider));
  });
  afterEach(async () => {
    await cleanup();
  });

  const createPipeline = (name = "pipeline") => store.createPipeline(definition(name));

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
  const createRun = (
    pipeline: PipelineRecord,
    fields: Partial<NewRun> = {},
    events: readonly NewEvent[] = [],
  ) => store.createRun(newRun(pipeline, fields), events);
  const getRun = async (id: string): Promise<RunRecord | null> =>
    (await store.getRuns([id]))[0] ?? null;
  const counters = async (pipeline: PipelineRecord) => {
    const [record] = await store.getPipelines([pipeline.id]);
    return record
      ? { runs: record.runCount, successes: record.successCount, errors: record.errorCount }
      : null;
  };
  const patch = (runs: WriteBatch["runs"]) => store.commit({ events: [], nodeRuns: [], runs });

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

  describe("runs", () => {
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
      expect((await store.getNodeRuns([run.id])).get(run.id)).toEqual([nodeRun(run.id, "fetch")]);
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
        expect([nodeId, byNode.get(nodeId)]).toEqual([nodeId, nodeRun(run.id, nodeId, { output })]);
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
      expect(replaced).toEqual(replacement);
      expect(replaced?.output).toBeUndefined();
      expect(after.get(other.id)).toEqual([
        nodeRun(other.id, "fetch", { status: "RUNNING", completedAt: null }),
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
  });

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

  describe("breakers", () => {
    it("updateBreaker inserts, then read-modify-writes the current row", async () => {
      const pipeline = await createPipeline();
      expect(await store.getBreaker(pipeline.id, "fetch")).toBeNull();

      const seen: (BreakerRecord | null)[] = [];
      const first = breaker(pipeline.id, "fetch", { failureCount: 1, updatedAt: at(1) });
      const inserted = await store.updateBreaker(pipeline.id, "fetch", (current) => {
        seen.push(current);
        return first;
      });
      expect(inserted).toEqual(first);
      expect(await store.getBreaker(pipeline.id, "fetch")).toEqual(first);

      const opened = await store.updateBreaker(pipeline.id, "fetch", (current) => {
        seen.push(current);
        return (
          current && {
            ...current,
            state: "OPEN",
            failureCount: current.failureCount + 1,
            openedAt: at(2),
            updatedAt: at(2),
          }
        );
      });
      const expectedOpen = breaker(pipeline.id, "fetch", {
        state: "OPEN",
        failureCount: 2,
        openedAt: at(2),
        updatedAt: at(2),
      });
      expect(opened).toEqual(expectedOpen);

      const trial = await store.updateBreaker(pipeline.id, "fetch", (current) => {
        seen.push(current);
        return current && { ...current, state: "HALF_OPEN", trialStartedAt: at(3) };
      });
      const expectedTrial = { ...expectedOpen, state: "HALF_OPEN", trialStartedAt: at(3) };
      expect(trial).toEqual(expectedTrial);
      expect(seen).toEqual([null, first, expectedOpen]);
      expect(await store.getBreaker(pipeline.id, "fetch")).toEqual(expectedTrial);
    });

    it("updateBreaker leaves the row as it is when the change returns null", async () => {
      const pipeline = await createPipeline();
      expect(await store.updateBreaker(pipeline.id, "fetch", () => null)).toBeNull();
      expect(await store.getBreaker(pipeline.id, "fetch")).toBeNull();

      const row = breaker(pipeline.id, "fetch", {
        state: "OPEN",
        failureCount: 5,
        openedAt: at(4),
      });
      await store.updateBreaker(pipeline.id, "fetch", () => row);
      let seen: BreakerRecord | null = null;
      const kept = await store.updateBreaker(pipeline.id, "fetch", (current) => {
        seen = current;
        return null;
      });
      expect(seen).toEqual(row);
      expect(kept).toEqual(row);
      expect(await store.getBreaker(pipeline.id, "fetch")).toEqual(row);
    });

    it("getBreakers groups by pipeline, ordered by nodeId", async () => {
      const a = await createPipeline("a");
      const b = await createPipeline("b");
      const none = await createPipeline("none");
      for (const nodeId of ["zeta", "alpha", "mid"]) {
        await store.updateBreaker(a.id, nodeId, () => breaker(a.id, nodeId, { failureCount: 1 }));
      }
      await store.updateBreaker(b.id, "fetch", () => breaker(b.id, "fetch", { state: "OPEN" }));

      const groups = await store.getBreakers([b.id, a.id, none.id]);
      expect(sorted([...groups.keys()])).toEqual(sorted([a.id, b.id, none.id]));
      expect(groups.get(a.id)).toEqual(
        ["alpha", "mid", "zeta"].map((nodeId) => breaker(a.id, nodeId, { failureCount: 1 })),
      );
      expect(groups.get(b.id)).toEqual([breaker(b.id, "fetch", { state: "OPEN" })]);
      expect(groups.get(none.id)).toEqual([]);
      expect((await store.getBreakers([])).size).toBe(0);
    });
  });

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

const MIGRATIONS_ROOT = fileURLToPath(new URL("../prisma/migrations/", import.meta.url));

describe.each(sqlProviders)("migrations on %s", (provider) => {
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

describe.each(sqlProviders)("transactions on %s", (provider) => {
  let store: Store;
  let cleanup: () => Promise<void>;

  beforeEach(async () => {
    ({ store, cleanup } = await freshStore(provider));
  });
  afterEach(async () => {
    await cleanup();
  });

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
});

/**
 * Races on PostgreSQL made deterministic: a third connection holds a lock that parks the
 * store's statements, an observer connection waits until they are all parked, then the lock
 * is let go. (pg_stat_activity is read from its own connection: inside a transaction
 * PostgreSQL would keep serving the first snapshot of it.)
 */
describe.runIf(providers.includes("postgresql"))("row locks on postgresql", () => {
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
    for (let i = 0; i < 1000; i++) {
      const { rows } = await observer.query<{ waiting: number }>(
        `SELECT count(*)::int AS "waiting" FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      if (rows[0]!.waiting >= count) return;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    throw new Error(`expected ${count} sessions waiting on a lock`);
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
