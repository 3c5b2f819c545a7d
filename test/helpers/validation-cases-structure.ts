/**
 * Validation cases on the shape of a pipeline: its name and size, node ids and types, triggers,
 * edges, branches, cycles and reachability. test/dag-validation.test.ts runs them together with
 * the cases of validation-cases-config.ts and checks that every validation code has one.
 */
import { normalizeDefinition } from "../../src/domain/definition.ts";
import {
  type CodeCase,
  chain,
  condition,
  edge,
  err,
  log,
  node,
  pass,
  pipeline,
  trigger,
} from "./definitions.ts";

/** Invalid shapes of pipeline, each with exactly the errors it must get. */
export const structureCases: CodeCase[] = [
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
];
