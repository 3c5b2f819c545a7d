import { describe, expect, it } from "vitest";
import {
  type ActionCatalog,
  compilePipeline,
  findCycles,
  topologicalOrder,
  VALIDATION_CODES,
  type ValidationCode,
  type ValidationError,
  type ValidationOptions,
  validatePipeline,
  validationFailureMessage,
} from "../src/engine/dag.ts";
import {
  type EdgeDefinition,
  type JsonObject,
  type NodeDefinition,
  type NodeType,
  normalizeDefinition,
  type PipelineDefinition,
  type PipelineInput,
} from "../src/engine/definition.ts";
import { compileExpression, MAX_EXPRESSION_LENGTH } from "../src/engine/expressions.ts";
import { ActionRegistry } from "../src/engine/nodes/actions.ts";

// ---------------------------------------------------------------------------------------------
// Builders

function node(id: string, type: NodeType | string, config: JsonObject = {}): NodeDefinition {
  return { id, type: type as NodeType, config };
}
const trigger = (id = "t") => node(id, "TRIGGER");
const pass = (id: string) => node(id, "PARALLEL");
const log = (id: string) => node(id, "ACTION", { action: "log", message: "hi" });
const condition = (id: string, expression = "true") => node(id, "CONDITION", { expression });
const agent = (id: string) => node(id, "AGENT", { agentId: "writer", task: "write" });
const delay = (id: string, seconds: unknown) =>
  node(id, "DELAY", { seconds: seconds as JsonObject[string] });

function edge(source: string, target: string, branch?: string | null): EdgeDefinition {
  return branch === undefined
    ? { source, target }
    : { source, target, branch: branch as EdgeDefinition["branch"] };
}
/** Edges along a path: chain("a", "b", "c") is a → b, b → c. */
function chain(...ids: string[]): EdgeDefinition[] {
  return ids.slice(1).map((id, i) => edge(ids[i]!, id));
}

function pipeline(
  nodes: readonly NodeDefinition[],
  edges: readonly EdgeDefinition[] = [],
  settings: Partial<Omit<PipelineInput, "nodes" | "edges">> = {},
): PipelineDefinition {
  return normalizeDefinition({ name: "p", ...settings, nodes, edges });
}

function errorsOf(definition: PipelineDefinition, options?: ValidationOptions) {
  return validatePipeline(definition, options);
}

function compiled(definition: PipelineDefinition, options?: ValidationOptions) {
  const outcome = compilePipeline(definition, options);
  expect(outcome.errors).toEqual([]);
  if (!outcome.valid) throw new Error("expected a valid pipeline");
  return outcome.pipeline;
}

const err = (code: ValidationCode, message: string, nodeId?: string): ValidationError =>
  nodeId === undefined ? { code, message } : { code, message, nodeId };

const registry = () => new ActionRegistry({ httpAllowlist: [] });

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

interface CodeCase {
  readonly title: string;
  readonly definition: PipelineDefinition;
  readonly options?: ValidationOptions;
  readonly errors: readonly ValidationError[];
}

/** At least one case per validation code; a test below checks that none is missing. */
const codeCases: CodeCase[] = [
  {
    title: "an empty name",
    definition: normalizeDefinition({ name: "", nodes: [trigger()] }),
    errors: [err("INVALID_NAME", "pipeline name must be 1 to 200 characters")],
  },
  {
    title: "a blank name",
    definition: normalizeDefinition({ name: "  \t ", nodes: [trigger()] }),
    errors: [err("INVALID_NAME", "pipeline name must be 1 to 200 characters")],
  },
  {
    title: "a name of 201 characters",
    definition: normalizeDefinition({ name: "n".repeat(201), nodes: [trigger()] }),
    errors: [err("INVALID_NAME", "pipeline name must be 1 to 200 characters")],
  },
  {
    title: "more nodes than maxNodes: only the size error, nothing else is looked at",
    definition: pipeline(
      [trigger(), pass("a"), pass("a"), node("bad id", "NOPE"), pass("z")],
      [edge("a", "a"), edge("a", "ghost"), edge("t", "z"), edge("t", "z")],
    ),
    options: { maxNodes: 4 },
    errors: [err("TOO_MANY_NODES", "5 nodes; the limit is 4")],
  },
  {
    title: "more edges than maxEdges",
    definition: pipeline([pass("a"), pass("b")], [edge("a", "b"), edge("b", "a")]),
    options: { maxEdges: 1 },
    errors: [err("TOO_MANY_EDGES", "2 edges; the limit is 1")],
  },
  {
    title: "too many nodes and too many edges",
    definition: pipeline([trigger(), pass("a"), pass("b")], chain("t", "a", "b")),
    options: { maxNodes: 2, maxEdges: 1 },
    errors: [
      err("TOO_MANY_NODES", "3 nodes; the limit is 2"),
      err("TOO_MANY_EDGES", "2 edges; the limit is 1"),
    ],
  },
  {
    title: "no nodes",
    definition: pipeline([]),
    errors: [err("NO_NODES", "the pipeline has no nodes")],
  },
  {
    title: "no nodes but an edge",
    definition: pipeline([], [edge("t", "a")]),
    errors: [
      err("NO_NODES", "the pipeline has no nodes"),
      err("UNKNOWN_EDGE_NODE", 'edge "t" → "a" names unknown nodes "t" and "a"', "t"),
    ],
  },
  {
    title: "a node id with a space",
    definition: pipeline([trigger(), pass("bad id")]),
    errors: [err("INVALID_NODE_ID", 'node id "bad id" must be 1 to 128 letters, digits, _ or -')],
  },
  {
    title: "invalid node ids: empty, a dot, non-ASCII, 129 characters",
    definition: pipeline([trigger(), pass(""), pass("a.b"), pass("né"), pass("x".repeat(129))]),
    errors: [
      err("INVALID_NODE_ID", 'node id "" must be 1 to 128 letters, digits, _ or -'),
      err("INVALID_NODE_ID", 'node id "a.b" must be 1 to 128 letters, digits, _ or -'),
      err("INVALID_NODE_ID", 'node id "né" must be 1 to 128 letters, digits, _ or -'),
      err(
        "INVALID_NODE_ID",
        `node id "${"x".repeat(129)}" must be 1 to 128 letters, digits, _ or -`,
      ),
    ],
  },
  {
    title: "a very long node id is cut to 140 characters in the message",
    definition: pipeline([trigger(), pass("y".repeat(500))]),
    errors: [
      err(
        "INVALID_NODE_ID",
        `node id "${"y".repeat(140)}" must be 1 to 128 letters, digits, _ or -`,
      ),
    ],
  },
  {
    title: "an edge to a node whose id is invalid names an unknown node",
    definition: pipeline([trigger(), pass("a b")], [edge("t", "a b")]),
    errors: [
      err("INVALID_NODE_ID", 'node id "a b" must be 1 to 128 letters, digits, _ or -'),
      err("UNKNOWN_EDGE_NODE", 'edge "t" → "a b" names unknown node "a b"', "a b"),
    ],
  },
  {
    title: "an unknown node type",
    definition: pipeline([trigger(), node("w", "WEBHOOK")], [edge("t", "w")]),
    errors: [err("INVALID_NODE_TYPE", 'node "w": unknown type "WEBHOOK"', "w")],
  },
  {
    title: "a lower-case type, the only node",
    definition: pipeline([node("t", "trigger")]),
    errors: [
      err("INVALID_NODE_TYPE", 'node "t": unknown type "trigger"', "t"),
      err("MISSING_TRIGGER", "the pipeline needs at least one TRIGGER node"),
    ],
  },
  {
    title: "a duplicate node id (the second node is not checked further)",
    definition: pipeline([trigger(), log("a"), node("a", "AGENT")], [edge("t", "a")]),
    errors: [err("DUPLICATE_NODE_ID", 'node id "a" is used more than once', "a")],
  },
  {
    title: "a node id used three times, and a duplicate trigger",
    definition: pipeline(
      [trigger(), pass("a"), pass("a"), trigger(), node("a", "NOPE")],
      [edge("t", "a")],
    ),
    errors: [
      err("DUPLICATE_NODE_ID", 'node id "a" is used more than once', "a"),
      err("DUPLICATE_NODE_ID", 'node id "t" is used more than once', "t"),
      err("DUPLICATE_NODE_ID", 'node id "a" is used more than once', "a"),
    ],
  },
  {
    title: "no trigger (and no unreachable errors without one)",
    definition: pipeline([pass("a"), pass("b"), pass("c")], [edge("a", "b")]),
    errors: [err("MISSING_TRIGGER", "the pipeline needs at least one TRIGGER node")],
  },
  {
    title: "an edge into a trigger (the edge is ignored, so no cycle)",
    definition: pipeline([trigger(), pass("a")], [edge("t", "a"), edge("a", "t")]),
    errors: [err("TRIGGER_HAS_INPUT", 'edge "a" → "t" leads into TRIGGER "t"', "t")],
  },
  {
    title: "an edge from one trigger into another",
    definition: pipeline(
      [trigger("t1"), trigger("t2"), pass("a")],
      [edge("t1", "t2"), edge("t2", "a")],
    ),
    errors: [err("TRIGGER_HAS_INPUT", 'edge "t1" → "t2" leads into TRIGGER "t2"', "t2")],
  },
  {
    title: "edges to and from unknown nodes",
    definition: pipeline(
      [trigger(), condition("c"), pass("a")],
      [
        edge("t", "c"),
        edge("c", "a"),
        edge("c", "ghost", "FALSE"),
        edge("phantom", "a"),
        edge("x", "y"),
      ],
    ),
    errors: [
      err("UNKNOWN_EDGE_NODE", 'edge "c" → "ghost" (FALSE) names unknown node "ghost"', "ghost"),
      err("UNKNOWN_EDGE_NODE", 'edge "phantom" → "a" names unknown node "phantom"', "phantom"),
      err("UNKNOWN_EDGE_NODE", 'edge "x" → "y" names unknown nodes "x" and "y"', "x"),
    ],
  },
  {
    title: "a self-loop",
    definition: pipeline([trigger(), pass("a")], [edge("t", "a"), edge("a", "a")]),
    errors: [err("SELF_LOOP", 'edge "a" → "a" leads from node "a" to itself', "a")],
  },
  {
    title: "a self-loop on a trigger is a self-loop, not an input",
    definition: pipeline([trigger()], [edge("t", "t")]),
    errors: [err("SELF_LOOP", 'edge "t" → "t" leads from node "t" to itself', "t")],
  },
  {
    title: "the same edge twice",
    definition: pipeline([trigger(), pass("a")], [edge("t", "a"), edge("t", "a")]),
    errors: [err("DUPLICATE_EDGE", 'edge "t" → "a" appears more than once', "t")],
  },
  {
    title: "TRUE and an unset branch out of a CONDITION are the same edge",
    definition: pipeline(
      [trigger(), condition("c"), pass("x")],
      [edge("t", "c"), edge("c", "x", "TRUE"), edge("c", "x")],
    ),
    errors: [err("DUPLICATE_EDGE", 'edge "c" → "x" (TRUE) appears more than once', "c")],
  },
  {
    title: "an unset branch then TRUE out of a CONDITION",
    definition: pipeline(
      [trigger(), condition("c"), pass("x")],
      [edge("t", "c"), edge("c", "x", null), edge("c", "x", "TRUE")],
    ),
    errors: [err("DUPLICATE_EDGE", 'edge "c" → "x" (TRUE) appears more than once', "c")],
  },
  {
    title: "a FALSE branch twice",
    definition: pipeline(
      [trigger(), condition("c"), pass("x")],
      [edge("t", "c"), edge("c", "x", "FALSE"), edge("c", "x", "FALSE")],
    ),
    errors: [err("DUPLICATE_EDGE", 'edge "c" → "x" (FALSE) appears more than once', "c")],
  },
  {
    title: "a branch on an edge out of a non-CONDITION",
    definition: pipeline([trigger(), pass("a")], [edge("t", "a", "FALSE"), edge("t", "a")]),
    errors: [
      err(
        "INVALID_BRANCH",
        'edge "t" → "a" (FALSE) has a branch but "t" is a TRIGGER, not a CONDITION',
        "t",
      ),
    ],
  },
  {
    title: "a branch out of a PARALLEL: the edge is dropped, so its target is unreachable",
    definition: pipeline(
      [trigger(), pass("p"), pass("a")],
      [edge("t", "p"), edge("p", "a", "TRUE")],
    ),
    errors: [
      err(
        "INVALID_BRANCH",
        'edge "p" → "a" (TRUE) has a branch but "p" is a PARALLEL, not a CONDITION',
        "p",
      ),
      err("UNREACHABLE_NODE", 'node "a" cannot be reached from a TRIGGER', "a"),
    ],
  },
  {
    title: "an unknown branch value",
    definition: pipeline(
      [trigger(), condition("c"), pass("x")],
      [edge("t", "c"), edge("c", "x", "MAYBE"), edge("c", "x", "TRUE")],
    ),
    errors: [err("INVALID_BRANCH", 'edge "c" → "x" (MAYBE): unknown branch "MAYBE"', "c")],
  },
  {
    title: "a cycle, listed in edge order from its first node in definition order",
    definition: pipeline(
      [trigger(), pass("c"), pass("b"), pass("a")],
      [edge("t", "a"), edge("a", "b"), edge("b", "c"), edge("c", "a")],
    ),
    errors: [err("CYCLE", 'cycle: "c" → "a" → "b" → "c"', "c")],
  },
  {
    title: "a three-node cycle",
    definition: pipeline(
      [trigger(), pass("a"), pass("b"), pass("c")],
      [edge("t", "a"), ...chain("a", "b", "c", "a")],
    ),
    errors: [err("CYCLE", 'cycle: "a" → "b" → "c" → "a"', "a")],
  },
  {
    title: "two separate cycles",
    definition: pipeline(
      [trigger(), pass("a"), pass("b"), pass("c"), pass("d")],
      [edge("t", "c"), ...chain("c", "d", "c"), edge("t", "a"), ...chain("a", "b", "a")],
    ),
    errors: [
      err("CYCLE", 'cycle: "a" → "b" → "a"', "a"),
      err("CYCLE", 'cycle: "c" → "d" → "c"', "c"),
    ],
  },
  {
    title: "a node downstream of a cycle is not reported",
    definition: pipeline(
      [trigger(), pass("a"), pass("b"), pass("c"), pass("d"), pass("e")],
      [edge("t", "a"), ...chain("a", "b", "c", "a"), ...chain("c", "d", "e")],
    ),
    errors: [err("CYCLE", 'cycle: "a" → "b" → "c" → "a"', "a")],
  },
  {
    title: "a cycle no trigger reaches is a cycle and unreachable",
    definition: pipeline([trigger(), pass("a"), pass("b")], chain("a", "b", "a")),
    errors: [
      err("CYCLE", 'cycle: "a" → "b" → "a"', "a"),
      err("UNREACHABLE_NODE", 'node "a" cannot be reached from a TRIGGER', "a"),
      err("UNREACHABLE_NODE", 'node "b" cannot be reached from a TRIGGER', "b"),
    ],
  },
  {
    title: "two cycles sharing a node are one strongly connected component: one error",
    definition: pipeline(
      [trigger(), pass("a"), pass("b"), pass("c")],
      [edge("t", "a"), edge("a", "b"), edge("b", "a"), edge("b", "c"), edge("c", "b")],
    ),
    errors: [err("CYCLE", 'cycle: "a" → "b" → "a"', "a")],
  },
  {
    title: "a cycle through a CONDITION's FALSE branch",
    definition: pipeline(
      [trigger(), condition("c"), pass("x")],
      [edge("t", "c"), edge("c", "x", "FALSE"), edge("x", "c")],
    ),
    errors: [err("CYCLE", 'cycle: "c" → "x" → "c"', "c")],
  },
  {
    title: "unreachable nodes",
    definition: pipeline(
      [trigger(), pass("a"), pass("b"), pass("c")],
      [edge("t", "a"), edge("b", "c")],
    ),
    errors: [
      err("UNREACHABLE_NODE", 'node "b" cannot be reached from a TRIGGER', "b"),
      err("UNREACHABLE_NODE", 'node "c" cannot be reached from a TRIGGER', "c"),
    ],
  },
  {
    title: "a config that is an array",
    definition: pipeline(
      [trigger(), node("a", "ACTION", [] as unknown as JsonObject)],
      [edge("t", "a")],
    ),
    errors: [err("INVALID_CONFIG", 'node "a": config must be a JSON object', "a")],
  },
  {
    title: "a config that is a string (policies are not checked then)",
    definition: pipeline(
      [trigger(), { ...node("a", "PARALLEL", "x" as unknown as JsonObject), timeoutMs: 0 }],
      [edge("t", "a")],
    ),
    errors: [err("INVALID_CONFIG", 'node "a": config must be a JSON object', "a")],
  },
  {
    title: "a config larger than maxConfigBytes, counted in bytes, not characters",
    // {"action":"log","message":"é…"}: 27 + 2 bytes around 30 two-byte characters.
    definition: pipeline(
      [trigger(), node("a", "ACTION", { action: "log", message: "é".repeat(30) })],
      [edge("t", "a")],
    ),
    options: { maxConfigBytes: 88 },
    errors: [err("INVALID_CONFIG", 'node "a": config is 89 bytes; the limit is 88', "a")],
  },
  {
    title: "a config larger than the default 64 KiB",
    definition: pipeline(
      [trigger(), node("a", "PARALLEL", { m: "x".repeat(65_536 - 8 + 1) })],
      [edge("t", "a")],
    ),
    errors: [err("INVALID_CONFIG", 'node "a": config is 65537 bytes; the limit is 65536', "a")],
  },
  {
    title: "an AGENT without agentId and task",
    definition: pipeline([trigger(), node("w", "AGENT")], [edge("t", "w")]),
    errors: [
      err("MISSING_AGENT_ID", 'node "w": AGENT needs config.agentId (a non-empty string)', "w"),
      err("MISSING_TASK", 'node "w": AGENT needs config.task (a non-empty string)', "w"),
    ],
  },
  {
    title: "an AGENT with a blank agentId",
    definition: pipeline(
      [trigger(), node("w", "AGENT", { agentId: "  ", task: "t" })],
      [edge("t", "w")],
    ),
    errors: [
      err("MISSING_AGENT_ID", 'node "w": AGENT needs config.agentId (a non-empty string)', "w"),
    ],
  },
  {
    title: "an AGENT whose agentId is a number and whose task is blank",
    definition: pipeline(
      [trigger(), node("w", "AGENT", { agentId: 7, task: "" })],
      [edge("t", "w")],
    ),
    errors: [
      err("MISSING_AGENT_ID", 'node "w": AGENT needs config.agentId (a non-empty string)', "w"),
      err("MISSING_TASK", 'node "w": AGENT needs config.task (a non-empty string)', "w"),
    ],
  },
  {
    title: "a CONDITION without expression",
    definition: pipeline([trigger(), node("c", "CONDITION")], [edge("t", "c")]),
    errors: [
      err("MISSING_EXPRESSION", 'node "c": CONDITION needs config.expression (a CEL string)', "c"),
    ],
  },
  {
    title: "a CONDITION whose expression is a boolean, not a string",
    definition: pipeline(
      [trigger(), node("c", "CONDITION", { expression: true })],
      [edge("t", "c")],
    ),
    errors: [
      err("MISSING_EXPRESSION", 'node "c": CONDITION needs config.expression (a CEL string)', "c"),
    ],
  },
  {
    title: "an expression with a syntax error",
    definition: pipeline([trigger(), condition("c", "true &&")], [edge("t", "c")]),
    errors: [
      err(
        "INVALID_EXPRESSION",
        'node "c": expression does not compile: Unexpected token: EOF',
        "c",
      ),
    ],
  },
  {
    title: "an expression of type int",
    definition: pipeline([trigger(), condition("c", "1 + 2")], [edge("t", "c")]),
    errors: [
      err(
        "INVALID_EXPRESSION",
        'node "c": expression does not compile: expression must return a bool, it returns int',
        "c",
      ),
    ],
  },
  {
    title: "an empty expression",
    definition: pipeline([trigger(), condition("c", " ")], [edge("t", "c")]),
    errors: [
      err("INVALID_EXPRESSION", 'node "c": expression does not compile: expression is empty', "c"),
    ],
  },
  {
    title: "an expression naming an unknown variable",
    definition: pipeline([trigger(), condition("c", "result == 1")], [edge("t", "c")]),
    errors: [
      err(
        "INVALID_EXPRESSION",
        'node "c": expression does not compile: Unknown variable: result',
        "c",
      ),
    ],
  },
  {
    title: "an expression longer than MAX_EXPRESSION_LENGTH",
    definition: pipeline(
      [trigger(), condition("c", `true${" || true".repeat(MAX_EXPRESSION_LENGTH / 8)}`)],
      [edge("t", "c")],
    ),
    errors: [
      err(
        "INVALID_EXPRESSION",
        `node "c": expression does not compile: expression is longer than ${MAX_EXPRESSION_LENGTH} characters`,
        "c",
      ),
    ],
  },
  {
    title: "an ACTION without action",
    definition: pipeline([trigger(), node("a", "ACTION", { url: "http://x" })], [edge("t", "a")]),
    errors: [
      err("MISSING_ACTION", 'node "a": ACTION needs config.action (e.g. "http" or "log")', "a"),
    ],
  },
  {
    title: "an ACTION with an empty action",
    definition: pipeline([trigger(), node("a", "ACTION", { action: "" })], [edge("t", "a")]),
    errors: [
      err("MISSING_ACTION", 'node "a": ACTION needs config.action (e.g. "http" or "log")', "a"),
    ],
  },
  {
    title: "an unknown action",
    definition: pipeline([trigger(), node("a", "ACTION", { action: "slack" })], [edge("t", "a")]),
    errors: [err("UNKNOWN_ACTION", 'node "a": unknown action "slack"', "a")],
  },
  {
    title: "an http action without url (action registry)",
    definition: pipeline([trigger(), node("a", "ACTION", { action: "http" })], [edge("t", "a")]),
    options: { actions: registry() },
    errors: [err("INVALID_ACTION_CONFIG", 'node "a": http needs config.url', "a")],
  },
  {
    title: "an http action with a bad method (action registry)",
    definition: pipeline(
      [trigger(), node("a", "ACTION", { action: "http", url: "http://x/", method: "FETCH" })],
      [edge("t", "a")],
    ),
    options: { actions: registry() },
    errors: [
      err(
        "INVALID_ACTION_CONFIG",
        'node "a": config.method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS',
        "a",
      ),
    ],
  },
  {
    title: "an http action without url and with a bad method: one error each",
    definition: pipeline(
      [trigger(), node("a", "ACTION", { action: "http", method: 5 })],
      [edge("t", "a")],
    ),
    options: { actions: registry() },
    errors: [
      err("INVALID_ACTION_CONFIG", 'node "a": http needs config.url', "a"),
      err(
        "INVALID_ACTION_CONFIG",
        'node "a": config.method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS',
        "a",
      ),
    ],
  },
  {
    title: "an http action with an ftp url (action registry)",
    definition: pipeline(
      [trigger(), node("a", "ACTION", { action: "http", url: "ftp://example.com/x" })],
      [edge("t", "a")],
    ),
    options: { actions: registry() },
    errors: [
      err("INVALID_ACTION_CONFIG", 'node "a": config.url must be http or https, got ftp:', "a"),
    ],
  },
  {
    title: "a DELAY without seconds",
    definition: pipeline([trigger(), node("d", "DELAY")], [edge("t", "d")]),
    errors: [err("INVALID_DELAY", 'node "d": DELAY needs config.seconds, a number ≥ 0', "d")],
  },
  {
    title: "a negative DELAY",
    definition: pipeline([trigger(), delay("d", -1)], [edge("t", "d")]),
    errors: [err("INVALID_DELAY", 'node "d": DELAY needs config.seconds, a number ≥ 0', "d")],
  },
  {
    title: "a DELAY given as a string",
    definition: pipeline([trigger(), delay("d", "5")], [edge("t", "d")]),
    errors: [err("INVALID_DELAY", 'node "d": DELAY needs config.seconds, a number ≥ 0', "d")],
  },
  {
    title: "a DELAY longer than 7 days",
    definition: pipeline([trigger(), delay("d", 604_801)], [edge("t", "d")], {
      timeoutSeconds: 30 * 24 * 3600,
    }),
    errors: [err("INVALID_DELAY", 'node "d": delay of 604801 s is longer than 604800 s', "d")],
  },
  {
    title: "a DELAY longer than the pipeline's timeoutSeconds",
    definition: pipeline([trigger(), delay("d", 3601)], [edge("t", "d")]),
    errors: [
      err(
        "INVALID_DELAY",
        'node "d": delay of 3601 s is longer than the pipeline\'s timeout of 3600 s',
        "d",
      ),
    ],
  },
  {
    title: "retry.maxAttempts out of range",
    definition: pipeline(
      [
        trigger(),
        { ...log("a"), retry: { maxAttempts: 0 } },
        { ...log("b"), retry: { maxAttempts: 101 } },
        { ...log("c"), retry: { maxAttempts: 1.5 } },
      ],
      chain("t", "a", "b", "c"),
    ),
    errors: [
      err("INVALID_RETRY", 'node "a": retry.maxAttempts must be 1 to 100, got 0', "a"),
      err("INVALID_RETRY", 'node "b": retry.maxAttempts must be 1 to 100, got 101', "b"),
      err("INVALID_RETRY", 'node "c": retry.maxAttempts must be 1 to 100, got 1.5', "c"),
    ],
  },
  {
    title: "retry delays out of range",
    definition: pipeline(
      [trigger(), { ...log("a"), retry: { initialDelayMs: -1, maxDelayMs: 86_400_001 } }],
      [edge("t", "a")],
    ),
    errors: [
      err("INVALID_RETRY", 'node "a": retry.initialDelayMs must be 0 to 86400000, got -1', "a"),
      err("INVALID_RETRY", 'node "a": retry.maxDelayMs must be 0 to 86400000, got 86400001', "a"),
    ],
  },
  {
    title: "retry.initialDelayMs above retry.maxDelayMs",
    definition: pipeline(
      [trigger(), { ...agent("a"), retry: { initialDelayMs: 500, maxDelayMs: 100 } }],
      [edge("t", "a")],
    ),
    errors: [
      err(
        "INVALID_RETRY",
        'node "a": retry.initialDelayMs (500) is above retry.maxDelayMs (100)',
        "a",
      ),
    ],
  },
  {
    title: "timeoutMs out of range",
    definition: pipeline(
      [trigger(), { ...log("a"), timeoutMs: 0 }, { ...log("b"), timeoutMs: 86_400_001 }],
      chain("t", "a", "b"),
    ),
    errors: [
      err("INVALID_TIMEOUT", 'node "a": timeoutMs must be 1 to 86400000, got 0', "a"),
      err("INVALID_TIMEOUT", 'node "b": timeoutMs must be 1 to 86400000, got 86400001', "b"),
    ],
  },
  {
    title: "a node's breaker out of range",
    definition: pipeline(
      [trigger(), { ...log("a"), breaker: { failureThreshold: 0, recoveryTimeoutMs: -1 } }],
      [edge("t", "a")],
    ),
    errors: [
      err("INVALID_BREAKER", 'node "a": breaker.failureThreshold must be 1 to 10000, got 0', "a"),
      err(
        "INVALID_BREAKER",
        'node "a": breaker.recoveryTimeoutMs must be 0 to 86400000, got -1',
        "a",
      ),
    ],
  },
  {
    title: "the pipeline's breaker out of range",
    definition: pipeline([trigger()], [], {
      breaker: { failureThreshold: 10_001, recoveryTimeoutMs: 86_400_001 },
    }),
    errors: [
      err("INVALID_BREAKER", "breaker.failureThreshold must be 1 to 10000, got 10001"),
      err("INVALID_BREAKER", "breaker.recoveryTimeoutMs must be 0 to 86400000, got 86400001"),
    ],
  },
  {
    title: "pipeline settings below their ranges",
    definition: pipeline([trigger()], [], {
      maxRetriesPerNode: 0,
      timeoutSeconds: 0,
      maxConcurrency: 0,
    }),
    errors: [
      err("INVALID_SETTING", "maxRetriesPerNode must be 1 to 100, got 0"),
      err("INVALID_SETTING", "timeoutSeconds must be 1 to 2592000, got 0"),
      err("INVALID_SETTING", "maxConcurrency must be 1 to 100000, got 0"),
    ],
  },
  {
    title: "pipeline settings above their ranges or fractional",
    definition: pipeline([trigger()], [], {
      maxRetriesPerNode: 101,
      timeoutSeconds: 2_592_001,
      maxConcurrency: 2.5,
    }),
    errors: [
      err("INVALID_SETTING", "maxRetriesPerNode must be 1 to 100, got 101"),
      err("INVALID_SETTING", "timeoutSeconds must be 1 to 2592000, got 2592001"),
      err("INVALID_SETTING", "maxConcurrency must be 1 to 100000, got 2.5"),
    ],
  },
];

describe("validation codes", () => {
  it.each(codeCases)("reports $title", ({ definition, options, errors }) => {
    expect(validatePipeline(definition, options)).toEqual(errors);
    const outcome = compilePipeline(definition, options);
    expect(outcome.valid).toBe(false);
    expect(outcome.errors).toEqual(errors);
  });

  it("has a case above for every code in VALIDATION_CODES", () => {
    const covered = new Set(codeCases.flatMap((c) => c.errors.map((e) => e.code)));
    expect([...covered].sort()).toEqual(Object.keys(VALIDATION_CODES).sort());
  });

  it("describes every code in one line", () => {
    for (const [code, description] of Object.entries(VALIDATION_CODES)) {
      expect(code).toMatch(/^[A-Z_]+$/);
      expect(description).toMatch(/^[^\n]+$/);
    }
  });

  it("reports every problem, in the order of the rules", () => {
    const definition = normalizeDefinition({
      name: "",
      maxRetriesPerNode: 0,
      nodes: [
        pass("a"),
        node("bad.id", "PARALLEL"),
        pass("a"),
        node("w", "AGENT"),
        delay("d", -5),
        { ...pass("b"), timeoutMs: 0 },
      ],
      edges: [
        edge("a", "ghost"),
        edge("a", "a"),
        edge("a", "b", "TRUE"),
        edge("a", "b"),
        edge("a", "b"),
        edge("b", "a"),
      ],
    });
    expect(validatePipeline(definition)).toEqual([
      err("INVALID_NAME", "pipeline name must be 1 to 200 characters"),
      err("INVALID_SETTING", "maxRetriesPerNode must be 1 to 100, got 0"),
      err("INVALID_NODE_ID", 'node id "bad.id" must be 1 to 128 letters, digits, _ or -'),
      err("DUPLICATE_NODE_ID", 'node id "a" is used more than once', "a"),
      err("MISSING_AGENT_ID", 'node "w": AGENT needs config.agentId (a non-empty string)', "w"),
      err("MISSING_TASK", 'node "w": AGENT needs config.task (a non-empty string)', "w"),
      err("INVALID_DELAY", 'node "d": DELAY needs config.seconds, a number ≥ 0', "d"),
      err("INVALID_TIMEOUT", 'node "b": timeoutMs must be 1 to 86400000, got 0', "b"),
      err("MISSING_TRIGGER", "the pipeline needs at least one TRIGGER node"),
      err("UNKNOWN_EDGE_NODE", 'edge "a" → "ghost" names unknown node "ghost"', "ghost"),
      err("SELF_LOOP", 'edge "a" → "a" leads from node "a" to itself', "a"),
      err(
        "INVALID_BRANCH",
        'edge "a" → "b" (TRUE) has a branch but "a" is a PARALLEL, not a CONDITION',
        "a",
      ),
      err("DUPLICATE_EDGE", 'edge "a" → "b" appears more than once', "a"),
      err("CYCLE", 'cycle: "a" → "b" → "a"', "a"),
    ]);
  });

  it("uses the catalog it is given for action names and settings", () => {
    const catalog: ActionCatalog = {
      has: (name) => name === "slack",
      check: (name, config) =>
        typeof config.channel === "string" ? [] : [`${name} needs config.channel`],
    };
    const definition = pipeline(
      [
        trigger(),
        node("s", "ACTION", { action: "slack" }),
        node("ok", "ACTION", { action: "slack", channel: "#ops" }),
        node("h", "ACTION", { action: "http", url: "http://x/" }),
      ],
      chain("t", "s", "ok", "h"),
    );
    expect(validatePipeline(definition, { actions: catalog })).toEqual([
      err("INVALID_ACTION_CONFIG", 'node "s": slack needs config.channel', "s"),
      err("UNKNOWN_ACTION", 'node "h": unknown action "http"', "h"),
    ]);
  });
});

// ---------------------------------------------------------------------------------------------

describe("validationFailureMessage", () => {
  it("joins the errors with their codes after 'Validation failed:'", () => {
    const errors = validatePipeline(normalizeDefinition({ name: "", nodes: [pass("a")] }));
    expect(validationFailureMessage(errors)).toBe(
      "Validation failed: [INVALID_NAME] pipeline name must be 1 to 200 characters; " +
        "[MISSING_TRIGGER] the pipeline needs at least one TRIGGER node",
    );
  });

  it("formats a single error", () => {
    expect(validationFailureMessage([err("CYCLE", 'cycle: "a" → "b" → "a"', "a")])).toBe(
      'Validation failed: [CYCLE] cycle: "a" → "b" → "a"',
    );
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

describe("large graphs", () => {
  const size = 10_000;
  const ids = Array.from({ length: size }, (_, i) => `n${i}`);
  const nodes = ids.map((id, i) => (i === 0 ? trigger(id) : pass(id)));

  it("compiles a 10,000-node chain", () => {
    const p = compiled(pipeline(nodes, chain(...ids)));
    expect(p.order).toEqual(ids);
  });

  it("compiles a 10,000-node chain defined in reverse order", () => {
    const p = compiled(pipeline([...nodes].reverse(), chain(...ids)));
    expect(p.order).toEqual(ids);
  });

  it("reports a 10,000-node chain closed into a cycle as one cycle", () => {
    const errors = validatePipeline(
      pipeline(nodes, [...chain(...ids), edge(ids[size - 1]!, "n1")]),
    );
    const onCycle = ids.slice(1);
    expect(errors).toEqual([
      err("CYCLE", `cycle: ${[...onCycle, "n1"].map((id) => `"${id}"`).join(" → ")}`, "n1"),
    ]);
  });

  it("reports a 10,000-node cycle no trigger reaches", () => {
    const loop = pipeline(
      [trigger(), ...ids.map(pass)],
      [...chain(...ids), edge(ids[size - 1]!, ids[0]!)],
    );
    const errors = validatePipeline(loop, { maxNodes: size + 1 });
    expect(errors).toEqual([
      err("CYCLE", `cycle: ${[...ids, "n0"].map((id) => `"${id}"`).join(" → ")}`, "n0"),
      ...ids.map((id) =>
        err("UNREACHABLE_NODE", `node "${id}" cannot be reached from a TRIGGER`, id),
      ),
    ]);
  });
});

// ---------------------------------------------------------------------------------------------

describe("compileExpression", () => {
  const context = (
    input: unknown,
    inputs: Record<string, unknown> = {},
    trigger: unknown = null,
  ) => ({
    inputs,
    input,
    trigger,
  });

  function expression(source: string) {
    const result = compileExpression(source);
    if (!result.ok) throw new Error(`expected ${source} to compile: ${result.message}`);
    expect(result.expression.source).toBe(source);
    return result.expression;
  }

  it('evaluates "true" and "false"', () => {
    expect(expression("true").evaluate(context(null))).toBe(true);
    expect(expression("false").evaluate(context({ result: true }))).toBe(false);
  });

  it('evaluates "input.result" by truthiness', () => {
    const e = expression("input.result");
    const cases: [unknown, boolean][] = [
      [true, true],
      [false, false],
      ["yes", true],
      ["", false],
      [0, false],
      [1, true],
      [2.5, true],
      [null, false],
      [[], false],
      [[0], true],
    ];
    for (const [result, expected] of cases) {
      expect(e.evaluate(context({ result })), JSON.stringify(result)).toBe(expected);
    }
  });

  it("compares a JS number with an int literal", () => {
    const e = expression("inputs.fetch.status == 200");
    expect(e.evaluate(context(null, { fetch: { status: 200 } }))).toBe(true);
    expect(e.evaluate(context(null, { fetch: { status: 404 } }))).toBe(false);
  });

  it("sees trigger data and the inputs map", () => {
    expect(expression("trigger.priority > 2").evaluate(context(null, {}, { priority: 3 }))).toBe(
      true,
    );
    expect(expression("trigger.priority > 2").evaluate(context(null, {}, { priority: 2 }))).toBe(
      false,
    );
    expect(expression("size(inputs) == 2").evaluate(context(null, { a: 1, b: 2 }))).toBe(true);
  });

  it("throws at evaluate time on a missing key", () => {
    const e = expression("inputs.fetch.status == 200");
    expect(() => e.evaluate(context(null, {}))).toThrow("No such key: fetch");
    expect(() => expression("input.result").evaluate(context({}))).toThrow("No such key: result");
  });

  it("rejects syntax errors with a one-line message", () => {
    expect(compileExpression("true &&")).toEqual({ ok: false, message: "Unexpected token: EOF" });
    expect(compileExpression("inputs.")).toEqual({
      ok: false,
      message: "Expected IDENTIFIER, got EOF",
    });
  });

  it("rejects unknown variables and non-bool types", () => {
    expect(compileExpression("result == 1")).toEqual({
      ok: false,
      message: "Unknown variable: result",
    });
    expect(compileExpression("1 + 2")).toEqual({
      ok: false,
      message: "expression must return a bool, it returns int",
    });
    expect(compileExpression("'abc'")).toEqual({
      ok: false,
      message: "expression must return a bool, it returns string",
    });
  });

  it("rejects empty expressions", () => {
    expect(compileExpression("")).toEqual({ ok: false, message: "expression is empty" });
    expect(compileExpression(" \n ")).toEqual({ ok: false, message: "expression is empty" });
  });

  it("accepts MAX_EXPRESSION_LENGTH characters and rejects one more", () => {
    expect(MAX_EXPRESSION_LENGTH).toBe(4096);
    const longest = `true${" ".repeat(MAX_EXPRESSION_LENGTH - 4)}`;
    expect(expression(longest).evaluate(context(null))).toBe(true);
    expect(compileExpression(`${longest} `)).toEqual({
      ok: false,
      message: "expression is longer than 4096 characters",
    });
  });
});
