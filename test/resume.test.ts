/**
 * Taking over a run another instance was executing (its lease expired): completed nodes are
 * not run again, the interrupted node is attempted again with the next attempt number, events
 * go on from the next seq, and the run keeps its deadline.
 */
import { afterEach, expect, it } from "vitest";
import { normalizeDefinition } from "../src/domain/definition.ts";
import type { JsonValue } from "../src/domain/json.ts";
import type { Engine } from "../src/engine/engine.ts";
import type { Store } from "../src/store/types.ts";
import { availableProviders, describeProviders, freshStore } from "./helpers/databases.ts";
import { collectEvents, createTestEngine, getRun, steps } from "./helpers/engine.ts";
import { storedOutput } from "./helpers/store-fixtures.ts";

const providers = await availableProviders();

let engine: Engine | undefined;
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await engine?.stop(0);
  await cleanup?.();
  engine = undefined;
});

/** A run "left behind" by instance `dead`: start and first completed, second was running (attempt 1). */
async function leftBehind(
  store: Store,
  deadlineAt: Date,
  second: { type: "AGENT" | "DELAY"; config: Record<string, JsonValue> } = {
    type: "AGENT",
    config: { agentId: "counter", task: "second" },
  },
  startedAgoMs = 5000,
) {
  const definition = normalizeDefinition({
    name: "resume",
    nodes: [
      { id: "start", type: "TRIGGER" },
      { id: "first", type: "AGENT", config: { agentId: "counter", task: "first" } },
      { id: "second", ...second },
    ],
    edges: [
      { source: "start", target: "first" },
      { source: "first", target: "second" },
    ],
  });
  const pipeline = await store.createPipeline(definition);
  const run = await store.createRun(
    {
      pipelineId: pipeline.id,
      pipelineVersion: 1,
      status: "QUEUED",
      triggerData: { n: 1 },
      error: null,
      definition,
      startedAt: null,
      completedAt: null,
    },
    [],
  );
  const past = new Date(Date.now() - 60_000);
  await store.claimRun(run.id, {
    ownerId: "dead",
    now: past,
    leaseUntil: new Date(Date.now() - 1000),
  });
  const at = new Date(Date.now() - startedAgoMs);
  const event = (
    seq: number,
    type: "RUN_STARTED" | "NODE_STARTED" | "NODE_COMPLETED",
    nodeId: string | null,
  ) => ({
    runId: run.id,
    seq,
    type,
    nodeId,
    attempt: nodeId ? 1 : null,
    at,
    data: null,
  });
  const nodeRun = (nodeId: string, status: "COMPLETED" | "RUNNING", output?: JsonValue) => ({
    runId: run.id,
    nodeId,
    status,
    attempts: 1,
    output: storedOutput(output),
    error: null,
    startedAt: at,
    completedAt: status === "COMPLETED" ? at : null,
    reusedFrom: null,
  });
  await store.commit({
    events: [
      event(1, "RUN_STARTED", null),
      event(2, "NODE_STARTED", "start"),
      event(3, "NODE_COMPLETED", "start"),
      event(4, "NODE_STARTED", "first"),
      event(5, "NODE_COMPLETED", "first"),
      event(6, "NODE_STARTED", "second"),
    ],
    nodeRuns: [
      nodeRun("start", "COMPLETED", { n: 1 }),
      nodeRun("first", "COMPLETED", { result: "stored" }),
      nodeRun("second", "RUNNING"),
    ],
    runs: [{ id: run.id, status: "RUNNING", startedAt: at, deadlineAt }],
  });
  return run.id;
}

describeProviders(providers)("taking over an orphaned run on %s", (provider) => {
  it("runs only what was not finished, numbering attempts and events on", async () => {
    const fresh = await freshStore(provider);
    cleanup = fresh.cleanup;
    const runId = await leftBehind(fresh.store, new Date(Date.now() + 60_000));
    const calls: string[] = [];
    engine = createTestEngine({ store: fresh.store, instanceId: "alive" });
    engine.agents.register("counter", async ({ task, inputs }) => {
      calls.push(task);
      return { result: `${task} saw ${JSON.stringify(inputs)}` };
    });
    const events = await collectEvents(engine, runId, 6);
    expect(steps(events)).toEqual([
      ["NODE_STARTED", "second", 2],
      ["NODE_COMPLETED", "second", 2],
      ["RUN_COMPLETED", null, null],
    ]);
    expect(events.map((e) => e.seq)).toEqual([7, 8, 9]);
    expect(calls).toEqual(["second"]);
    const nodeRuns = (await fresh.store.getNodeRuns([runId])).get(runId)!;
    // The stored output of "first" fed "second".
    expect(nodeRuns.find((n) => n.nodeId === "second")?.output).toEqual({
      result: 'second saw {"first":{"result":"stored"}}',
    });
    expect((await getRun(fresh.store, runId)).status).toBe("COMPLETED");
  });

  it("resumes an interrupted DELAY with what remains of it, not from zero", async () => {
    const fresh = await freshStore(provider);
    cleanup = fresh.cleanup;
    // The hour-long DELAY began an hour and a second ago elsewhere: nothing remains of it. A
    // wait from zero would hold the run for an hour (the test would time out).
    const runId = await leftBehind(
      fresh.store,
      new Date(Date.now() + 60_000),
      { type: "DELAY", config: { seconds: 3600 } },
      3_601_000,
    );
    engine = createTestEngine({ store: fresh.store, instanceId: "alive" });
    const events = await collectEvents(engine, runId, 6);
    expect(steps(events)).toEqual([
      ["NODE_STARTED", "second", 2],
      ["NODE_COMPLETED", "second", 2],
      ["RUN_COMPLETED", null, null],
    ]);
  });

  it("keeps the run's deadline: a run past it ends TIMED_OUT when taken over", async () => {
    const fresh = await freshStore(provider);
    cleanup = fresh.cleanup;
    const runId = await leftBehind(fresh.store, new Date(Date.now() - 1000));
    const calls: string[] = [];
    engine = createTestEngine({ store: fresh.store, instanceId: "alive" });
    engine.agents.register("counter", async ({ task }) => {
      calls.push(task);
      return { result: task };
    });
    const events = await collectEvents(engine, runId, 6);
    expect(steps(events)).toEqual([["RUN_TIMED_OUT", null, null]]);
    expect(calls).toEqual([]);
    const run = await getRun(fresh.store, runId);
    expect([run.status, run.error]).toEqual(["TIMED_OUT", "run timed out after 3600 s"]);
    const nodeRuns = (await fresh.store.getNodeRuns([runId])).get(runId)!;
    expect(nodeRuns.find((n) => n.nodeId === "second")?.status).toBe("CANCELLED");
  });
});
