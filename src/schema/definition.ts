/**
 * Pipeline definitions as GraphQL types: the graph's nodes and edges with their settings, as
 * read (on a pipeline and on each of its versions) and as written (PipelineInput).
 */
import {
  type BreakerSettings,
  EDGE_BRANCHES,
  type EdgeDefinition,
  NODE_TYPES,
  type NodeDefinition,
  type PipelineDefinition,
  type RetrySettings,
} from "../domain/definition.ts";
import { builder, describedValues } from "./builder.ts";

export const NodeTypeEnum = builder.enumType("NodeType", {
  description: "What a node does (its settings are in `config`; see the README's node types).",
  values: describedValues(NODE_TYPES, {
    TRIGGER: "Starts the graph; its output is the run's triggerData.",
    AGENT:
      "Calls the agent named by config.agentId with config.task (simulated when none is registered).",
    CONDITION:
      "Evaluates the CEL expression config.expression; its TRUE or FALSE edges are followed.",
    ACTION: "Runs the named action config.action: http, log, or one registered in code.",
    PARALLEL: "Passes its inputs on; fan-out is the edges leaving it.",
    DELAY: "Waits config.seconds (cancellable), then passes its input on.",
  }),
});
export const EdgeBranchEnum = builder.enumType("EdgeBranch", {
  description: "Which outcome of a CONDITION an edge follows.",
  values: describedValues(EDGE_BRANCHES, {
    TRUE: "Followed when the condition holds (the default).",
    FALSE: "Followed when the condition does not hold, or its expression failed.",
  }),
});

const RetryPolicy = builder.objectRef<RetrySettings>("RetryPolicy").implement({
  description: "A node's retry settings; unset fields take the pipeline's defaults.",
  fields: (t) => ({
    maxAttempts: t.int({
      nullable: true,
      description: "Calls in all, the first included.",
      resolve: (r) => r.maxAttempts ?? null,
    }),
    initialDelayMs: t.int({
      nullable: true,
      description: "Wait before attempt 2; doubles each time.",
      resolve: (r) => r.initialDelayMs ?? null,
    }),
    maxDelayMs: t.int({
      nullable: true,
      description: "Longest wait between attempts.",
      resolve: (r) => r.maxDelayMs ?? null,
    }),
    jitter: t.boolean({
      nullable: true,
      description: "Whether waits are randomised.",
      resolve: (r) => r.jitter ?? null,
    }),
  }),
});

export const BreakerSettingsRef = builder.objectRef<BreakerSettings>("BreakerSettings").implement({
  description: "Circuit-breaker settings; a node's unset fields take the pipeline's.",
  fields: (t) => ({
    failureThreshold: t.int({
      nullable: true,
      description: "Consecutive failed executions that open the breaker.",
      resolve: (b) => b.failureThreshold ?? null,
    }),
    recoveryTimeoutMs: t.int({
      nullable: true,
      description: "Time an open breaker waits before one trial call.",
      resolve: (b) => b.recoveryTimeoutMs ?? null,
    }),
  }),
});

export const PipelineNode = builder.objectRef<NodeDefinition>("PipelineNode").implement({
  description: "A node of a pipeline's graph.",
  fields: (t) => ({
    id: t.exposeString("id", { description: "Unique within the pipeline; edges name it." }),
    type: t.field({
      type: NodeTypeEnum,
      description: "What the node does.",
      resolve: (node) => node.type,
    }),
    name: t.string({
      nullable: true,
      description: "A label for people.",
      resolve: (node) => node.name ?? null,
    }),
    config: t.field({
      type: "JSON",
      description: "Settings of the node type (see the README's node types).",
      resolve: (node) => node.config,
    }),
    retry: t.field({
      type: RetryPolicy,
      nullable: true,
      description: "Its retry settings; null: the pipeline's defaults.",
      resolve: (node) => node.retry ?? null,
    }),
    timeoutMs: t.int({
      nullable: true,
      description: "Limit of one attempt; a slower attempt fails and may be retried.",
      resolve: (node) => node.timeoutMs ?? null,
    }),
    continueOnFail: t.boolean({
      description: "On failure the output is {error} and the run goes on.",
      resolve: (node) => node.continueOnFail ?? false,
    }),
    breaker: t.field({
      type: BreakerSettingsRef,
      nullable: true,
      description: "Its breaker settings; null: the pipeline's.",
      resolve: (node) => node.breaker ?? null,
    }),
  }),
});

export const PipelineEdge = builder.objectRef<EdgeDefinition>("PipelineEdge").implement({
  description: "An edge of the graph: the target runs after the source has settled.",
  fields: (t) => ({
    source: t.exposeString("source", { description: "The id of the node it leaves." }),
    target: t.exposeString("target", { description: "The id of the node it enters." }),
    branch: t.field({
      type: EdgeBranchEnum,
      nullable: true,
      description: "On edges out of a CONDITION: the outcome it follows (null: TRUE).",
      resolve: (edge) => edge.branch ?? null,
    }),
  }),
});

type Types = typeof builder.$inferSchemaTypes;

/**
 * The fields of a definition on an object that holds one (a pipeline, one of its versions):
 * `definitionOf` finds it in the parent.
 */
export function definitionFields<Parent>(
  t: PothosSchemaTypes.ObjectFieldBuilder<Types, Parent>,
  definitionOf: (parent: Parent) => PipelineDefinition,
) {
  return {
    name: t.string({ description: "The pipeline's name.", resolve: (p) => definitionOf(p).name }),
    nodes: t.field({
      type: [PipelineNode],
      description: "The nodes, in definition order.",
      resolve: (p) => [...definitionOf(p).nodes],
    }),
    edges: t.field({
      type: [PipelineEdge],
      description: "The edges, in definition order.",
      resolve: (p) => [...definitionOf(p).edges],
    }),
    maxRetriesPerNode: t.int({
      description: "Default attempts per node, the first included.",
      resolve: (p) => definitionOf(p).maxRetriesPerNode,
    }),
    timeoutSeconds: t.int({
      description: "A run still going after this long ends TIMED_OUT.",
      resolve: (p) => definitionOf(p).timeoutSeconds,
    }),
    maxConcurrency: t.int({
      nullable: true,
      description: "Node executions at once within one run; null: only the server's limit applies.",
      resolve: (p) => definitionOf(p).maxConcurrency,
    }),
    breaker: t.field({
      type: BreakerSettingsRef,
      description: "Breaker settings of the nodes that set none of their own.",
      resolve: (p) => definitionOf(p).breaker,
    }),
  };
}

const RetryPolicyInput = builder.inputType("RetryPolicyInput", {
  description: "A node's retry settings; unset fields take the pipeline's defaults.",
  fields: (t) => ({
    maxAttempts: t.int({
      description: "Calls in all, the first included. Default: the pipeline's maxRetriesPerNode.",
    }),
    initialDelayMs: t.int({
      description: "Wait before attempt 2; doubles each time. Default 1000.",
    }),
    maxDelayMs: t.int({ description: "Longest wait between attempts. Default 60000." }),
    jitter: t.boolean({ description: "Randomise waits. Default false." }),
  }),
});

const BreakerSettingsInput = builder.inputType("BreakerSettingsInput", {
  description: "Circuit-breaker settings; unset fields take the defaults.",
  fields: (t) => ({
    failureThreshold: t.int({
      description: "Consecutive failed executions that open the breaker. Default 5.",
    }),
    recoveryTimeoutMs: t.int({
      description: "Time an open breaker waits before one trial call. Default 60000.",
    }),
  }),
});

const PipelineNodeInput = builder.inputType("PipelineNodeInput", {
  description: "A node of a definition.",
  fields: (t) => ({
    id: t.string({
      required: true,
      description: "1 to 128 letters, digits, _ and -; unique within the pipeline.",
    }),
    type: t.field({ type: NodeTypeEnum, required: true, description: "What the node does." }),
    name: t.string({ description: "A label for people." }),
    config: t.field({ type: "JSON", description: "Settings of the node type (see README)." }),
    retry: t.field({ type: RetryPolicyInput, description: "Its retry settings." }),
    timeoutMs: t.int({
      description: "Limit for one attempt; a slower attempt fails and may be retried.",
    }),
    continueOnFail: t.boolean({
      description: "On failure the output is {error} and the run goes on.",
    }),
    breaker: t.field({
      type: BreakerSettingsInput,
      description: "This node's breaker settings (ACTION and AGENT nodes).",
    }),
  }),
});

const PipelineEdgeInput = builder.inputType("PipelineEdgeInput", {
  description: "An edge of a definition.",
  fields: (t) => ({
    source: t.string({ required: true, description: "The id of the node it leaves." }),
    target: t.string({ required: true, description: "The id of the node it enters." }),
    branch: t.field({
      type: EdgeBranchEnum,
      description: "Only on edges out of a CONDITION; default TRUE.",
    }),
  }),
});

export const PipelineInputRef = builder.inputType("PipelineInput", {
  description: "A pipeline definition, as created, updated or validated.",
  fields: (t) => ({
    name: t.string({ required: true, description: "1 to 200 characters." }),
    nodes: t.field({
      type: [PipelineNodeInput],
      required: true,
      description: "The nodes; at least one TRIGGER.",
    }),
    edges: t.field({ type: [PipelineEdgeInput], description: "The edges. Default: none." }),
    maxRetriesPerNode: t.int({
      description: "Default attempts per node, the first included. Default 3.",
    }),
    timeoutSeconds: t.int({
      description: "A run still going after this long ends TIMED_OUT. Default 3600.",
    }),
    maxConcurrency: t.int({
      description: "Node executions at once within one run. Default: no per-run limit.",
    }),
    breaker: t.field({
      type: BreakerSettingsInput,
      description: "Breaker settings of the nodes that set none of their own.",
    }),
  }),
});
