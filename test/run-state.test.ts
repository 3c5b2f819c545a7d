import { describe, expect, it } from "vitest";
import {
  type EdgeDefinition,
  type NodeDefinition,
  type NodeType,
  normalizeDefinition,
} from "../src/domain/definition.ts";
import type { JsonObject, JsonValue } from "../src/domain/json.ts";
import { type CompiledPipeline, compilePipeline } from "../src/engine/dag.ts";
import { RunState, type Settlement } from "../src/engine/run-state.ts";

type Edge = [source: string, target: string, branch?: "TRUE" | "FALSE"];

/** Compiles a pipeline from `id:TYPE` names (PARALLEL when no type is given) and edges. */
function compile(nodes: readonly string[], edges: readonly Edge[]): CompiledPipeline {
  const definitions: NodeDefinition[] = nodes.map((spec) => {
    const [id, type = "PARALLEL"] = spec.split(":") as [string, NodeType?];
    const config: JsonObject = type === "CONDITION" ? { expression: "true" } : {};
    return { id, type, config };
  });
  const edgeDefinitions: EdgeDefinition[] = edges.map(([source, target, branch]) =>
    branch ? { source, target, branch } : { source, target },
  );
  const outcome = compilePipeline(
    normalizeDefinition({ name: "test", nodes: definitions, edges: edgeDefinitions }),
  );
  expect(outcome.errors).toEqual([]);
  expect(outcome.valid).toBe(true);
  if (!outcome.valid) throw new Error("invalid pipeline");
  return outcome.pipeline;
}

const done = (output: JsonValue): Settlement => ({ kind: "completed", output });
const decided = (branch: boolean): Settlement => ({ kind: "completed", output: branch, branch });
const skipped: Settlement = { kind: "skipped" };

const diamond = () =>
  compile(
    ["t:TRIGGER", "a", "b", "c"],
    [
      ["t", "a"],
      ["t", "b"],
      ["a", "c"],
      ["b", "c"],
    ],
  );

/**
 * t → cond; cond →TRUE yes, cond →FALSE no; no → no2 → no3; yes → join, no → join.
 * Topological order: t, cond, yes, no, no2, join, no3.
 */
const branching = () =>
  compile(
    ["t:TRIGGER", "cond:CONDITION", "yes", "no", "no2", "no3", "join"],
    [
      ["t", "cond"],
      ["cond", "yes", "TRUE"],
      ["cond", "no", "FALSE"],
      ["no", "no2"],
      ["no2", "no3"],
      ["yes", "join"],
      ["no", "join"],
    ],
  );

describe("RunState", () => {
  it("starts with the triggers as roots, and drops them from roots once settled", () => {
    const pipeline = compile(
      ["t1:TRIGGER", "a", "t2:TRIGGER"],
      [
        ["t1", "a"],
        ["t2", "a"],
      ],
    );
    const state = new RunState(pipeline);
    expect(state.roots()).toEqual(["t1", "t2"]);
    expect(state.settle("t1", done({ by: "t1" }))).toEqual({ ready: [], skipped: [] });
    expect(state.roots()).toEqual(["t2"]);
    expect(state.settle("t2", done({ by: "t2" }))).toEqual({ ready: ["a"], skipped: [] });
    expect(state.roots()).toEqual([]);
  });

  it("makes the join of a diamond ready only when both sides have settled", () => {
    const state = new RunState(diamond());
    expect(state.roots()).toEqual(["t"]);
    expect(state.settle("t", done({ trigger: 1 }))).toEqual({ ready: ["a", "b"], skipped: [] });
    expect(state.inputsOf("a")).toEqual({ t: { trigger: 1 } });
    expect(state.settle("b", done("from b"))).toEqual({ ready: [], skipped: [] });
    expect(state.isSettled("c")).toBe(false);
    expect(state.settle("a", done({ n: 1 }))).toEqual({ ready: ["c"], skipped: [] });
    expect(state.inputsOf("c")).toEqual({ a: { n: 1 }, b: "from b" });
    expect(state.isComplete()).toBe(false);
    expect(state.settledCount).toBe(3);
    expect(state.settle("c", done(null))).toEqual({ ready: [], skipped: [] });
    expect(state.isComplete()).toBe(true);
    expect(state.settledCount).toBe(4);
  });

  it("keeps null and false outputs as inputs", () => {
    const state = new RunState(diamond());
    state.settle("t", done(null));
    state.settle("a", done(false));
    state.settle("b", done(0));
    expect(state.inputsOf("c")).toEqual({ a: false, b: 0 });
    expect(state.inputsOf("a")).toEqual({ t: null });
  });

  it("on TRUE runs the TRUE target and skips the FALSE target and all that only it reaches", () => {
    const state = new RunState(branching());
    expect(state.settle("t", done({}))).toEqual({ ready: ["cond"], skipped: [] });
    expect(state.settle("cond", decided(true))).toEqual({
      ready: ["yes"],
      skipped: ["no", "no2", "no3"],
    });
    expect(state.inputsOf("yes")).toEqual({ cond: true });
    // join has one dead edge (from the skipped "no") and one live one: it still runs.
    expect(state.isSettled("join")).toBe(false);
    expect(state.settle("yes", done("y"))).toEqual({ ready: ["join"], skipped: [] });
    expect(state.inputsOf("join")).toEqual({ yes: "y" });
    expect(state.settle("join", done("j"))).toEqual({ ready: [], skipped: [] });
    expect(state.isComplete()).toBe(true);
    expect(state.settledCount).toBe(7);
  });

  it("lists a branching skip cascade in topological order, not in the order it was found", () => {
    // Under the dead FALSE branch: no → s1 → s1c, no → s2 → s2c. A depth-first walk finds
    // s2c before s1c; topological order has s1c first.
    const pipeline = compile(
      ["t:TRIGGER", "cond:CONDITION", "yes", "no", "s1", "s2", "s1c", "s2c"],
      [
        ["t", "cond"],
        ["cond", "yes", "TRUE"],
        ["cond", "no", "FALSE"],
        ["no", "s1"],
        ["no", "s2"],
        ["s1", "s1c"],
        ["s2", "s2c"],
      ],
    );
    expect(pipeline.order).toEqual(["t", "cond", "yes", "no", "s1", "s2", "s1c", "s2c"]);
    const state = new RunState(pipeline);
    state.settle("t", done(null));
    expect(state.settle("cond", decided(true))).toEqual({
      ready: ["yes"],
      skipped: ["no", "s1", "s2", "s1c", "s2c"],
    });
  });

  it("on FALSE runs the FALSE side and skips the TRUE target", () => {
    const state = new RunState(branching());
    state.settle("t", done({}));
    expect(state.settle("cond", decided(false))).toEqual({ ready: ["no"], skipped: ["yes"] });
    expect(state.inputsOf("no")).toEqual({ cond: false });
    expect(state.settle("no", done("n"))).toEqual({ ready: ["no2", "join"], skipped: [] });
    expect(state.inputsOf("join")).toEqual({ no: "n" });
    expect(state.inputsOf("no2")).toEqual({ no: "n" });
  });

  it("follows TRUE on an edge out of a CONDITION that names no branch", () => {
    const pipeline = compile(
      ["t:TRIGGER", "cond:CONDITION", "then", "else"],
      [
        ["t", "cond"],
        ["cond", "then"],
        ["cond", "else", "FALSE"],
      ],
    );
    const onTrue = new RunState(pipeline);
    onTrue.settle("t", done(1));
    expect(onTrue.settle("cond", decided(true))).toEqual({ ready: ["then"], skipped: ["else"] });

    const onFalse = new RunState(pipeline);
    onFalse.settle("t", done(1));
    expect(onFalse.settle("cond", decided(false))).toEqual({ ready: ["else"], skipped: ["then"] });
  });

  it("kills every edge out of a skipped node, and one live edge is enough to run", () => {
    // t → a, t → b, a → c, b → c, c → d: skipping a leaves c with the live edge from b.
    const pipeline = compile(
      ["t:TRIGGER", "a", "b", "c", "d", "e"],
      [
        ["t", "a"],
        ["t", "b"],
        ["a", "c"],
        ["b", "c"],
        ["a", "e"],
        ["c", "d"],
      ],
    );
    const state = new RunState(pipeline);
    state.settle("t", done("t"));
    expect(state.settle("a", skipped)).toEqual({ ready: [], skipped: ["e"] });
    expect(state.settle("b", done("b"))).toEqual({ ready: ["c"], skipped: [] });
    expect(state.inputsOf("c")).toEqual({ b: "b" });
    expect(state.settle("c", skipped)).toEqual({ ready: [], skipped: ["d"] });
    expect(state.inputsOf("d")).toEqual({});
    expect(state.isComplete()).toBe(true);
  });

  it("skips a node whose predecessors were all skipped, even on different branches", () => {
    // Two conditions, both false: "both" has only dead edges and is skipped; "either" too.
    const pipeline = compile(
      ["t:TRIGGER", "c1:CONDITION", "c2:CONDITION", "x", "y", "both"],
      [
        ["t", "c1"],
        ["t", "c2"],
        ["c1", "x", "TRUE"],
        ["c2", "y", "TRUE"],
        ["x", "both"],
        ["y", "both"],
      ],
    );
    const state = new RunState(pipeline);
    state.settle("t", done(null));
    expect(state.settle("c1", decided(false))).toEqual({ ready: [], skipped: ["x"] });
    expect(state.settle("c2", decided(false))).toEqual({ ready: [], skipped: ["y", "both"] });
    expect(state.isComplete()).toBe(true);
  });

  it("throws when a node is settled twice, whether it ran or was skipped", () => {
    const state = new RunState(branching());
    state.settle("t", done(1));
    expect(() => state.settle("t", done(2))).toThrow('node "t" settled twice');
    state.settle("cond", decided(true));
    expect(() => state.settle("no2", done(3))).toThrow('node "no2" settled twice');
  });

  it("skips down a 5,000-node chain without overflowing the stack", () => {
    const count = 5_000;
    const chain = Array.from({ length: count }, (_, i) => `n${i}`);
    const edges: Edge[] = [
      ["t", "cond"],
      ["cond", chain[0]!, "TRUE"],
    ];
    for (let i = 1; i < count; i++) edges.push([chain[i - 1]!, chain[i]!]);
    const state = new RunState(compile(["t:TRIGGER", "cond:CONDITION", ...chain], edges));
    state.settle("t", done(null));
    const progress = state.settle("cond", decided(false));
    expect(progress.ready).toEqual([]);
    expect(progress.skipped).toEqual(chain);
    expect(state.isComplete()).toBe(true);
  });
});

describe("RunState.restore", () => {
  it("with nothing stored, returns the roots", () => {
    const state = new RunState(diamond());
    expect(state.restore(new Map())).toEqual({ ready: ["t"], skipped: [] });
  });

  it("returns exactly the nodes ready to run next", () => {
    const halfway = new RunState(diamond());
    expect(
      halfway.restore(
        new Map<string, Settlement>([
          ["t", done(1)],
          ["a", done("a")],
        ]),
      ),
    ).toEqual({ ready: ["b"], skipped: [] });
    expect(halfway.inputsOf("b")).toEqual({ t: 1 });
    expect(halfway.settle("b", done("b"))).toEqual({ ready: ["c"], skipped: [] });
    expect(halfway.inputsOf("c")).toEqual({ a: "a", b: "b" });

    const sidesDone = new RunState(diamond());
    expect(
      sidesDone.restore(
        new Map<string, Settlement>([
          ["b", done("b")],
          ["t", done(1)],
          ["a", done("a")],
        ]),
      ),
    ).toEqual({ ready: ["c"], skipped: [] });

    const finished = new RunState(diamond());
    expect(
      finished.restore(
        new Map<string, Settlement>([
          ["t", done(1)],
          ["a", done("a")],
          ["b", done("b")],
          ["c", done("c")],
        ]),
      ),
    ).toEqual({ ready: [], skipped: [] });
    expect(finished.isComplete()).toBe(true);
  });

  it("returns only the skips not stored yet, and takes a stored skip that it re-derives", () => {
    const state = new RunState(branching());
    const progress = state.restore(
      new Map<string, Settlement>([
        ["t", done({})],
        ["cond", decided(true)],
        // The crash came after "no" was stored SKIPPED, before its successors were.
        ["no", skipped],
      ]),
    );
    expect(progress).toEqual({ ready: ["yes"], skipped: ["no2", "no3"] });
    expect(state.isSettled("no")).toBe(true);
    expect(state.isSettled("no3")).toBe(true);
    expect(state.settle("yes", done("y"))).toEqual({ ready: ["join"], skipped: [] });
    expect(state.inputsOf("join")).toEqual({ yes: "y" });
  });

  it("restores a FALSE branch with its live side partly done", () => {
    const state = new RunState(branching());
    const progress = state.restore(
      new Map<string, Settlement>([
        ["t", done({})],
        ["cond", decided(false)],
        ["yes", skipped],
        ["no", done("n")],
        ["no2", done("n2")],
      ]),
    );
    expect(progress).toEqual({ ready: ["join", "no3"], skipped: [] });
    expect(state.inputsOf("join")).toEqual({ no: "n" });
    expect(state.inputsOf("no3")).toEqual({ no2: "n2" });
  });

  it("returns the skips it derives in topological order", () => {
    // c1 →TRUE p → q → x; c2 →TRUE y. Topological order: t, c1, c2, p, y, q, x.
    const pipeline = compile(
      ["t:TRIGGER", "c1:CONDITION", "c2:CONDITION", "p", "y", "q", "x"],
      [
        ["t", "c1"],
        ["t", "c2"],
        ["c1", "p", "TRUE"],
        ["c2", "y", "TRUE"],
        ["p", "q"],
        ["q", "x"],
      ],
    );
    expect(pipeline.order).toEqual(["t", "c1", "c2", "p", "y", "q", "x"]);
    const state = new RunState(pipeline);
    const progress = state.restore(
      new Map<string, Settlement>([
        ["t", done(null)],
        ["c1", decided(false)],
        ["c2", decided(false)],
      ]),
    );
    expect(progress).toEqual({ ready: [], skipped: ["p", "y", "q", "x"] });
    expect(state.isComplete()).toBe(true);
  });
});
