/**
 * Seeded fuzz test of pipeline validation: ~400 random definitions, some well formed, some well
 * formed and then broken, some chaos. Every property is checked against an independent reading
 * of the definition (own DFS, own reachability), not against the validator's internals.
 */
import { describe, expect, it } from "vitest";
import {
  type EdgeDefinition,
  NODE_TYPES,
  type NodeDefinition,
  type NodeType,
  normalizeDefinition,
  type PipelineDefinition,
  type PipelineInput,
} from "../src/domain/definition.ts";
import type { JsonObject, JsonValue } from "../src/domain/json.ts";
import { VALIDATION_CODES } from "../src/domain/validation.ts";
import { type CompileOutcome, compilePipeline, type ValidationOptions } from "../src/engine/dag.ts";
import { ActionRegistry } from "../src/engine/nodes/actions.ts";

const SEED = 0x5eed_da6;
const CASES = 400;

/** mulberry32: a small deterministic PRNG. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Random {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }
  /** A whole number in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.#next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.#next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Generators

const INVALID_IDS = ["", "bad id", "a.b", "né", "x".repeat(129), "semi;colon"];
const INVALID_TYPES = ["WEBHOOK", "trigger", "", "Condition"];
const VALID_EXPRESSIONS = ["true", "false", "input.result", "inputs.x.y == 1", "trigger.a > 2"];
const BAD_EXPRESSIONS = ["true &&", "1 + 2", "", "unknown == 1", "'s'", "inputs."];

function validConfig(random: Random, type: NodeType): JsonObject {
  switch (type) {
    case "AGENT":
      return { agentId: random.pick(["writer", "reader"]), task: "do {{input}}" };
    case "CONDITION":
      return { expression: random.pick(VALID_EXPRESSIONS) };
    case "ACTION":
      return random.chance(0.5)
        ? { action: "log", message: "m" }
        : { action: "http", url: "http://127.0.0.1:9/x" };
    case "DELAY":
      return { seconds: random.int(0, 3600) };
    case "TRIGGER":
    case "PARALLEL":
      return {};
  }
}

function randomConfig(random: Random, type: string): JsonObject {
  if (random.chance(0.05)) return random.pick([[], "x", 5]) as unknown as JsonObject;
  if (NODE_TYPES.includes(type as NodeType) && random.chance(0.5)) {
    return validConfig(random, type as NodeType);
  }
  const config: Record<string, JsonValue> = {};
  if (random.chance(0.5)) config.agentId = random.pick(["writer", "", " ", 3]);
  if (random.chance(0.5)) config.task = random.pick(["t", "", 0]);
  if (random.chance(0.5)) {
    config.expression = random.pick<JsonValue>([...VALID_EXPRESSIONS, ...BAD_EXPRESSIONS, true]);
  }
  if (random.chance(0.5)) config.action = random.pick(["http", "log", "slack", "", 1]);
  if (random.chance(0.3)) config.url = random.pick(["http://x/", "ftp://x", ""]);
  if (random.chance(0.5)) {
    config.seconds = random.pick<JsonValue>([0, 5, -1, 3600, 3601, 604_801, 1e12, "5", null]);
  }
  if (random.chance(0.02)) config.blob = "b".repeat(70_000);
  return config;
}

function randomPolicies(random: Random): Partial<NodeDefinition> {
  const extra: {
    retry?: NodeDefinition["retry"];
    timeoutMs?: number;
    breaker?: NodeDefinition["breaker"];
  } = {};
  if (random.chance(0.1)) {
    extra.retry = {
      maxAttempts: random.pick([null, 0, 1, 3, 100, 101, 2.5]),
      initialDelayMs: random.pick([null, -1, 0, 100, 5000]),
      maxDelayMs: random.pick([null, 50, 60_000, 86_400_001]),
    };
  }
  if (random.chance(0.1)) extra.timeoutMs = random.pick([0, 1, 5000, 86_400_001]);
  if (random.chance(0.1)) {
    extra.breaker = {
      failureThreshold: random.pick([null, 0, 5, 10_001]),
      recoveryTimeoutMs: random.pick([null, -1, 0, 60_000]),
    };
  }
  return extra;
}

function randomSettings(random: Random): Partial<PipelineInput> {
  if (!random.chance(0.1)) return {};
  return {
    name: random.pick(["", "p", " ", "n".repeat(201)]),
    maxRetriesPerNode: random.pick([null, 0, 1, 101]),
    timeoutSeconds: random.pick([null, 0, 60, 3600, 2_592_001]),
    maxConcurrency: random.pick([null, 0, 4, 100_001]),
    breaker: { failureThreshold: random.pick([null, 0, 5]), recoveryTimeoutMs: null },
  };
}

/** A well-formed DAG: n0 is a TRIGGER, every other node has 1 to 3 edges from earlier ones. */
function wellFormed(random: Random): { nodes: NodeDefinition[]; edges: EdgeDefinition[] } {
  const count = random.int(1, 40);
  const nodes: NodeDefinition[] = [];
  const edges: EdgeDefinition[] = [];
  const kinds = NODE_TYPES.filter((t) => t !== "TRIGGER");
  for (let i = 0; i < count; i++) {
    const type: NodeType = i === 0 || random.chance(0.05) ? "TRIGGER" : random.pick(kinds);
    nodes.push({ id: `n${i}`, type, config: validConfig(random, type) });
    if (type === "TRIGGER") continue;
    const sources = new Set(Array.from({ length: random.int(1, 3) }, () => random.int(0, i - 1)));
    for (const j of sources) {
      const source = nodes[j]!;
      const branch =
        source.type === "CONDITION"
          ? random.pick([undefined, "TRUE", "FALSE"] as const)
          : undefined;
      edges.push(
        branch
          ? { source: source.id, target: `n${i}`, branch }
          : { source: source.id, target: `n${i}` },
      );
    }
  }
  return { nodes: random.shuffle(nodes), edges: random.shuffle(edges) };
}

/** Breaks a well-formed DAG in one to three ways. */
function mutated(random: Random): { nodes: NodeDefinition[]; edges: EdgeDefinition[] } {
  const { nodes, edges } = wellFormed(random);
  const ids = () => nodes.map((n) => n.id);
  for (let k = random.int(1, 3); k > 0; k--) {
    const a = random.pick(ids());
    const b = random.pick(ids());
    switch (random.int(0, 10)) {
      case 0:
      case 1: {
        // A back edge: from a later node to an earlier non-trigger one, usually a cycle.
        const [x, y] = [Number(a.slice(1)), Number(b.slice(1))].sort((p, q) => p - q);
        edges.push({ source: `n${y}`, target: `n${x}` });
        break;
      }
      case 2:
        edges.push({ source: a, target: a });
        break;
      case 3:
        if (edges.length > 0) edges.push({ ...random.pick(edges) });
        break;
      case 4:
        edges.push(
          random.chance(0.5) ? { source: a, target: "ghost" } : { source: "ghost", target: b },
        );
        break;
      case 5:
        edges.push({ source: a, target: b, branch: random.pick(["TRUE", "FALSE"] as const) });
        break;
      case 6: {
        const i = random.int(0, nodes.length - 1);
        nodes[i] = { ...nodes[i]!, id: random.chance(0.5) ? b : random.pick(INVALID_IDS) };
        break;
      }
      case 7:
        nodes.push({ id: `lonely${k}`, type: "PARALLEL", config: {} });
        break;
      case 8: {
        const i = random.int(0, nodes.length - 1);
        nodes[i] = { ...nodes[i]!, type: random.pick(["PARALLEL", "WEBHOOK"]) as NodeType };
        break;
      }
      case 9: {
        const i = random.int(0, nodes.length - 1);
        nodes[i] = { ...nodes[i]!, config: randomConfig(random, nodes[i]!.type) };
        break;
      }
      case 10: {
        const triggers = nodes.filter((n) => n.type === "TRIGGER");
        if (triggers.length > 0) edges.push({ source: a, target: random.pick(triggers).id });
        break;
      }
    }
  }
  return { nodes: random.shuffle(nodes), edges: random.shuffle(edges) };
}

function chaos(random: Random): { nodes: NodeDefinition[]; edges: EdgeDefinition[] } {
  const count = random.int(0, 40);
  const types = [...NODE_TYPES, "TRIGGER", "TRIGGER", ...INVALID_TYPES];
  const nodes: NodeDefinition[] = [];
  for (let i = 0; i < count; i++) {
    const id = random.chance(0.85) ? `n${random.int(0, count)}` : random.pick(INVALID_IDS);
    const type = random.pick(types);
    nodes.push({
      id,
      type: type as NodeType,
      config: randomConfig(random, type),
      ...randomPolicies(random),
    });
  }
  const endpoint = () =>
    nodes.length > 0 && random.chance(0.85) ? random.pick(nodes).id : `ghost${random.int(0, 3)}`;
  const edges: EdgeDefinition[] = [];
  const edgeCount = random.int(0, 2 * count + 2);
  for (let i = 0; i < edgeCount; i++) {
    if (edges.length > 0 && random.chance(0.08)) {
      edges.push({ ...random.pick(edges) });
      continue;
    }
    const source = endpoint();
    const target = random.chance(0.05) ? source : endpoint();
    const branch = random.pick([
      undefined,
      undefined,
      undefined,
      undefined,
      null,
      "TRUE",
      "FALSE",
      "MAYBE",
    ]);
    edges.push(
      branch === undefined
        ? { source, target }
        : { source, target, branch: branch as EdgeDefinition["branch"] },
    );
  }
  return { nodes, edges };
}

interface FuzzCase {
  readonly index: number;
  readonly definition: PipelineDefinition;
  readonly options: ValidationOptions;
}

const actions = new ActionRegistry({ httpAllowlist: [] });

function generateCases(): FuzzCase[] {
  const random = new Random(SEED);
  const cases: FuzzCase[] = [];
  for (let index = 0; index < CASES; index++) {
    const mode = index % 3;
    const { nodes, edges } =
      mode === 0 ? chaos(random) : mode === 1 ? wellFormed(random) : mutated(random);
    const options: { maxNodes?: number; maxEdges?: number; actions?: ActionRegistry } = {};
    if (random.chance(0.04)) options.maxNodes = random.int(1, 40);
    if (random.chance(0.04)) options.maxEdges = random.int(0, 40);
    // The registry also checks each action's settings; the default catalog only knows names.
    if (random.chance(0.3)) options.actions = actions;
    const settings = mode === 0 ? randomSettings(random) : {};
    const definition = normalizeDefinition({ name: `fuzz ${index}`, ...settings, nodes, edges });
    cases.push({ index, definition, options });
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// An independent reading of a definition

const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** The nodes the validator keeps: the first node of each valid id. */
function knownNodes(definition: PipelineDefinition): Map<string, NodeDefinition> {
  const known = new Map<string, NodeDefinition>();
  for (const node of definition.nodes) {
    if (typeof node.id === "string" && ID_PATTERN.test(node.id) && !known.has(node.id)) {
      known.set(node.id, node);
    }
  }
  return known;
}

function graphOf(nodes: Iterable<string>, edges: readonly EdgeDefinition[]) {
  const successors = new Map<string, string[]>();
  for (const id of nodes) successors.set(id, []);
  for (const e of edges) {
    if (e.source !== e.target && successors.has(e.source) && successors.has(e.target)) {
      successors.get(e.source)!.push(e.target);
    }
  }
  return successors;
}

/** Three-colour DFS (recursive: graphs here have at most ~45 nodes). */
function hasCycle(successors: Map<string, string[]>): boolean {
  const colour = new Map<string, "grey" | "black">();
  const visit = (id: string): boolean => {
    colour.set(id, "grey");
    for (const next of successors.get(id)!) {
      const c = colour.get(next);
      if (c === "grey") return true;
      if (c === undefined && visit(next)) return true;
    }
    colour.set(id, "black");
    return false;
  };
  return [...successors.keys()].some((id) => !colour.has(id) && visit(id));
}

function reachable(successors: Map<string, string[]>, roots: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const stack = [...roots];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...successors.get(id)!);
  }
  return seen;
}

/** The edges that take part in the graph: known ends, no self-loop, a legal branch, no input to a TRIGGER. */
function keptEdges(definition: PipelineDefinition, known: Map<string, NodeDefinition>) {
  return definition.edges.filter((e) => {
    const source = known.get(e.source);
    const target = known.get(e.target);
    if (!source || !target || e.source === e.target) return false;
    if (e.branch != null && (source.type !== "CONDITION" || !["TRUE", "FALSE"].includes(e.branch)))
      return false;
    return target.type !== "TRIGGER";
  });
}

/** The strongly connected component of `id`, as a sorted, comma-joined key. */
function stronglyConnected(successors: Map<string, string[]>, id: string): string {
  const forward = reachable(successors, [id]);
  return [...forward]
    .filter((other) => reachable(successors, [other]).has(id))
    .sort()
    .join(",");
}

function cycleIds(message: string): string[] | null {
  if (!message.startsWith("cycle: ")) return null;
  const ids = [...message.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
  const rebuilt = `cycle: ${ids.map((id) => `"${id}"`).join(" → ")}`;
  return rebuilt === message ? ids : null;
}

const WITHOUT_NODE_ID = new Set([
  "INVALID_NAME",
  "TOO_MANY_NODES",
  "TOO_MANY_EDGES",
  "NO_NODES",
  "INVALID_NODE_ID",
  "MISSING_TRIGGER",
  "INVALID_SETTING",
]);

// ---------------------------------------------------------------------------------------------

const cases = generateCases();
const results: { fuzz: FuzzCase; outcome?: CompileOutcome; thrown?: unknown }[] = cases.map(
  (fuzz) => {
    try {
      return { fuzz, outcome: compilePipeline(fuzz.definition, fuzz.options) };
    } catch (thrown) {
      return { fuzz, thrown };
    }
  },
);
const outcomes = results.flatMap(({ fuzz, outcome }) => (outcome ? [{ fuzz, outcome }] : []));

function sizeLimited({ fuzz }: { fuzz: FuzzCase }): boolean {
  return (
    fuzz.definition.nodes.length > (fuzz.options.maxNodes ?? 10_000) ||
    fuzz.definition.edges.length > (fuzz.options.maxEdges ?? 50_000)
  );
}

describe(`validation fuzz (seed ${SEED}, ${CASES} definitions)`, () => {
  it("never throws", () => {
    const thrown = results
      .filter((r) => r.thrown !== undefined)
      .map((r) => `case ${r.fuzz.index}: ${String(r.thrown)}`);
    expect(thrown).toEqual([]);
    expect(outcomes).toHaveLength(CASES);
  });

  it("reports only codes of VALIDATION_CODES, each with a one-line message", () => {
    const problems: string[] = [];
    for (const { fuzz, outcome } of outcomes) {
      for (const e of outcome.errors) {
        if (!Object.hasOwn(VALIDATION_CODES, e.code)) {
          problems.push(`case ${fuzz.index}: code ${e.code}`);
        }
        if (typeof e.message !== "string" || !/^[^\n]+$/.test(e.message)) {
          problems.push(`case ${fuzz.index}: message ${JSON.stringify(e.message)}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("is valid exactly when there are no errors", () => {
    const problems = outcomes
      .filter(({ outcome }) => outcome.valid !== (outcome.errors.length === 0))
      .map(({ fuzz }) => fuzz.index);
    expect(problems).toEqual([]);
  });

  it("orders every node of a valid pipeline once, every edge forward", () => {
    const problems: string[] = [];
    for (const { fuzz, outcome } of outcomes) {
      if (!outcome.valid) continue;
      const { definition } = fuzz;
      const { order, outgoing, incoming, conditions } = outcome.pipeline;
      const ids = definition.nodes.map((n) => n.id);
      if (JSON.stringify([...order].sort()) !== JSON.stringify([...ids].sort())) {
        problems.push(`case ${fuzz.index}: order ${order} vs nodes ${ids}`);
        continue;
      }
      const position = new Map(order.map((id, i) => [id, i]));
      for (const e of definition.edges) {
        if (!(position.get(e.source)! < position.get(e.target)!)) {
          problems.push(`case ${fuzz.index}: edge ${e.source} → ${e.target} goes backwards`);
        }
      }
      const outCount = [...outgoing.values()].reduce((sum, list) => sum + list.length, 0);
      const inCount = [...incoming.values()].reduce((sum, list) => sum + list.length, 0);
      if (outCount !== definition.edges.length || inCount !== definition.edges.length) {
        problems.push(`case ${fuzz.index}: ${outCount}/${inCount} edges compiled`);
      }
      const conditionIds = definition.nodes.filter((n) => n.type === "CONDITION").map((n) => n.id);
      if (JSON.stringify([...conditions.keys()]) !== JSON.stringify(conditionIds)) {
        problems.push(`case ${fuzz.index}: conditions ${[...conditions.keys()]}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("accepts only pipelines whose ids are unique and valid and whose nodes a trigger reaches", () => {
    const problems: string[] = [];
    for (const { fuzz, outcome } of outcomes) {
      if (!outcome.valid) continue;
      const { definition } = fuzz;
      const ids = definition.nodes.map((n) => n.id);
      if (new Set(ids).size !== ids.length || !ids.every((id) => ID_PATTERN.test(id))) {
        problems.push(`case ${fuzz.index}: ids ${ids}`);
      }
      const triggers = definition.nodes.filter((n) => n.type === "TRIGGER").map((n) => n.id);
      const reached = reachable(graphOf(ids, definition.edges), triggers);
      if (triggers.length === 0 || reached.size !== ids.length) {
        problems.push(`case ${fuzz.index}: reached ${reached.size} of ${ids.length}`);
      }
      if (definition.edges.some((e) => triggers.includes(e.target))) {
        problems.push(`case ${fuzz.index}: an edge into a trigger`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("lists real, disjoint cycles along the definition's edges", () => {
    const problems: string[] = [];
    for (const { fuzz, outcome } of outcomes) {
      const known = knownNodes(fuzz.definition);
      const edgeSet = new Set(fuzz.definition.edges.map((e) => `${e.source}\u0000${e.target}`));
      const onCycles = new Set<string>();
      for (const e of outcome.errors) {
        if (e.code !== "CYCLE") continue;
        const ids = cycleIds(e.message);
        const at = `case ${fuzz.index}: ${e.message}`;
        if (!ids || ids.length < 3 || ids[0] !== ids[ids.length - 1]) {
          problems.push(`${at}: not a closed list of nodes`);
          continue;
        }
        if (e.nodeId !== ids[0]) problems.push(`${at}: nodeId ${e.nodeId}`);
        const members = ids.slice(0, -1);
        if (new Set(members).size !== members.length) problems.push(`${at}: repeats a node`);
        for (let i = 0; i + 1 < ids.length; i++) {
          const [u, v] = [ids[i]!, ids[i + 1]!];
          if (!known.has(u) || !known.has(v) || !edgeSet.has(`${u}\u0000${v}`)) {
            problems.push(`${at}: no edge ${u} → ${v}`);
          }
        }
        for (const id of members) {
          if (onCycles.has(id)) problems.push(`${at}: ${id} is on two reported cycles`);
          onCycles.add(id);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("reports a cycle exactly when the edges it keeps have one", () => {
    const problems: string[] = [];
    for (const { fuzz, outcome } of outcomes) {
      const known = knownNodes(fuzz.definition);
      const reported = outcome.errors.some((e) => e.code === "CYCLE");
      const anyEdges = hasCycle(graphOf(known.keys(), fuzz.definition.edges));
      if (!anyEdges && reported) problems.push(`case ${fuzz.index}: CYCLE on acyclic edges`);
      if (sizeLimited({ fuzz })) {
        if (reported) problems.push(`case ${fuzz.index}: CYCLE past the size limits`);
        continue;
      }
      const kept = graphOf(known.keys(), keptEdges(fuzz.definition, known));
      if (hasCycle(kept) !== reported) {
        problems.push(`case ${fuzz.index}: cyclic ${hasCycle(kept)}, reported ${reported}`);
      }
      // One CYCLE per strongly connected component of more than one node, and its nodes in it.
      const components = new Set(
        [...kept.keys()].map((id) => stronglyConnected(kept, id)).filter((c) => c.includes(",")),
      );
      const cycles = outcome.errors.flatMap((e) =>
        e.code === "CYCLE" ? [cycleIds(e.message)] : [],
      );
      const covered = new Set(cycles.map((ids) => (ids ? stronglyConnected(kept, ids[0]!) : "?")));
      if (cycles.length !== components.size || covered.size !== components.size) {
        problems.push(
          `case ${fuzz.index}: ${cycles.length} cycles for ${components.size} components`,
        );
      }
      for (const ids of cycles) {
        const component = ids ? stronglyConnected(kept, ids[0]!).split(",") : [];
        if (!ids?.every((id) => component.includes(id))) {
          problems.push(`case ${fuzz.index}: cycle ${ids} leaves its component`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("reports exactly the nodes no path from a trigger reaches, once each", () => {
    const problems: string[] = [];
    for (const { fuzz, outcome } of outcomes) {
      if (sizeLimited({ fuzz })) continue;
      const known = knownNodes(fuzz.definition);
      const triggers = [...known.values()].filter((n) => n.type === "TRIGGER").map((n) => n.id);
      const reported = outcome.errors
        .filter((e) => e.code === "UNREACHABLE_NODE")
        .map((e) => e.nodeId!);
      if (new Set(reported).size !== reported.length) {
        problems.push(`case ${fuzz.index}: an unreachable node reported twice`);
      }
      if (triggers.length === 0) {
        if (reported.length > 0) problems.push(`case ${fuzz.index}: unreachable without trigger`);
        continue;
      }
      // Reachable along every edge among known nodes is a superset of the validator's view.
      const reached = reachable(graphOf(known.keys(), fuzz.definition.edges), triggers);
      for (const id of known.keys()) {
        if (!reached.has(id) && !reported.includes(id)) {
          problems.push(`case ${fuzz.index}: ${id} is unreachable but not reported`);
        }
      }
      // Along the edges the validator keeps, the reported nodes are exactly the unreached ones.
      const reachedKept = reachable(
        graphOf(known.keys(), keptEdges(fuzz.definition, known)),
        triggers,
      );
      const expected = [...known.keys()].filter((id) => !reachedKept.has(id));
      if (JSON.stringify(reported) !== JSON.stringify(expected)) {
        problems.push(`case ${fuzz.index}: reported ${reported}, expected ${expected}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("names in nodeId a node of the definition, or an unknown edge end", () => {
    const problems: string[] = [];
    for (const { fuzz, outcome } of outcomes) {
      const known = knownNodes(fuzz.definition);
      const ends = new Set(fuzz.definition.edges.flatMap((e) => [e.source, e.target]));
      for (const e of outcome.errors) {
        const at = `case ${fuzz.index}: ${e.code} ${JSON.stringify(e.nodeId)}`;
        if (WITHOUT_NODE_ID.has(e.code)) {
          if (e.nodeId !== undefined) problems.push(`${at}: should have no nodeId`);
        } else if (e.code === "UNKNOWN_EDGE_NODE") {
          if (e.nodeId === undefined || !ends.has(e.nodeId) || known.has(e.nodeId)) {
            problems.push(`${at}: not an unknown edge end`);
          }
        } else if (e.nodeId === undefined) {
          if (e.code !== "INVALID_BREAKER" || !e.message.startsWith("breaker.")) {
            problems.push(`${at}: missing nodeId`);
          }
        } else if (!known.has(e.nodeId) || !e.message.includes(`"${e.nodeId}"`)) {
          problems.push(`${at}: not a node named in the message`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("looks at nothing but the settings past the size limits", () => {
    const settingCodes = new Set(["INVALID_NAME", "INVALID_SETTING", "INVALID_BREAKER"]);
    const problems: string[] = [];
    for (const { fuzz, outcome } of outcomes) {
      if (!sizeLimited({ fuzz })) continue;
      const { nodes, edges } = fuzz.definition;
      const expected = [
        ...(nodes.length > (fuzz.options.maxNodes ?? 10_000)
          ? [`${nodes.length} nodes; the limit is ${fuzz.options.maxNodes}`]
          : []),
        ...(edges.length > (fuzz.options.maxEdges ?? 50_000)
          ? [`${edges.length} edges; the limit is ${fuzz.options.maxEdges}`]
          : []),
      ];
      const sizes = outcome.errors
        .filter((e) => e.code.startsWith("TOO_MANY_"))
        .map((e) => e.message);
      const others = outcome.errors.filter(
        (e) => !e.code.startsWith("TOO_MANY_") && !settingCodes.has(e.code),
      );
      if (JSON.stringify(sizes) !== JSON.stringify(expected) || others.length > 0) {
        problems.push(`case ${fuzz.index}: ${JSON.stringify(outcome.errors)}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("gives the same answer twice", () => {
    const problems = outcomes
      .filter(
        ({ fuzz, outcome }) =>
          JSON.stringify(compilePipeline(fuzz.definition, fuzz.options).errors) !==
          JSON.stringify(outcome.errors),
      )
      .map(({ fuzz }) => fuzz.index);
    expect(problems).toEqual([]);
  });

  it("exercises valid pipelines, cycles, the size limits and every code", () => {
    const valid = outcomes.filter(({ outcome }) => outcome.valid).length;
    const withCycle = outcomes.filter(({ outcome }) =>
      outcome.errors.some((e) => e.code === "CYCLE"),
    ).length;
    const limited = outcomes.filter(sizeLimited).length;
    const codes = new Set(outcomes.flatMap(({ outcome }) => outcome.errors.map((e) => e.code)));
    expect(valid).toBeGreaterThanOrEqual(100);
    expect(withCycle).toBeGreaterThanOrEqual(25);
    expect(limited).toBeGreaterThanOrEqual(5);
    expect([...codes].sort()).toEqual(Object.keys(VALIDATION_CODES).sort());
  });
});
