/**
 * The pipeline definition: what a user stores, validates and runs. Plain data, no GraphQL.
 */
import type { JsonObject } from "./json.ts";

export const NODE_TYPES = ["TRIGGER", "AGENT", "CONDITION", "ACTION", "PARALLEL", "DELAY"] as const;
export type NodeType = (typeof NODE_TYPES)[number];

export const EDGE_BRANCHES = ["TRUE", "FALSE"] as const;
export type EdgeBranch = (typeof EDGE_BRANCHES)[number];

/** Retry policy of one node. Every field falls back to the pipeline's defaults. */
export interface RetrySettings {
  /** Calls in all, the first included. @default the pipeline's `maxRetriesPerNode` */
  readonly maxAttempts?: number | null;
  /** Wait before the second attempt; doubles with each further one. @default 1000 */
  readonly initialDelayMs?: number | null;
  /** Longest wait between two attempts. @default 60000 */
  readonly maxDelayMs?: number | null;
  /** Randomise waits (full jitter) so that many failing runs do not retry in step. @default false */
  readonly jitter?: boolean | null;
}

/** Circuit breaker settings; per node they override the pipeline's. */
export interface BreakerSettings {
  /** Consecutive failed executions that open the breaker. @default 5 */
  readonly failureThreshold?: number | null;
  /** How long an open breaker refuses calls before one trial call is let through. @default 60000 */
  readonly recoveryTimeoutMs?: number | null;
}

export interface NodeDefinition {
  readonly id: string;
  readonly type: NodeType;
  readonly name?: string | null;
  readonly config: JsonObject;
  readonly retry?: RetrySettings | null;
  /** Limit for one attempt; an attempt that takes longer fails and may be retried. */
  readonly timeoutMs?: number | null;
  /** A failure does not fail the run: the node's output becomes `{ error }` and the run goes on. */
  readonly continueOnFail?: boolean | null;
  readonly breaker?: BreakerSettings | null;
}

export interface EdgeDefinition {
  readonly source: string;
  readonly target: string;
  /** Only on edges out of a CONDITION: which outcome the edge follows. @default "TRUE" there */
  readonly branch?: EdgeBranch | null;
}

export interface PipelineDefinition {
  readonly name: string;
  readonly nodes: readonly NodeDefinition[];
  readonly edges: readonly EdgeDefinition[];
  readonly maxRetriesPerNode: number;
  readonly timeoutSeconds: number;
  /** Node executions at once within one run; unset means only the global limit applies. */
  readonly maxConcurrency: number | null;
  readonly breaker: Required<{ [K in keyof BreakerSettings]: number }>;
}

/** A node as a client sends it: `config` may be left out. */
export type NodeInput = Omit<NodeDefinition, "config"> & { readonly config?: JsonObject | null };

/** What a client sends; settings it leaves out take {@link DEFINITION_DEFAULTS}. */
export interface PipelineInput {
  readonly name: string;
  readonly nodes: readonly NodeInput[];
  readonly edges?: readonly EdgeDefinition[] | null;
  readonly maxRetriesPerNode?: number | null;
  readonly timeoutSeconds?: number | null;
  readonly maxConcurrency?: number | null;
  readonly breaker?: BreakerSettings | null;
}

export const DEFINITION_DEFAULTS = {
  maxRetriesPerNode: 3,
  timeoutSeconds: 3600,
  initialDelayMs: 1000,
  maxDelayMs: 60_000,
  failureThreshold: 5,
  recoveryTimeoutMs: 60_000,
} as const;

/** Fills in defaults. Does not validate: see `validatePipeline` in dag.ts. */
export function normalizeDefinition(input: PipelineInput): PipelineDefinition {
  return {
    name: input.name,
    nodes: input.nodes.map((node) => ({ ...node, config: node.config ?? {} })),
    edges: (input.edges ?? []).map((edge) => ({ ...edge })),
    maxRetriesPerNode: input.maxRetriesPerNode ?? DEFINITION_DEFAULTS.maxRetriesPerNode,
    timeoutSeconds: input.timeoutSeconds ?? DEFINITION_DEFAULTS.timeoutSeconds,
    maxConcurrency: input.maxConcurrency ?? null,
    breaker: {
      failureThreshold: input.breaker?.failureThreshold ?? DEFINITION_DEFAULTS.failureThreshold,
      recoveryTimeoutMs: input.breaker?.recoveryTimeoutMs ?? DEFINITION_DEFAULTS.recoveryTimeoutMs,
    },
  };
}

/** The effective retry policy of a node. */
export function retryPolicyOf(
  node: NodeDefinition,
  pipeline: Pick<PipelineDefinition, "maxRetriesPerNode">,
): Required<{ [K in keyof RetrySettings]: NonNullable<RetrySettings[K]> }> {
  return {
    maxAttempts: node.retry?.maxAttempts ?? pipeline.maxRetriesPerNode,
    initialDelayMs: node.retry?.initialDelayMs ?? DEFINITION_DEFAULTS.initialDelayMs,
    maxDelayMs: node.retry?.maxDelayMs ?? DEFINITION_DEFAULTS.maxDelayMs,
    jitter: node.retry?.jitter ?? false,
  };
}

/** The effective breaker settings of a node. */
export function breakerSettingsOf(
  node: NodeDefinition,
  pipeline: Pick<PipelineDefinition, "breaker">,
): { failureThreshold: number; recoveryTimeoutMs: number } {
  return {
    failureThreshold: node.breaker?.failureThreshold ?? pipeline.breaker.failureThreshold,
    recoveryTimeoutMs: node.breaker?.recoveryTimeoutMs ?? pipeline.breaker.recoveryTimeoutMs,
  };
}

/** Node types whose calls reach outside the process and are guarded by a circuit breaker. */
export const BREAKER_NODE_TYPES: ReadonlySet<NodeType> = new Set(["ACTION", "AGENT"]);
