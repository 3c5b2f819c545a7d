/**
 * Validation findings: the stable codes clients switch on, the shape of one finding, and the
 * validator's view of the registered actions. The rules themselves live in engine/dag.ts.
 */
import type { JsonObject } from "./json.ts";

/** Stable validation codes. Clients may switch on them; they never change meaning. */
export const VALIDATION_CODES = {
  INVALID_NAME: "pipeline name is empty or too long",
  TOO_MANY_NODES: "more nodes than the configured limit",
  TOO_MANY_EDGES: "more edges than the configured limit",
  NO_NODES: "the pipeline has no nodes",
  INVALID_NODE_ID:
    "node id is empty, too long or has characters other than letters, digits, _ and -",
  INVALID_NODE_TYPE: "node type is not one of the NodeType values",
  DUPLICATE_NODE_ID: "two nodes share an id",
  MISSING_TRIGGER: "no TRIGGER node",
  TRIGGER_HAS_INPUT: "an edge leads into a TRIGGER node",
  UNKNOWN_EDGE_NODE: "an edge names a node that does not exist",
  SELF_LOOP: "an edge leads from a node to itself",
  DUPLICATE_EDGE: "the same edge appears twice",
  INVALID_BRANCH: "a branch on an edge whose source is not a CONDITION",
  CYCLE: "the edges form a cycle",
  UNREACHABLE_NODE: "no path leads from a TRIGGER to the node",
  INVALID_CONFIG: "a node's config is not an object or too large",
  MISSING_AGENT_ID: "an AGENT node has no config.agentId",
  MISSING_TASK: "an AGENT node has no config.task",
  MISSING_EXPRESSION: "a CONDITION node has no config.expression",
  INVALID_EXPRESSION: "a CONDITION expression does not compile",
  MISSING_ACTION: "an ACTION node has no config.action",
  UNKNOWN_ACTION: "an ACTION node names an action that is not registered",
  INVALID_ACTION_CONFIG: "an action's own settings are wrong",
  INVALID_DELAY: "a DELAY's config.seconds is missing, negative or too long",
  INVALID_RETRY: "retry settings out of range",
  INVALID_TIMEOUT: "timeoutMs out of range",
  INVALID_BREAKER: "breaker settings out of range",
  INVALID_SETTING: "a pipeline setting out of range",
} as const;
export type ValidationCode = keyof typeof VALIDATION_CODES;

export interface ValidationError {
  readonly code: ValidationCode;
  readonly message: string;
  readonly nodeId?: string;
}

/** Actions known to the validator; the registry in nodes/actions.ts is one. */
export interface ActionCatalog {
  has(name: string): boolean;
  /** Problems with an action's settings, as readable sentences; empty when they are fine. */
  check(name: string, config: JsonObject): readonly string[];
}

/** Formats errors the way a FAILED run of an invalid pipeline reports them. */
export function validationFailureMessage(errors: readonly ValidationError[]): string {
  return `Validation failed: ${errors.map((e) => `[${e.code}] ${e.message}`).join("; ")}`;
}
