/**
 * compilePipeline on valid pipelines (node order, edge maps, conditions, the edges of every
 * range) and the graph helpers it is built on, topologicalOrder and findCycles.
 */
import { describe, expect, it } from "vitest";
import {
  type EdgeDefinition,
  normalizeDefinition,
  type PipelineInput,
} from "../src/domain/definition.ts";
import { compilePipeline } from "../src/engine/dag.ts";
import { findCycles, topologicalOrder } from "../src/engine/graph.ts";
import {
  chain,
  compiled,
  condition,
  delay,
  edge,
  errorsOf,
  log,
  node,
  pass,
  pipeline,
  registry,
  trigger,
} from "./helpers/definitions.ts";

/** The example of DESIGN.md, section "Pipeline definition". */
const designExample: PipelineInput = {
  name: "triage",
  maxRetriesPerNode: 3,
  timeoutSeconds: 3600,
  nodes: [
    { id: "start", type: "TRIGGER", config: {} },
    {
      id: "fetch",
      type: "ACTION",
      config: { action: "http", url: "http://127.0.0.1:9000/x" },
      retry: { maxAttempts: 4, initialDelayMs: 100, maxDelayMs: 2000 },
      timeoutMs: 5000,
    },
    { id: "ok", type: "CONDITION", config: { expression: "inputs.fetch.status == 200" } },
    {
      id: "write",
      type: "AGENT",
      config: { agentId: "writer", task: "Summarise {{inputs.fetch.body}}" },
    },
    { id: "alert", type: "ACTION", config: { action: "log", message: "fetch failed" } },
  ],
  edges: [
    { source: "start", target: "fetch" },
    { source: "fetch", target: "ok" },
    { source: "ok", target: "write", branch: "TRUE" },
    { source: "ok", target: "alert", branch: "FALSE" },
  ],
};

// ---------------------------------------------------------------------------------------------

describe("compilePipeline on valid pipelines", () => {
  it("compiles the DESIGN.md example with its order, edge maps and condition", () => {
    const definition = normalizeDefinition(designExample);
    const outcome = compilePipeline(definition, { actions: registry() });
    expect(outcome.valid).toBe(true);
    expect(outcome.errors).toEqual([]);
    if (!outcome.valid) return;
    const p = outcome.pipeline;
    expect(p.definition).toBe(definition);
    expect([...p.nodes.keys()]).toEqual(["start", "fetch", "ok", "write", "alert"]);
    expect(p.nodes.get("fetch")).toBe(definition.nodes[1]);
    expect(p.order).toEqual(["start", "fetch", "ok", "write", "alert"]);
    expect(Object.fromEntries(p.outgoing)).toStrictEqual({
      start: [{ source: "start", target: "fetch" }],
      fetch: [{ source: "fetch", target: "ok" }],
      ok: [
        { source: "ok", target: "write", branch: "TRUE" },
        { source: "ok", target: "alert", branch: "FALSE" },
      ],
      write: [],
      alert: [],
    });
    expect(Object.fromEntries(p.incoming)).toStrictEqual({
      start: [],
      fetch: [{ source: "start", target: "fetch" }],
      ok: [{ source: "fetch", target: "ok" }],
      write: [{ source: "ok", target: "write", branch: "TRUE" }],
      alert: [{ source: "ok", target: "alert", branch: "FALSE" }],
    });
    expect([...p.conditions.keys()]).toEqual(["ok"]);
    const ok = p.conditions.get("ok")!;
    expect(ok.source).toBe("inputs.fetch.status == 200");
    expect(ok.evaluate({ inputs: { fetch: { status: 200 } }, input: null, trigger: null })).toBe(
      true,
    );
    expect(ok.evaluate({ inputs: { fetch: { status: 503 } }, input: null, trigger: null })).toBe(
      false,
    );
  });

  it("also compiles the example with only the built-in action names", () => {
    expect(compilePipeline(normalizeDefinition(designExample)).valid).toBe(true);
  });

  it("orders nodes topologically whatever their definition order", () => {
    const p = compiled(
      pipeline(
        [pass("d"), pass("c"), pass("b"), pass("a"), trigger()],
        chain("t", "a", "b", "c", "d"),
      ),
    );
    expect(p.order).toEqual(["t", "a", "b", "c", "d"]);
  });

  it("keeps definition order between independent nodes and triggers", () => {
    const p = compiled(
      pipeline(
        [trigger("t1"), pass("x"), pass("y"), trigger("t2"), pass("z")],
        [edge("t1", "x"), edge("t1", "y"), edge("t2", "z"), edge("x", "z"), edge("y", "z")],
      ),
    );
    expect(p.order).toEqual(["t1", "t2", "x", "y", "z"]);
  });

  // CompiledPipeline.order is documented as "Topological order; ties keep definition order".
  // "b" and "a" become ready together (both only wait for "t"); "b" is defined first.
  it("breaks ties between nodes ready at the same time by definition order", () => {
    const p = compiled(
      pipeline([trigger(), pass("b"), pass("a")], [edge("t", "a"), edge("t", "b")]),
    );
    expect(p.order).toEqual(["t", "b", "a"]);
  });

  it("normalises an unset branch out of a CONDITION to TRUE and drops branch elsewhere", () => {
    const p = compiled(
      pipeline(
        [trigger(), condition("c"), pass("x"), pass("y")],
        [edge("t", "c", null), edge("c", "x"), edge("c", "y", "FALSE")],
      ),
    );
    expect(p.outgoing.get("t")).toStrictEqual([{ source: "t", target: "c" }]);
    expect(p.outgoing.get("c")).toStrictEqual([
      { source: "c", target: "x", branch: "TRUE" },
      { source: "c", target: "y", branch: "FALSE" },
    ]);
    expect(p.incoming.get("x")).toStrictEqual([{ source: "c", target: "x", branch: "TRUE" }]);
  });

  it("accepts both branches of a CONDITION leading to the same node", () => {
    const p = compiled(
      pipeline(
        [trigger(), condition("c"), pass("x")],
        [edge("t", "c"), edge("c", "x", "TRUE"), edge("c", "x", "FALSE")],
      ),
    );
    expect(p.incoming.get("x")).toStrictEqual([
      { source: "c", target: "x", branch: "TRUE" },
      { source: "c", target: "x", branch: "FALSE" },
    ]);
  });

  it("compiles every condition, keyed by node id", () => {
    const p = compiled(
      pipeline(
        [trigger(), condition("c1", "input.result"), condition("c2", "false")],
        [edge("t", "c1"), edge("c1", "c2")],
      ),
    );
    expect([...p.conditions.keys()]).toEqual(["c1", "c2"]);
    expect(
      p.conditions.get("c1")!.evaluate({ inputs: {}, input: { result: "yes" }, trigger: null }),
    ).toBe(true);
    expect(p.conditions.get("c2")!.evaluate({ inputs: {}, input: null, trigger: null })).toBe(
      false,
    );
  });

  it("accepts the values at the edges of every range", () => {
    const definition = pipeline(
      [
        trigger(),
        {
          ...log("a"),
          retry: { maxAttempts: 100, initialDelayMs: 0, maxDelayMs: 86_400_000 },
          timeoutMs: 86_400_000,
          breaker: { failureThreshold: 10_000, recoveryTimeoutMs: 0 },
        },
        {
          ...log("b"),
          retry: { maxAttempts: 1, initialDelayMs: 500, maxDelayMs: 500 },
          timeoutMs: 1,
          breaker: { failureThreshold: 1, recoveryTimeoutMs: 86_400_000 },
        },
        delay("d0", 0),
        delay("d1", 604_800),
        node("x".repeat(128), "PARALLEL"),
      ],
      chain("t", "a", "b", "d0", "d1", "x".repeat(128)),
      {
        name: "n".repeat(200),
        maxRetriesPerNode: 100,
        timeoutSeconds: 30 * 24 * 3600,
        maxConcurrency: 100_000,
        breaker: { failureThreshold: 10_000, recoveryTimeoutMs: 86_400_000 },
      },
    );
    expect(errorsOf(definition)).toEqual([]);
    expect(
      errorsOf(pipeline([trigger(), delay("d", 60)], [edge("t", "d")], { timeoutSeconds: 60 })),
    ).toEqual([]);
    expect(
      errorsOf(pipeline([trigger(), pass("b")], [edge("t", "b")], { maxRetriesPerNode: 1 })),
    ).toEqual([]);
  });

  it("accepts exactly maxNodes nodes and maxEdges edges", () => {
    const definition = pipeline([trigger(), pass("a")], [edge("t", "a")]);
    expect(errorsOf(definition, { maxNodes: 2, maxEdges: 1 })).toEqual([]);
  });

  it("accepts a config of exactly maxConfigBytes bytes", () => {
    // {"action":"log","message":"…"} is 27 + 2 bytes around the text.
    const definition = pipeline(
      [trigger(), node("a", "ACTION", { action: "log", message: "x".repeat(50) })],
      [edge("t", "a")],
    );
    const size = JSON.stringify(definition.nodes[1]!.config).length;
    expect(size).toBe(79);
    expect(errorsOf(definition, { maxConfigBytes: 79 })).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

function adjacency(pairs: readonly (readonly [string, string])[]) {
  const outgoing = new Map<string, EdgeDefinition[]>();
  for (const [source, target] of pairs) {
    const list = outgoing.get(source) ?? [];
    list.push({ source, target });
    outgoing.set(source, list);
  }
  return outgoing;
}

describe("topologicalOrder", () => {
  it("orders a DAG and leaves nothing over", () => {
    const outgoing = adjacency([
      ["a", "c"],
      ["b", "c"],
      ["c", "d"],
    ]);
    expect(topologicalOrder(["d", "c", "b", "a"], outgoing)).toEqual({
      order: ["b", "a", "c", "d"],
      remaining: [],
    });
  });

  it("leaves over the nodes on and behind a cycle, in the order of ids", () => {
    const outgoing = adjacency([
      ["a", "b"],
      ["b", "c"],
      ["c", "b"],
      ["c", "d"],
      ["a", "e"],
    ]);
    expect(topologicalOrder(["a", "b", "c", "d", "e"], outgoing)).toEqual({
      order: ["a", "e"],
      remaining: ["b", "c", "d"],
    });
  });
});

describe("findCycles", () => {
  it("finds one cycle per strongly connected component, sorted by first node", () => {
    const outgoing = adjacency([
      ["a", "b"],
      ["b", "a"],
      ["x", "y"],
      ["y", "z"],
      ["z", "x"],
      ["z", "tail"],
    ]);
    expect(findCycles(["x", "y", "z", "a", "b", "tail"], outgoing)).toEqual([
      ["x", "y", "z", "x"],
      ["a", "b", "a"],
    ]);
  });

  it("finds none among nodes that are only behind a cycle", () => {
    const outgoing = adjacency([
      ["a", "b"],
      ["b", "a"],
      ["b", "c"],
      ["c", "d"],
    ]);
    expect(findCycles(["c", "d"], outgoing)).toEqual([]);
  });

  it("returns a real cycle when the walk enters an inner loop first", () => {
    // a → b → c → b is met before c → a closes the outer loop.
    const outgoing = adjacency([
      ["a", "b"],
      ["b", "c"],
      ["c", "b"],
      ["c", "a"],
    ]);
    expect(findCycles(["a", "b", "c"], outgoing)).toEqual([["b", "c", "b"]]);
  });
});
