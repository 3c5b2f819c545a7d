/**
 * Pipeline graphs: validation (every rule, each with a stable code), the topological order the
 * executor follows, and the compiled form it runs. No GraphQL, no storage.
 */

import {
  EDGE_BRANCHES,
  type EdgeDefinition,
  NODE_TYPES,
  type NodeDefinition,
  type PipelineDefinition,
} from "../domain/definition.ts";
import type { ActionCatalog, ValidationCode, ValidationError } from "../domain/validation.ts";
import type { CompiledExpression } from "./expressions.ts";
import { findCycles, reachableFrom, topologicalOrder } from "./graph.ts";
import {
  checkBreaker,
  checkNodeConfig,
  checkNodePolicies,
  isPlainObject,
  isWhole,
  MAX_ATTEMPTS,
} from "./node-rules.ts";

export interface ValidationOptions {
  /** @default 10000 */
  readonly maxNodes?: number;
  /** @default 50000 */
  readonly maxEdges?: number;
  /** Largest node config in bytes of JSON. @default 65536 */
  readonly maxConfigBytes?: number;
  /** Without a catalog only the built-in `http` and `log` actions are known. */
  readonly actions?: ActionCatalog;
}

export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
const MAX_NAME_LENGTH = 200;

const builtinActions: ActionCatalog = {
  has: (name) => name === "http" || name === "log",
  check: () => [],
};

/** A validated pipeline in the form the executor runs. */
export interface CompiledPipeline {
  readonly definition: PipelineDefinition;
  readonly nodes: ReadonlyMap<string, NodeDefinition>;
  /** Topological order; ties keep definition order. */
  readonly order: readonly string[];
  readonly outgoing: ReadonlyMap<string, readonly EdgeDefinition[]>;
  readonly incoming: ReadonlyMap<string, readonly EdgeDefinition[]>;
  readonly conditions: ReadonlyMap<string, CompiledExpression>;
}

export type CompileOutcome =
  | { readonly valid: true; readonly pipeline: CompiledPipeline; readonly errors: readonly [] }
  | { readonly valid: false; readonly errors: readonly ValidationError[] };

function edgeKey(edge: EdgeDefinition): string {
  return `${edge.source}\u0000${edge.target}\u0000${edge.branch ?? ""}`;
}

function describeEdge(edge: EdgeDefinition): string {
  return `"${edge.source}" → "${edge.target}"${edge.branch ? ` (${edge.branch})` : ""}`;
}

/**
 * Validates a definition and, when it is valid, compiles it. Every problem is reported, not
 * only the first; the order of errors follows the order of the rules above.
 */
export function compilePipeline(
  definition: PipelineDefinition,
  options: ValidationOptions = {},
): CompileOutcome {
  const maxNodes = options.maxNodes ?? 10_000;
  const maxEdges = options.maxEdges ?? 50_000;
  const maxConfigBytes = options.maxConfigBytes ?? 64 * 1024;
  const actions = options.actions ?? builtinActions;
  const errors: ValidationError[] = [];
  const report = (code: ValidationCode, message: string, nodeId?: string) =>
    errors.push(nodeId === undefined ? { code, message } : { code, message, nodeId });

  if (
    typeof definition.name !== "string" ||
    !definition.name.trim() ||
    definition.name.length > MAX_NAME_LENGTH
  ) {
    report("INVALID_NAME", `pipeline name must be 1 to ${MAX_NAME_LENGTH} characters`);
  }
  if (!isWhole(definition.maxRetriesPerNode, 1, MAX_ATTEMPTS)) {
    report(
      "INVALID_SETTING",
      `maxRetriesPerNode must be 1 to ${MAX_ATTEMPTS}, got ${definition.maxRetriesPerNode}`,
    );
  }
  if (!isWhole(definition.timeoutSeconds, 1, 30 * 24 * 3600)) {
    report(
      "INVALID_SETTING",
      `timeoutSeconds must be 1 to ${30 * 24 * 3600}, got ${definition.timeoutSeconds}`,
    );
  }
  if (definition.maxConcurrency != null && !isWhole(definition.maxConcurrency, 1, 100_000)) {
    report(
      "INVALID_SETTING",
      `maxConcurrency must be 1 to 100000, got ${definition.maxConcurrency}`,
    );
  }
  checkBreaker(definition.breaker, "breaker", report);

  // Past the size limits no node or edge is looked at, so a huge document costs little.
  if (definition.nodes.length > maxNodes) {
    report("TOO_MANY_NODES", `${definition.nodes.length} nodes; the limit is ${maxNodes}`);
  }
  if (definition.edges.length > maxEdges) {
    report("TOO_MANY_EDGES", `${definition.edges.length} edges; the limit is ${maxEdges}`);
  }
  if (errors.some((e) => e.code === "TOO_MANY_NODES" || e.code === "TOO_MANY_EDGES")) {
    return { valid: false, errors };
  }
  if (definition.nodes.length === 0) report("NO_NODES", "the pipeline has no nodes");

  const nodes = new Map<string, NodeDefinition>();
  const conditions = new Map<string, CompiledExpression>();
  for (const node of definition.nodes) {
    const nodeReport = (code: ValidationCode, message: string) => report(code, message, node.id);
    if (typeof node.id !== "string" || !NODE_ID_PATTERN.test(node.id)) {
      report(
        "INVALID_NODE_ID",
        `node id "${String(node.id).slice(0, 140)}" must be 1 to 128 letters, digits, _ or -`,
      );
      continue;
    }
    if (nodes.has(node.id)) {
      nodeReport("DUPLICATE_NODE_ID", `node id "${node.id}" is used more than once`);
      continue;
    }
    nodes.set(node.id, node);
    if (!NODE_TYPES.includes(node.type)) {
      nodeReport("INVALID_NODE_TYPE", `node "${node.id}": unknown type "${String(node.type)}"`);
      continue;
    }
    if (!isPlainObject(node.config)) {
      nodeReport("INVALID_CONFIG", `node "${node.id}": config must be a JSON object`);
      continue;
    }
    const bytes = Buffer.byteLength(JSON.stringify(node.config));
    if (bytes > maxConfigBytes) {
      nodeReport(
        "INVALID_CONFIG",
        `node "${node.id}": config is ${bytes} bytes; the limit is ${maxConfigBytes}`,
      );
      continue;
    }
    checkNodeConfig(node, definition, actions, conditions, nodeReport);
    checkNodePolicies(node, nodeReport);
  }
  const triggers = [...nodes.values()].filter((node) => node.type === "TRIGGER");
  if (nodes.size > 0 && triggers.length === 0) {
    report("MISSING_TRIGGER", "the pipeline needs at least one TRIGGER node");
  }

  const outgoing = new Map<string, EdgeDefinition[]>([...nodes.keys()].map((id) => [id, []]));
  const incoming = new Map<string, EdgeDefinition[]>([...nodes.keys()].map((id) => [id, []]));
  const seenEdges = new Set<string>();
  for (const raw of definition.edges) {
    const source = nodes.get(raw.source);
    const target = nodes.get(raw.target);
    if (!source || !target) {
      const missing = [!source ? raw.source : null, !target ? raw.target : null].filter(
        (id) => id !== null,
      );
      report(
        "UNKNOWN_EDGE_NODE",
        `edge ${describeEdge(raw)} names unknown node${missing.length > 1 ? "s" : ""} ${missing.map((id) => `"${id}"`).join(" and ")}`,
        source ? raw.target : raw.source,
      );
      continue;
    }
    if (raw.source === raw.target) {
      report(
        "SELF_LOOP",
        `edge ${describeEdge(raw)} leads from node "${raw.source}" to itself`,
        raw.source,
      );
      continue;
    }
    if (raw.branch != null && !EDGE_BRANCHES.includes(raw.branch)) {
      report(
        "INVALID_BRANCH",
        `edge ${describeEdge(raw)}: unknown branch "${String(raw.branch)}"`,
        raw.source,
      );
      continue;
    }
    if (raw.branch != null && source.type !== "CONDITION") {
      report(
        "INVALID_BRANCH",
        `edge ${describeEdge(raw)} has a branch but "${raw.source}" is a ${source.type}, not a CONDITION`,
        raw.source,
      );
      continue;
    }
    // Out of a CONDITION an edge without a branch follows TRUE; normalise so TRUE and unset
    // count as the same edge.
    const edge: EdgeDefinition =
      source.type === "CONDITION"
        ? { source: raw.source, target: raw.target, branch: raw.branch ?? "TRUE" }
        : { source: raw.source, target: raw.target };
    const key = edgeKey(edge);
    if (seenEdges.has(key)) {
      report("DUPLICATE_EDGE", `edge ${describeEdge(edge)} appears more than once`, raw.source);
      continue;
    }
    seenEdges.add(key);
    if (target.type === "TRIGGER") {
      report(
        "TRIGGER_HAS_INPUT",
        `edge ${describeEdge(edge)} leads into TRIGGER "${raw.target}"`,
        raw.target,
      );
      continue;
    }
    outgoing.get(edge.source)!.push(edge);
    incoming.get(edge.target)!.push(edge);
  }

  const ids = [...nodes.keys()];
  const { order, remaining } = topologicalOrder(ids, outgoing);
  for (const cycle of findCycles(remaining, outgoing)) {
    report("CYCLE", `cycle: ${cycle.map((id) => `"${id}"`).join(" → ")}`, cycle[0]);
  }

  // Reachability from the triggers (cycles included: a node on a cycle may still be reachable).
  const reached = reachableFrom(
    triggers.map((node) => node.id),
    outgoing,
  );
  if (triggers.length > 0) {
    for (const id of ids) {
      if (!reached.has(id))
        report("UNREACHABLE_NODE", `node "${id}" cannot be reached from a TRIGGER`, id);
    }
  }

  if (errors.length > 0) return { valid: false, errors };
  return {
    valid: true,
    errors: [],
    pipeline: { definition, nodes, order, outgoing, incoming, conditions },
  };
}

/** Validation only. */
export function validatePipeline(
  definition: PipelineDefinition,
  options?: ValidationOptions,
): readonly ValidationError[] {
  return compilePipeline(definition, options).errors;
}
