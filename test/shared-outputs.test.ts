/**
 * Outputs stored once: a join's output is stored as references to the outputs it holds, reads
 * give the seed's values back (sharing them), CEL and templates see through references, a run
 * taken over after a crash reads them right, the API cuts huge expansions, and the limits on
 * one output and on a run's stored bytes fail the node with their codes.
 */
import { describe, expect, it } from "vitest";
import { normalizeDefinition, type PipelineInput } from "../src/domain/definition.ts";
import type { JsonValue } from "../src/domain/json.ts";
import type { NodeRunRecord } from "../src/domain/records.ts";
import type { OutputRef } from "../src/domain/shared-output.ts";
import type { Engine } from "../src/engine/engine.ts";
import { viewOutput } from "../src/schema/output-view.ts";
import {
  CreatePipelineDocument,
  RunEventsDocument,
  RunOutputsDocument,
  RunPipelineDocument,
} from "./generated/graphql.ts";
import { availableProviders, describeProviders, freshStore } from "./helpers/databases.ts";
import {
  createPipeline,
  createTestEngine,
  engineEach,
  getRun,
  runToEnd,
} from "./helpers/engine.ts";
import { startTestServer, subscribeAll } from "./helpers/server.ts";

const providers = await availableProviders();

/** mulberry32: a small deterministic PRNG. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A TRIGGER, then `layers` layers of `width` PARALLEL nodes, each joining 2 of the layer before. */
function joins(layers: number, width: number, seed = 42) {
  const next = random(seed);
  const nodes: PipelineInput["nodes"][number][] = [{ id: "t", type: "TRIGGER" }];
  const edges: { source: string; target: string }[] = [];
  const inputs = new Map<string, string[]>();
  let previous = ["t"];
  for (let layer = 1; layer <= layers; layer++) {
    const current: string[] = [];
    for (let i = 0; i < width; i++) {
      const id = `n${layer}_${i}`;
      const picks = new Set<string>();
      while (picks.size < Math.min(2, previous.length))
        picks.add(previous[Math.floor(next() * previous.length)]!);
      nodes.push({ id, type: "PARALLEL" });
      for (const source of picks) edges.push({ source, target: id });
      // Incoming edges in definition order: the order a join's map lists its inputs in.
      inputs.set(
        id,
        [...picks].sort(
          (a, b) =>
            edges.findIndex((e) => e.source === a && e.target === id) -
            edges.findIndex((e) => e.source === b && e.target === id),
        ),
      );
      current.push(id);
    }
    previous = current;
  }
  return { definition: { name: "joins", nodes, edges }, inputs, last: previous };
}

/**
 * The seed's value of each node, built independently of the engine: a node with one input
 * passes it on, a join maps each input to its value. Shared, as the engine's are.
 */
function expectedValues(trigger: JsonValue, inputs: ReadonlyMap<string, string[]>) {
  const values = new Map<string, JsonValue>([["t", trigger]]);
  for (const [id, from] of inputs) {
    values.set(
      id,
      from.length === 1
        ? values.get(from[0]!)!
        : Object.fromEntries(from.map((source) => [source, values.get(source)!])),
    );
  }
  return values;
}

/** JSON bytes of a value, computed from the structure (its JSON would not fit in memory). */
function expandedBytes(value: JsonValue, memo = new Map<object, number>()): number {
  if (typeof value !== "object" || value === null) return Buffer.byteLength(JSON.stringify(value));
  const known = memo.get(value);
  if (known !== undefined) return known;
  const entries = Object.entries(value);
  let total = 2 + Math.max(0, entries.length - 1);
  for (const [key, child] of entries)
    total += Buffer.byteLength(JSON.stringify(key)) + 1 + expandedBytes(child, memo);
  memo.set(value, total);
  return total;
}

const byNode = (records: readonly NodeRunRecord[]) => new Map(records.map((r) => [r.nodeId, r]));

let engine: Engine;
const newEngine = engineEach();

describeProviders(providers)("shared outputs on %s", (provider) => {
  it("stores a 30-layer fan-in-2 DAG's outputs as references and reads back the seed's values", async () => {
    engine = await newEngine(provider, { limits: { maxNodes: 1000, maxEdges: 5000 } });
    const { definition, inputs, last } = joins(30, 8);
    const id = await createPipeline(engine, definition);
    const trigger = { item: 42, text: "ü".repeat(10) };
    const { run } = await runToEnd(engine, id, trigger);
    expect([run.status, run.error]).toEqual(["COMPLETED", null]);

    const expected = expectedValues(trigger, inputs);
    const records = byNode((await engine.store.getNodeRuns([run.id])).get(run.id)!);
    expect(records.size).toBe(241);
    let stored = 0;
    for (const [nodeId, from] of inputs) {
      const record = records.get(nodeId)!;
      stored += record.outputStoredBytes;
      // A join stores `{"a":null,"b":null}` and two references; a pass-through one reference.
      expect([nodeId, record.outputRefs]).toEqual([
        nodeId,
        from.length === 1
          ? [{ path: [], nodeId: from[0] }]
          : from.map((source) => ({ path: [source], nodeId: source })),
      ]);
      expect(record.outputStoredBytes).toBeLessThanOrEqual(from.length === 1 ? 4 : 40);
      expect([nodeId, record.outputBytes]).toEqual([nodeId, expandedBytes(expected.get(nodeId)!)]);
    }
    expect(stored).toBeLessThan(241 * 40);
    // The last layer expands to hundreds of megabytes of JSON; it is read as shared values.
    const top = records.get(last[0]!)!;
    expect(top.outputBytes).toBeGreaterThan(100_000_000);
    const [a, b] = inputs.get(last[0]!)!;
    const value = top.output as Record<string, JsonValue>;
    expect(value[a!]).toBe(records.get(a!)!.output);
    expect(value[b!]).toBe(records.get(b!)!.output);
    // Small ones compare whole with the seed's values.
    for (const nodeId of ["n1_0", "n2_3", "n5_1"])
      expect([nodeId, records.get(nodeId)!.output]).toEqual([nodeId, expected.get(nodeId)]);
  });

  it("lets CEL conditions and templates read through references", async () => {
    engine = await newEngine(provider);
    const id = await createPipeline(engine, {
      name: "read-through",
      nodes: [
        { id: "t", type: "TRIGGER" },
        { id: "a", type: "PARALLEL" },
        { id: "b", type: "PARALLEL" },
        { id: "j1", type: "PARALLEL" },
        { id: "c", type: "PARALLEL" },
        { id: "j2", type: "PARALLEL" },
        {
          id: "check",
          type: "CONDITION",
          config: { expression: 'inputs.j2.j1.a.item == 42 && inputs.j2.c.b.name == "x"' },
        },
        {
          id: "say",
          type: "ACTION",
          config: { action: "log", message: "{{inputs.j2.j1.b.item}} {{inputs.j2.c}}" },
        },
      ],
      edges: [
        { source: "t", target: "a" },
        { source: "t", target: "b" },
        { source: "a", target: "j1" },
        { source: "b", target: "j1" },
        { source: "j1", target: "c" },
        { source: "j1", target: "j2" },
        { source: "c", target: "j2" },
        { source: "j2", target: "check" },
        { source: "check", target: "say", branch: "TRUE" },
      ],
    });
    const { run, events } = await runToEnd(engine, id, { item: 42, name: "x" });
    expect(run.status).toBe("COMPLETED");
    const records = byNode((await engine.store.getNodeRuns([run.id])).get(run.id)!);
    expect(records.get("check")!.output).toEqual({ result: true });
    const inner = '{"a":{"item":42,"name":"x"},"b":{"item":42,"name":"x"}}';
    expect(records.get("say")!.output).toEqual({ message: `42 ${inner}`, level: "info" });
    expect(records.get("j2")!.outputRefs).toEqual([
      { path: ["j1"], nodeId: "j1" },
      { path: ["c"], nodeId: "c" },
    ]);
    // Small joins travel whole in their events, as the seed's.
    const j2Done = events.find((e) => e.type === "NODE_COMPLETED" && e.nodeId === "j2")!;
    expect(j2Done.data).toEqual({ output: { j1: JSON.parse(inner), c: JSON.parse(inner) } });
  });

  it("fails a node whose own output is over the limit with OUTPUT_TOO_LARGE", async () => {
    engine = await newEngine(provider, { outputLimits: { maxOutputBytes: 2000 } });
    engine.actions.register({ name: "big", run: async () => ({ text: "x".repeat(3000) }) });
    const id = await createPipeline(engine, {
      name: "big",
      nodes: [
        { id: "t", type: "TRIGGER" },
        { id: "big", type: "ACTION", config: { action: "big" } },
      ],
      edges: [{ source: "t", target: "big" }],
    });
    const { run, events } = await runToEnd(engine, id);
    expect(run.status).toBe("FAILED");
    expect(run.error).toBe(
      'node "big" failed after 1 attempt: output of node "big" is 3011 bytes of JSON; the limit is 2000',
    );
    const failed = events.find((e) => e.type === "NODE_FAILED")!;
    expect([failed.nodeId, failed.data?.code, failed.data?.retryable]).toEqual([
      "big",
      "OUTPUT_TOO_LARGE",
      false,
    ]);
    const records = byNode((await engine.store.getNodeRuns([run.id])).get(run.id)!);
    expect([records.get("big")!.status, records.get("big")!.output]).toEqual(["FAILED", undefined]);
  });

  it("fails the node that would take the run past its stored-output limit with RUN_OUTPUT_LIMIT", async () => {
    engine = await newEngine(provider, { outputLimits: { maxRunOutputBytes: 20_000 } });
    engine.actions.register({ name: "chunk", run: async () => ({ text: "y".repeat(6000) }) });
    const nodes: PipelineInput["nodes"][number][] = [{ id: "t", type: "TRIGGER" }];
    const edges = [];
    let previous = "t";
    for (let i = 1; i <= 4; i++) {
      nodes.push({ id: `c${i}`, type: "ACTION", config: { action: "chunk" } });
      edges.push({ source: previous, target: `c${i}` });
      previous = `c${i}`;
    }
    const id = await createPipeline(engine, { name: "chunks", nodes, edges });
    const { run, events } = await runToEnd(engine, id);
    expect(run.status).toBe("FAILED");
    // Each output is 6011 bytes, stored once and carried by its event once, and the trigger's
    // {} 2 + 2: c2 would reach 24,048.
    expect(run.error).toBe(
      `node "c2" failed after 1 attempt: output of node "c2" would take the run's stored outputs to 24048 bytes; the limit is 20000 (MAX_RUN_OUTPUT_BYTES)`,
    );
    expect(events.find((e) => e.type === "NODE_FAILED")?.data?.code).toBe("RUN_OUTPUT_LIMIT");
  });
});

describe("shared outputs through the API", () => {
  it("shows small outputs whole and cuts huge expansions to maxBytes with markers", async () => {
    const { store, cleanup } = await freshStore("sqlite");
    const server = await startTestServer(store);
    try {
      const { definition, inputs, last } = joins(30, 8);
      const { createPipeline: created } = await server.gql(CreatePipelineDocument, {
        input: definition,
      });
      const trigger = { item: 42 };
      const { runPipeline } = await server.gql(RunPipelineDocument, {
        id: created.id,
        triggerData: trigger,
      });
      await subscribeAll(server.wsUrl, RunEventsDocument, { runId: runPipeline.id }).done;
      const { run } = await server.gql(RunOutputsDocument, { id: runPipeline.id });
      expect(run?.status).toBe("COMPLETED");
      const views = new Map(run!.nodeRuns.map((n) => [n.nodeId, n]));
      const expected = expectedValues(trigger, inputs);
      const small = views.get("n3_2")!;
      expect([small.output, small.outputTruncated]).toEqual([expected.get("n3_2"), false]);
      expect(small.outputBytes).toBe(Buffer.byteLength(JSON.stringify(expected.get("n3_2"))));
      expect(small.outputRefs).toEqual(
        inputs.get("n3_2")!.map((source) => ({ path: [source], nodeId: source })),
      );
      // 64 KiB by default, 1 MiB asked for.
      const cut = views.get(last[0]!)!;
      expect(cut.outputTruncated).toBe(true);
      expect(Buffer.byteLength(JSON.stringify(cut.output))).toBeLessThanOrEqual(64 * 1024);
      expect(cut.outputBytes).toBe(expandedBytes(expected.get(last[0]!)!));
      const shown = JSON.stringify(cut.output);
      expect(Buffer.byteLength(shown)).toBeGreaterThan(32 * 1024);
      expect(shown).toContain('{"$truncated":{"bytes":');
      // Its shape from the top is the seed's: the keys of the join, then of what it holds.
      expect(Object.keys(cut.output as object)).toEqual(inputs.get(last[0]!));
      const view = viewOutput(expected.get(last[0]!)!, 1024 * 1024);
      expect(view.truncated).toBe(true);
      const bytes = Buffer.byteLength(JSON.stringify(view.value));
      expect(bytes).toBeLessThanOrEqual(1024 * 1024);
      expect(bytes).toBeGreaterThan(900 * 1024);
      const refused = await server.raw(RunOutputsDocument, { id: runPipeline.id, maxBytes: 0 });
      expect(refused.errors?.map((e) => [e.message, e.extensions?.code])).toEqual([
        ["maxBytes must be 1 to 16777216, got 0", "BAD_USER_INPUT"],
        ["maxBytes must be 1 to 16777216, got 0", "BAD_USER_INPUT"],
      ]);
    } finally {
      await server.close();
      await cleanup();
    }
  });
});

describeProviders(providers)("shared outputs after a crash on %s", (provider) => {
  it("takes over a run whose stored outputs are references and feeds the decoded values on", async () => {
    const { store, cleanup } = await freshStore(provider);
    try {
      const definition = normalizeDefinition({
        name: "resume-shared",
        nodes: [
          { id: "t", type: "TRIGGER" },
          { id: "a", type: "PARALLEL" },
          { id: "b", type: "PARALLEL" },
          { id: "j", type: "PARALLEL" },
          { id: "j2", type: "PARALLEL" },
          {
            id: "say",
            type: "ACTION",
            config: { action: "log", message: "{{inputs.j2.j.a.k}}/{{inputs.j2.a.k}}" },
          },
        ],
        edges: [
          { source: "t", target: "a" },
          { source: "t", target: "b" },
          { source: "a", target: "j" },
          { source: "b", target: "j" },
          { source: "j", target: "j2" },
          { source: "a", target: "j2" },
          { source: "j2", target: "say" },
        ],
      });
      const pipeline = await store.createPipeline(definition);
      // Left behind by an instance that died after j: its lease has lapsed.
      const run = await store.createRun(
        {
          pipelineId: pipeline.id,
          pipelineVersion: 1,
          status: "QUEUED",
          triggerData: { k: "v" },
          error: null,
          definition,
          startedAt: null,
          completedAt: null,
          lease: { ownerId: "dead", now: new Date(0), leaseUntil: new Date(Date.now() - 1000) },
        },
        [],
      );
      const at = new Date(Date.now() - 5000);
      const done = (nodeId: string, json: string, refs: OutputRef[], expandedBytes: number) => ({
        runId: run.id,
        nodeId,
        status: "COMPLETED" as const,
        attempts: 1,
        error: null,
        startedAt: at,
        completedAt: at,
        reusedFrom: null,
        output: { json, refs, expandedBytes },
      });
      const ids = ["t", "a", "b", "j"];
      await store.commit({
        events: [
          {
            runId: run.id,
            seq: 1,
            type: "RUN_STARTED",
            nodeId: null,
            attempt: null,
            at,
            data: null,
          },
          ...ids.flatMap((nodeId, i) =>
            (["NODE_STARTED", "NODE_COMPLETED"] as const).map((type, k) => ({
              runId: run.id,
              seq: 2 + i * 2 + k,
              type,
              nodeId,
              attempt: 1,
              at,
              data: null,
            })),
          ),
        ],
        nodeRuns: [
          done("t", '{"k":"v"}', [], 9),
          done("a", "null", [{ path: [], nodeId: "t" }], 9),
          done("b", "null", [{ path: [], nodeId: "t" }], 9),
          done(
            "j",
            '{"a":null,"b":null}',
            [
              { path: ["a"], nodeId: "a" },
              { path: ["b"], nodeId: "b" },
            ],
            27,
          ),
        ],
        runs: [
          {
            id: run.id,
            status: "RUNNING",
            startedAt: at,
            deadlineAt: new Date(Date.now() + 60_000),
          },
        ],
      });
      const taker = createTestEngine({ store, instanceId: "alive" });
      try {
        const events = [];
        for await (const event of await taker.events(run.id, 9)) events.push(event);
        expect(events.map((e) => [e.type, e.nodeId])).toEqual([
          ["NODE_STARTED", "j2"],
          ["NODE_COMPLETED", "j2"],
          ["NODE_STARTED", "say"],
          ["NODE_COMPLETED", "say"],
          ["RUN_COMPLETED", null],
        ]);
      } finally {
        await taker.stop(0);
      }
      const records = byNode((await store.getNodeRuns([run.id])).get(run.id)!);
      expect(records.get("say")!.output).toEqual({ message: "v/v", level: "info" });
      // The new join refers to the decoded outputs it holds, as in an uninterrupted run.
      expect(records.get("j2")!.outputRefs).toEqual([
        { path: ["j"], nodeId: "j" },
        { path: ["a"], nodeId: "a" },
      ]);
      expect(records.get("j2")!.output).toEqual({
        j: { a: { k: "v" }, b: { k: "v" } },
        a: { k: "v" },
      });
      expect((await getRun(store, run.id)).status).toBe("COMPLETED");
    } finally {
      await cleanup();
    }
  });
});
