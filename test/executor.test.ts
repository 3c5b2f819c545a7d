import { expect, it } from "vitest";
import type { PipelineInput } from "../src/domain/definition.ts";
import type { Engine } from "../src/engine/engine.ts";
import { sleep } from "../src/engine/errors.ts";
import { availableProviders, describeProviders } from "./helpers/databases.ts";
import {
  collectEvents,
  createPipeline,
  engineEach,
  getRun,
  runToEnd,
  steps,
} from "./helpers/engine.ts";
import { waitFor } from "./helpers/wait.ts";

const providers = await availableProviders();

let engine: Engine;
const newEngine = engineEach();

const trigger = { id: "start", type: "TRIGGER" } as const;

describeProviders(providers)("executor on %s", (provider) => {
  it("runs a linear pipeline, passing outputs downstream as inputs", async () => {
    engine = await newEngine(provider);
    const id = await createPipeline(engine, {
      name: "linear",
      nodes: [
        trigger,
        { id: "pass", type: "PARALLEL" },
        {
          id: "say",
          type: "ACTION",
          config: { action: "log", message: "n={{inputs.pass.n}} trigger={{trigger.n}}" },
        },
      ],
      edges: [
        { source: "start", target: "pass" },
        { source: "pass", target: "say" },
      ],
    });
    const { started, events, run } = await runToEnd(engine, id, { n: 7 });
    expect(started.status).toBe("RUNNING");
    expect(steps(events)).toEqual([
      ["RUN_STARTED", null, null],
      ["NODE_STARTED", "start", 1],
      ["NODE_COMPLETED", "start", 1],
      ["NODE_STARTED", "pass", 1],
      ["NODE_COMPLETED", "pass", 1],
      ["NODE_STARTED", "say", 1],
      ["NODE_COMPLETED", "say", 1],
      ["RUN_COMPLETED", null, null],
    ]);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(events[6]!.data).toEqual({ output: { message: "n=7 trigger=7", level: "info" } });
    expect(run.status).toBe("COMPLETED");
    expect(run.error).toBeNull();
    expect(run.completedAt).not.toBeNull();
    const nodeRuns = (await engine.store.getNodeRuns([run.id])).get(run.id)!;
    expect(
      Object.fromEntries(nodeRuns.map((n) => [n.nodeId, [n.status, n.attempts, n.output]])),
    ).toEqual({
      start: ["COMPLETED", 1, { n: 7 }],
      pass: ["COMPLETED", 1, { n: 7 }],
      say: ["COMPLETED", 1, { message: "n=7 trigger=7", level: "info" }],
    });
    const [pipeline] = await engine.store.getPipelines([id]);
    expect([pipeline!.runCount, pipeline!.successCount, pipeline!.errorCount]).toEqual([1, 1, 0]);
  });

  it("runs ready nodes at once and joins them", async () => {
    engine = await newEngine(provider);
    const id = await createPipeline(engine, {
      name: "fan",
      nodes: [
        trigger,
        { id: "a", type: "DELAY", config: { seconds: 0.05 } },
        { id: "b", type: "DELAY", config: { seconds: 0.05 } },
        { id: "c", type: "DELAY", config: { seconds: 0.05 } },
        { id: "join", type: "PARALLEL" },
      ],
      edges: [
        { source: "start", target: "a" },
        { source: "start", target: "b" },
        { source: "start", target: "c" },
        { source: "a", target: "join" },
        { source: "b", target: "join" },
        { source: "c", target: "join" },
      ],
    });
    const { events, run } = await runToEnd(engine, id, { x: 1 });
    const kinds = steps(events).map(([type, node]) => `${type}:${node}`);
    // All three delays start before any of them completes.
    const firstCompleted = kinds.findIndex(
      (k) => k.startsWith("NODE_COMPLETED:") && !k.endsWith(":start"),
    );
    expect(kinds.slice(3, 6).sort()).toEqual([
      "NODE_STARTED:a",
      "NODE_STARTED:b",
      "NODE_STARTED:c",
    ]);
    expect(firstCompleted).toBe(6);
    expect(kinds.slice(-3)).toEqual([
      "NODE_STARTED:join",
      "NODE_COMPLETED:join",
      "RUN_COMPLETED:null",
    ]);
    const nodeRuns = (await engine.store.getNodeRuns([run.id])).get(run.id)!;
    expect(nodeRuns.find((n) => n.nodeId === "join")!.output).toEqual({
      a: { x: 1 },
      b: { x: 1 },
      c: { x: 1 },
    });
  });

  it("follows the branch a condition takes and skips the other, transitively", async () => {
    engine = await newEngine(provider);
    const input: PipelineInput = {
      name: "branches",
      nodes: [
        trigger,
        { id: "check", type: "CONDITION", config: { expression: "trigger.n > 10" } },
        { id: "big", type: "PARALLEL" },
        { id: "small", type: "PARALLEL" },
        { id: "smallNext", type: "PARALLEL" },
        { id: "end", type: "PARALLEL" },
      ],
      edges: [
        { source: "start", target: "check" },
        { source: "check", target: "big", branch: "TRUE" },
        { source: "check", target: "small", branch: "FALSE" },
        { source: "small", target: "smallNext" },
        { source: "big", target: "end" },
        { source: "smallNext", target: "end" },
      ],
    };
    const id = await createPipeline(engine, input);
    const high = await runToEnd(engine, id, { n: 42 });
    expect(steps(high.events)).toEqual([
      ["RUN_STARTED", null, null],
      ["NODE_STARTED", "start", 1],
      ["NODE_COMPLETED", "start", 1],
      ["NODE_STARTED", "check", 1],
      ["NODE_COMPLETED", "check", 1],
      ["NODE_SKIPPED", "small", null],
      ["NODE_SKIPPED", "smallNext", null],
      ["NODE_STARTED", "big", 1],
      ["NODE_COMPLETED", "big", 1],
      ["NODE_STARTED", "end", 1],
      ["NODE_COMPLETED", "end", 1],
      ["RUN_COMPLETED", null, null],
    ]);
    expect(high.events[4]!.data).toEqual({ output: { result: true } });
    // "end" has one live edge (from big) and one dead one: it runs with only the live input,
    // which PARALLEL passes through (big passed the condition's output through).
    expect(high.events[10]!.data).toEqual({ output: { result: true } });

    const low = await runToEnd(engine, id, { n: 1 });
    expect(steps(low.events).filter(([type]) => type === "NODE_SKIPPED")).toEqual([
      ["NODE_SKIPPED", "big", null],
    ]);
    expect(low.run.status).toBe("COMPLETED");
  });

  it("counts a condition whose expression fails at run time as false, and goes on", async () => {
    engine = await newEngine(provider);
    const id = await createPipeline(engine, {
      name: "bad-expression",
      nodes: [
        trigger,
        { id: "check", type: "CONDITION", config: { expression: "trigger.missing == 1" } },
        { id: "yes", type: "PARALLEL" },
        { id: "no", type: "PARALLEL" },
      ],
      edges: [
        { source: "start", target: "check" },
        { source: "check", target: "yes" },
        { source: "check", target: "no", branch: "FALSE" },
      ],
    });
    const { events, run } = await runToEnd(engine, id, {});
    expect(steps(events)).toEqual([
      ["RUN_STARTED", null, null],
      ["NODE_STARTED", "start", 1],
      ["NODE_COMPLETED", "start", 1],
      ["NODE_STARTED", "check", 1],
      ["NODE_FAILED", "check", 1],
      ["NODE_SKIPPED", "yes", null],
      ["NODE_STARTED", "no", 1],
      ["NODE_COMPLETED", "no", 1],
      ["RUN_COMPLETED", null, null],
    ]);
    expect(events[4]!.data).toMatchObject({ error: "No such key: missing", continueOnFail: false });
    expect(run.status).toBe("COMPLETED");
  });

  it("keeps the seed's condition forms: true, false and input.result", async () => {
    engine = await newEngine(provider);
    const id = await createPipeline(engine, {
      name: "seed-forms",
      nodes: [
        trigger,
        { id: "agent", type: "AGENT", config: { agentId: "nobody", task: "say {{trigger.word}}" } },
        { id: "truthy", type: "CONDITION", config: { expression: "input.result" } },
        { id: "never", type: "CONDITION", config: { expression: "false" } },
        { id: "after", type: "PARALLEL" },
        { id: "unreached", type: "PARALLEL" },
      ],
      edges: [
        { source: "start", target: "agent" },
        { source: "agent", target: "truthy" },
        { source: "truthy", target: "never" },
        { source: "never", target: "unreached" },
        { source: "never", target: "after", branch: "FALSE" },
      ],
    });
    const { events, run } = await runToEnd(engine, id, { word: "hi" });
    expect(run.status).toBe("COMPLETED");
    const completed = Object.fromEntries(
      events
        .filter((e) => e.type === "NODE_COMPLETED")
        .map((e) => [e.nodeId, (e.data as { output: unknown }).output]),
    );
    expect(completed.agent).toEqual({
      result: 'Simulated response of agent "nobody" to: say hi',
      agentId: "nobody",
      simulated: true,
    });
    expect(completed.truthy).toEqual({ result: true });
    expect(completed.never).toEqual({ result: false });
    expect(steps(events).filter(([t]) => t === "NODE_SKIPPED")).toEqual([
      ["NODE_SKIPPED", "unreached", null],
    ]);
  });

  it("gives an invalid pipeline a FAILED run whose error lists the problems", async () => {
    engine = await newEngine(provider);
    const id = await createPipeline(engine, {
      name: "invalid",
      nodes: [{ id: "a", type: "PARALLEL" }],
    });
    const { started, events, run } = await runToEnd(engine, id);
    expect(started.status).toBe("FAILED");
    expect(run.error).toBe(
      "Validation failed: [MISSING_TRIGGER] the pipeline needs at least one TRIGGER node",
    );
    expect(steps(events)).toEqual([
      ["RUN_STARTED", null, null],
      ["RUN_FAILED", null, null],
    ]);
    const [pipeline] = await engine.store.getPipelines([id]);
    expect([pipeline!.runCount, pipeline!.successCount, pipeline!.errorCount]).toEqual([1, 0, 1]);
  });

  it("cancels a long run: aborts the delay, ends CANCELLED once, and never changes again", async () => {
    engine = await newEngine(provider);
    const id = await createPipeline(engine, {
      name: "long",
      nodes: [
        trigger,
        { id: "wait", type: "DELAY", config: { seconds: 60 } },
        { id: "after", type: "PARALLEL" },
      ],
      edges: [
        { source: "start", target: "wait" },
        { source: "wait", target: "after" },
      ],
    });
    const started = await engine.runPipeline(id, null);
    const collecting = collectEvents(engine, started.id);
    await waitFor("the delay to be under way", async () =>
      (await engine.store.getNodeRuns([started.id]))
        .get(started.id)
        ?.some((n) => n.nodeId === "wait" && n.status === "RUNNING"),
    );
    const cancelled = await engine.cancelRun(started.id);
    expect(cancelled.status).toBe("CANCELLED");
    expect(cancelled.error).toBe("cancelled by request");
    const events = await collecting;
    expect(steps(events)).toEqual([
      ["RUN_STARTED", null, null],
      ["NODE_STARTED", "start", 1],
      ["NODE_COMPLETED", "start", 1],
      ["NODE_STARTED", "wait", 1],
      ["RUN_CANCELLED", null, null],
    ]);
    const nodeRuns = (await engine.store.getNodeRuns([started.id])).get(started.id)!;
    expect(nodeRuns.find((n) => n.nodeId === "wait")!.status).toBe("CANCELLED");
    const again = await engine.cancelRun(started.id);
    expect(again).toEqual(cancelled);
    const [pipeline] = await engine.store.getPipelines([id]);
    expect([pipeline!.runCount, pipeline!.successCount, pipeline!.errorCount]).toEqual([1, 0, 0]);
  });

  it("gives back the slot of an action that never settles when its run is cancelled", async () => {
    // One slot: the second run can only start its action once the first has given it back.
    engine = await newEngine(provider, { maxConcurrentNodes: 1 });
    let calls = 0;
    engine.actions.register({
      name: "stuck",
      // Ignores its signal and never settles.
      run: () => {
        calls++;
        return new Promise(() => {});
      },
    });
    const stuck = await createPipeline(engine, {
      name: "stuck",
      nodes: [trigger, { id: "call", type: "ACTION", config: { action: "stuck" } }],
      edges: [{ source: "start", target: "call" }],
    });
    const quick = await createPipeline(engine, {
      name: "quick",
      nodes: [trigger, { id: "say", type: "ACTION", config: { action: "log", message: "hi" } }],
      edges: [{ source: "start", target: "say" }],
    });
    const started = await engine.runPipeline(stuck, null);
    const collecting = collectEvents(engine, started.id);
    await waitFor("the stuck action to be called", () => calls === 1);
    await engine.cancelRun(started.id);
    expect(steps(await collecting)).toEqual([
      ["RUN_STARTED", null, null],
      ["NODE_STARTED", "start", 1],
      ["NODE_COMPLETED", "start", 1],
      ["NODE_STARTED", "call", 1],
      ["RUN_CANCELLED", null, null],
    ]);
    const { run, events } = await runToEnd(engine, quick);
    expect(run.status).toBe("COMPLETED");
    expect(steps(events).at(-2)).toEqual(["NODE_COMPLETED", "say", 1]);
    expect(calls).toBe(1);
  });

  it("ends a run that outlives timeoutSeconds TIMED_OUT", async () => {
    engine = await newEngine(provider);
    const id = await createPipeline(engine, {
      name: "slow",
      timeoutSeconds: 1,
      nodes: [
        trigger,
        { id: "a", type: "DELAY", config: { seconds: 0.7 } },
        { id: "b", type: "DELAY", config: { seconds: 0.7 } },
      ],
      edges: [
        { source: "start", target: "a" },
        { source: "a", target: "b" },
      ],
    });
    const { events, run } = await runToEnd(engine, id);
    expect(steps(events)).toEqual([
      ["RUN_STARTED", null, null],
      ["NODE_STARTED", "start", 1],
      ["NODE_COMPLETED", "start", 1],
      ["NODE_STARTED", "a", 1],
      ["NODE_COMPLETED", "a", 1],
      ["NODE_STARTED", "b", 1],
      ["RUN_TIMED_OUT", null, null],
    ]);
    expect(events.at(-1)!.data).toEqual({ timeoutSeconds: 1 });
    expect(run.status).toBe("TIMED_OUT");
    expect(run.error).toBe("run timed out after 1 s");
    const [pipeline] = await engine.store.getPipelines([id]);
    expect(pipeline!.errorCount).toBe(1);
  });

  /** An agent that works for `ms` (honouring its signal): a node that takes a slot. */
  const slowAgent =
    (ms: number) =>
    async ({ signal }: { signal: AbortSignal }) => {
      await sleep(ms, signal);
      return { result: "done" };
    };
  const work = (id: string) => ({
    id,
    type: "AGENT" as const,
    config: { agentId: "slow", task: "work" },
  });

  it("runs one node at a time when the pipeline sets maxConcurrency 1", async () => {
    engine = await newEngine(provider);
    engine.agents.register("slow", slowAgent(20));
    const id = await createPipeline(engine, {
      name: "serial",
      maxConcurrency: 1,
      nodes: [trigger, work("a"), work("b"), work("c")],
      edges: ["a", "b", "c"].map((target) => ({ source: "start", target })),
    });
    const { events } = await runToEnd(engine, id);
    const delays = steps(events).filter(([, node]) => node !== null && node !== "start");
    expect(delays.map(([type, node]) => `${type}:${node}`)).toEqual([
      "NODE_STARTED:a",
      "NODE_COMPLETED:a",
      "NODE_STARTED:b",
      "NODE_COMPLETED:b",
      "NODE_STARTED:c",
      "NODE_COMPLETED:c",
    ]);
  });

  it("never lets more node executions run at once than MAX_CONCURRENT_NODES", async () => {
    engine = await newEngine(provider, { maxConcurrentNodes: 2 });
    engine.agents.register("slow", slowAgent(20));
    const id = await createPipeline(engine, {
      name: "wide",
      nodes: [trigger, ...["a", "b", "c", "d", "e"].map(work)],
      edges: ["a", "b", "c", "d", "e"].map((target) => ({ source: "start", target })),
    });
    const { events, run } = await runToEnd(engine, id);
    let running = 0;
    let most = 0;
    for (const event of events) {
      if (event.nodeId === "start") continue;
      if (event.type === "NODE_STARTED") most = Math.max(most, ++running);
      if (event.type === "NODE_COMPLETED") running--;
    }
    expect(most).toBe(2);
    expect(run.status).toBe("COMPLETED");
  });

  it("lets sleeping DELAY nodes take no node slot", async () => {
    engine = await newEngine(provider, { maxConcurrentNodes: 1 });
    engine.agents.register("slow", slowAgent(10));
    const id = await createPipeline(engine, {
      name: "sleepers",
      maxConcurrency: 1,
      nodes: [
        trigger,
        { id: "nap1", type: "DELAY", config: { seconds: 0.3 } },
        { id: "nap2", type: "DELAY", config: { seconds: 0.3 } },
        work("busy"),
      ],
      edges: ["nap1", "nap2", "busy"].map((target) => ({ source: "start", target })),
    });
    const { events } = await runToEnd(engine, id);
    const order = steps(events)
      .filter(([type, node]) => type === "NODE_COMPLETED" && node !== "start")
      .map(([, node]) => node);
    // Both delays and the agent are under way at once; the agent is done long before them.
    expect(order[0]).toBe("busy");
    expect(order.slice(1).sort()).toEqual(["nap1", "nap2"]);
  });

  it("ends every run with exactly one terminal event, even when cancel races the last node", async () => {
    engine = await newEngine(provider);
    const id = await createPipeline(engine, {
      name: "race",
      nodes: [trigger, { id: "a", type: "PARALLEL" }],
      edges: [{ source: "start", target: "a" }],
    });
    for (let i = 0; i < 25; i++) {
      const started = await engine.runPipeline(id, null);
      const cancelled = await engine.cancelRun(started.id);
      const events = await collectEvents(engine, started.id);
      const terminal = events.filter((e) =>
        ["RUN_COMPLETED", "RUN_FAILED", "RUN_CANCELLED", "RUN_TIMED_OUT"].includes(e.type),
      );
      expect(terminal).toHaveLength(1);
      expect(events.at(-1)).toBe(terminal[0]);
      const run = await getRun(engine.store, started.id);
      expect(run.status).toBe(cancelled.status);
      expect(terminal[0]!.type).toBe(`RUN_${run.status}`);
      expect(events.map((e) => e.seq)).toEqual(events.map((_, index) => index + 1));
    }
  });
});
