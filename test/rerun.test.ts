/**
 * rerunRun: a new run of the same pipeline version and trigger data; from failure, the nodes
 * that completed with all their upstream are reused (their handlers not called again), the
 * rest runs; refused while the source is active; carried by the store, so any instance can
 * execute it.
 */
import { describe, expect, it } from "vitest";
import type { PipelineInput } from "../src/domain/definition.ts";
import type { Engine } from "../src/engine/engine.ts";
import { PermanentError } from "../src/engine/errors.ts";
import {
  CancelRunDocument,
  CreatePipelineDocument,
  RerunRunDocument,
  RerunViewDocument,
  RunEventsDocument,
  RunPipelineDocument,
} from "./generated/graphql.ts";
import { availableProviders, describeProviders, freshStore } from "./helpers/databases.ts";
import {
  collectEvents,
  createPipeline,
  createTestEngine,
  engineEach,
  getRun,
  runToEnd,
  steps,
} from "./helpers/engine.ts";
import { startTestServer, subscribeAll } from "./helpers/server.ts";
import { waitFor } from "./helpers/wait.ts";

const providers = await availableProviders();

/**
 * start → a → b → c, where b fails until `healed`; start → x (CONDITION) → y; start → e
 * (fails, continueOnFail) → f.
 */
const pipeline: PipelineInput = {
  name: "rerun",
  nodes: [
    { id: "start", type: "TRIGGER" },
    { id: "a", type: "ACTION", config: { action: "count" } },
    { id: "b", type: "ACTION", config: { action: "flaky" } },
    { id: "c", type: "ACTION", config: { action: "count" } },
    { id: "x", type: "CONDITION", config: { expression: "trigger.go == true" } },
    { id: "y", type: "PARALLEL" },
    { id: "e", type: "ACTION", config: { action: "broken" }, continueOnFail: true },
    { id: "f", type: "PARALLEL" },
  ],
  edges: [
    { source: "start", target: "a" },
    { source: "a", target: "b" },
    { source: "b", target: "c" },
    { source: "start", target: "x" },
    { source: "x", target: "y" },
    { source: "start", target: "e" },
    { source: "e", target: "f" },
  ],
};

/** Registers the actions; `calls` counts each node's handler calls. */
function actionsOn(engine: Engine, state: { healed: boolean; calls: Map<string, number> }) {
  const count = (nodeId: string) => state.calls.set(nodeId, (state.calls.get(nodeId) ?? 0) + 1);
  engine.actions.register({
    name: "count",
    run: async ({ node }) => {
      count(node.id);
      return { by: node.id };
    },
  });
  engine.actions.register({
    name: "flaky",
    run: async ({ node }) => {
      count(node.id);
      if (!state.healed) throw new PermanentError("not yet", "NOT_YET");
      return { healed: true };
    },
  });
  engine.actions.register({
    name: "broken",
    run: async ({ node }) => {
      count(node.id);
      throw new PermanentError("always broken", "BROKEN");
    },
  });
}

let engine: Engine;
const newEngine = engineEach();

describeProviders(providers)("rerunRun on %s", (provider) => {
  async function failedRun() {
    engine = await newEngine(provider);
    const state = { healed: false, calls: new Map<string, number>() };
    actionsOn(engine, state);
    const id = await createPipeline(engine, pipeline);
    const first = await runToEnd(engine, id, { go: true });
    expect([first.run.status, first.run.error]).toEqual([
      "FAILED",
      'node "b" failed after 1 attempt: not yet',
    ]);
    return { id, state, source: first.run };
  }

  it("from failure reuses what completed upstream of the failure and runs the rest", async () => {
    const { state, source } = await failedRun();
    expect(Object.fromEntries(state.calls)).toEqual({ a: 1, b: 1, e: 1 });
    state.healed = true;
    const rerun = await engine.rerunRun(source.id);
    expect([rerun.rerunOf, rerun.pipelineVersion, rerun.triggerData]).toEqual([
      source.id,
      source.pipelineVersion,
      { go: true },
    ]);
    const events = await collectEvents(engine, rerun.id);
    const run = await getRun(engine.store, rerun.id);
    expect([run.status, run.error, run.rerunOf]).toEqual(["COMPLETED", null, source.id]);
    // a was not called again; b and c ran; e (continueOnFail) ran again, and f after it.
    expect(Object.fromEntries(state.calls)).toEqual({ a: 1, b: 2, c: 1, e: 2 });

    const reused = ["start", "a", "x", "y"];
    expect(events[0]).toMatchObject({
      seq: 1,
      type: "RUN_STARTED",
      data: { rerunOf: source.id, fromFailure: true, reused, nodeCount: 8 },
    });
    expect(steps(events.slice(1, 5))).toEqual(reused.map((n) => ["NODE_COMPLETED", n, null]));
    expect(events.slice(1, 5).map((e) => e.data?.reusedFrom)).toEqual(reused.map(() => source.id));
    expect(events[2]!.data).toEqual({ output: { by: "a" }, reusedFrom: source.id });
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    const ran = steps(events.slice(5)).filter(([type]) => type === "NODE_STARTED");
    expect(ran.map(([, node]) => node).sort()).toEqual(["b", "c", "e", "f"]);
    expect(events.at(-1)?.type).toBe("RUN_COMPLETED");

    const nodeRuns = new Map(
      ((await engine.store.getNodeRuns([run.id])).get(run.id) ?? []).map((n) => [n.nodeId, n]),
    );
    expect(
      Object.fromEntries(
        [...nodeRuns].map(([nodeId, n]) => [nodeId, [n.status, n.attempts, n.reusedFrom]]),
      ),
    ).toEqual({
      start: ["COMPLETED", 0, source.id],
      a: ["COMPLETED", 0, source.id],
      x: ["COMPLETED", 0, source.id],
      y: ["COMPLETED", 0, source.id],
      b: ["COMPLETED", 1, null],
      c: ["COMPLETED", 1, null],
      e: ["FAILED", 1, null],
      f: ["COMPLETED", 1, null],
    });
    expect(nodeRuns.get("c")!.output).toEqual({ by: "c" });
    expect(nodeRuns.get("x")!.output).toEqual({ result: true });
    // The source is untouched.
    expect((await getRun(engine.store, source.id)).status).toBe("FAILED");
  });

  it("without fromFailure runs every node again", async () => {
    const { state, source } = await failedRun();
    state.healed = true;
    const rerun = await engine.rerunRun(source.id, false);
    const events = await collectEvents(engine, rerun.id);
    expect(events[0]!.data).toMatchObject({ rerunOf: source.id, fromFailure: false, reused: [] });
    expect((await getRun(engine.store, rerun.id)).status).toBe("COMPLETED");
    expect(Object.fromEntries(state.calls)).toEqual({ a: 2, b: 2, c: 1, e: 2 });
  });

  it("refuses a run still in progress with RUN_STILL_ACTIVE", async () => {
    engine = await newEngine(provider);
    const id = await createPipeline(engine, {
      name: "long",
      nodes: [
        { id: "start", type: "TRIGGER" },
        { id: "wait", type: "DELAY", config: { seconds: 30 } },
      ],
      edges: [{ source: "start", target: "wait" }],
    });
    const started = await engine.runPipeline(id, null);
    const refused = await engine.rerunRun(started.id).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Error);
    expect([(refused as Error).message, (refused as { code?: string }).code]).toEqual([
      `run "${started.id}" is RUNNING; it can be re-run once it has ended`,
      "RUN_STILL_ACTIVE",
    ]);
    await engine.cancelRun(started.id);
    const rerun = await engine.rerunRun(started.id);
    expect(rerun.rerunOf).toBe(started.id);
    await engine.cancelRun(rerun.id);
    const missing = await engine
      .rerunRun("00000000-0000-7000-8000-000000000000")
      .catch((error: unknown) => error);
    expect((missing as { code?: string }).code).toBe("NOT_FOUND");
  });

  it("is carried by the store: another instance executes it with the reused nodes", async () => {
    const { state, source } = await failedRun();
    state.healed = true;
    await engine.stop(0);
    // This instance takes no runs: the re-run waits QUEUED for one that does.
    const { store } = engine;
    const idle = createTestEngine({ store, instanceId: "idle" });
    actionsOn(idle, state);
    await idle.stop(0);
    const rerun = await idle.rerunRun(source.id);
    expect(rerun.status).toBe("QUEUED");
    const other = createTestEngine({ store, instanceId: "other" });
    actionsOn(other, state);
    try {
      await waitFor("the other instance to finish the re-run", async () =>
        ["COMPLETED", "FAILED"].includes((await getRun(store, rerun.id)).status),
      );
    } finally {
      await other.stop(0);
    }
    expect((await getRun(store, rerun.id)).status).toBe("COMPLETED");
    expect(Object.fromEntries(state.calls)).toEqual({ a: 1, b: 2, c: 1, e: 2 });
  });
});

describe("rerunRun through the API", () => {
  it("re-runs from failure by default, linking rerunOf and reusedFrom", async () => {
    const { store, cleanup } = await freshStore("sqlite");
    const server = await startTestServer(store);
    const state = { healed: false, calls: new Map<string, number>() };
    actionsOn(server.app.services.engine, state);
    try {
      const { createPipeline: created } = await server.gql(CreatePipelineDocument, {
        input: structuredClone(pipeline) as never,
      });
      const { runPipeline } = await server.gql(RunPipelineDocument, {
        id: created.id,
        triggerData: { go: true },
      });
      await subscribeAll(server.wsUrl, RunEventsDocument, { runId: runPipeline.id }).done;
      state.healed = true;
      const { rerunRun } = await server.gql(RerunRunDocument, { id: runPipeline.id });
      expect(rerunRun.rerunOf?.id).toBe(runPipeline.id);
      const events = (
        await subscribeAll(server.wsUrl, RunEventsDocument, { runId: rerunRun.id }).done
      ).map((e) => e.runEvents);
      expect(events.at(-1)?.type).toBe("RUN_COMPLETED");
      const { run } = await server.gql(RerunViewDocument, { id: rerunRun.id });
      expect([run?.status, run?.rerunOf?.id]).toEqual(["COMPLETED", runPipeline.id]);
      expect(
        Object.fromEntries(run!.nodeRuns.map((n) => [n.nodeId, [n.attempts, n.reusedFrom]])),
      ).toEqual({
        start: [0, runPipeline.id],
        a: [0, runPipeline.id],
        b: [1, null],
        c: [1, null],
        x: [0, runPipeline.id],
        y: [0, runPipeline.id],
        e: [1, null],
        f: [1, null],
      });
      expect(Object.fromEntries(state.calls)).toEqual({ a: 1, b: 2, c: 1, e: 2 });

      const { createPipeline: long } = await server.gql(CreatePipelineDocument, {
        input: {
          name: "long",
          nodes: [
            { id: "start", type: "TRIGGER" },
            { id: "wait", type: "DELAY", config: { seconds: 30 } },
          ],
          edges: [{ source: "start", target: "wait" }],
        },
      });
      const { runPipeline: going } = await server.gql(RunPipelineDocument, { id: long.id });
      const refused = await server.raw(RerunRunDocument, { id: going.id });
      expect(refused.errors?.map((e) => [e.message, e.extensions?.code])).toEqual([
        [`run "${going.id}" is RUNNING; it can be re-run once it has ended`, "RUN_STILL_ACTIVE"],
      ]);
      await server.gql(CancelRunDocument, { id: going.id });
    } finally {
      await server.close();
      await cleanup();
    }
  });
});
