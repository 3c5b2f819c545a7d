/** Pipelines: the stored definitions, their CRUD and validation (through the engine). */
import {
  type BreakerSettings,
  EDGE_BRANCHES,
  type EdgeDefinition,
  NODE_TYPES,
  type NodeDefinition,
  type PipelineInput,
  type RetrySettings,
} from "../domain/definition.ts";
import { AppError, BadInputError, NotFoundError } from "../domain/errors.ts";
import type { PipelineRecord } from "../domain/records.ts";
import { VALIDATION_CODES, type ValidationError } from "../domain/validation.ts";
import { builder, describedValues } from "./builder.ts";
import type { GraphQLContext } from "./context.ts";
import { pageArgs, toConnection } from "./pagination.ts";

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

const ValidationErrorRef = builder.objectRef<ValidationError>("ValidationError").implement({
  description: `One problem with a definition. Codes: ${Object.keys(VALIDATION_CODES).join(", ")}.`,
  fields: (t) => ({
    code: t.exposeString("code", { description: "Stable code of the problem." }),
    message: t.exposeString("message", { description: "The problem, naming the nodes involved." }),
    nodeId: t.string({
      nullable: true,
      description: "The node the problem is about, where there is one.",
      resolve: (e) => e.nodeId ?? null,
    }),
  }),
});

const ValidationResult = builder
  .objectRef<{ errors: readonly ValidationError[] }>("ValidationResult")
  .implement({
    description: "The outcome of validating a definition.",
    fields: (t) => ({
      valid: t.boolean({
        description: "True when there is no error: the pipeline can run.",
        resolve: (r) => r.errors.length === 0,
      }),
      errors: t.field({
        type: [ValidationErrorRef],
        description: "Every problem found.",
        resolve: (r) => [...r.errors],
      }),
    }),
  });

export const PipelineRef = builder.loadableObject("Pipeline", {
  description: "A stored pipeline: its current definition, counters, runs and breakers.",
  load: async (ids: string[], ctx: GraphQLContext) =>
    (await ctx.store.getPipelines(ids)).map(
      (pipeline, i) => pipeline ?? new NotFoundError("pipeline", ids[i]!),
    ),
  fields: (t) => ({
    id: t.exposeID("id", { description: "A UUIDv7: ids sort by creation time." }),
    name: t.string({ description: "The pipeline's name.", resolve: (p) => p.definition.name }),
    nodes: t.field({
      type: [PipelineNode],
      description: "The nodes, in definition order.",
      resolve: (p) => [...p.definition.nodes],
    }),
    edges: t.field({
      type: [PipelineEdge],
      description: "The edges, in definition order.",
      resolve: (p) => [...p.definition.edges],
    }),
    maxRetriesPerNode: t.int({
      description: "Default attempts per node, the first included.",
      resolve: (p) => p.definition.maxRetriesPerNode,
    }),
    timeoutSeconds: t.int({
      description: "A run still going after this long ends TIMED_OUT.",
      resolve: (p) => p.definition.timeoutSeconds,
    }),
    maxConcurrency: t.int({
      nullable: true,
      description: "Node executions at once within one run; null: only the server's limit applies.",
      resolve: (p) => p.definition.maxConcurrency,
    }),
    breaker: t.field({
      type: BreakerSettingsRef,
      description: "Breaker settings of the nodes that set none of their own.",
      resolve: (p) => p.definition.breaker,
    }),
    runCount: t.exposeInt("runCount", { description: "Runs started." }),
    successCount: t.exposeInt("successCount", { description: "Runs COMPLETED." }),
    errorCount: t.exposeInt("errorCount", { description: "Runs FAILED or TIMED_OUT." }),
    version: t.exposeInt("version", { description: "1 when created; every update adds one." }),
    createdAt: t.expose("createdAt", { type: "DateTime", description: "When it was created." }),
    updatedAt: t.expose("updatedAt", {
      type: "DateTime",
      description: "When its definition last changed (or its creation).",
    }),
    validation: t.field({
      type: ValidationResult,
      description:
        "The stored definition checked against the current rules; a run of an invalid pipeline fails.",
      resolve: (p, _args, ctx) => ({ errors: ctx.engine.compile(p.definition).errors }),
    }),
  }),
});

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

/** The GraphQL input as the engine takes it (its JSON `config` is checked by the engine). */
const fromInput = (input: typeof PipelineInputRef.$inferInput) => input as PipelineInput;

async function loadPipeline(ctx: GraphQLContext, id: string): Promise<PipelineRecord> {
  const [pipeline] = await ctx.store.getPipelines([id]);
  if (!pipeline) throw new NotFoundError("pipeline", id);
  return pipeline;
}

// The edge type cannot be `PipelineEdge`: that name is the contract's edge of a pipeline's graph.
const PipelineConnection = builder.connectionObject(
  { type: PipelineRef, name: "PipelineConnection", description: "A page of pipelines." },
  { name: "PipelineConnectionEdge", description: "A pipeline with its cursor." },
);

builder.queryFields((t) => ({
  pipelines: t.field({
    type: PipelineConnection,
    description: "Pipelines, newest first.",
    args: { ...t.arg.connectionArgs() },
    resolve: async (_root, args, ctx) => {
      const page = pageArgs(args);
      return toConnection(await ctx.store.listPipelines(page), page);
    },
  }),
  pipeline: t.field({
    type: PipelineRef,
    nullable: true,
    description: "One pipeline; null when there is none with this id.",
    args: { id: t.arg.id({ required: true, description: "The pipeline's id." }) },
    resolve: async (_root, { id }, ctx) => (await ctx.store.getPipelines([id]))[0] ?? null,
  }),
}));

builder.mutationFields((t) => ({
  createPipeline: t.field({
    type: PipelineRef,
    description:
      "Stores a pipeline. An invalid one is stored too (see Pipeline.validation) but cannot run.",
    args: {
      input: t.arg({ type: PipelineInputRef, required: true, description: "The definition." }),
    },
    resolve: (_root, { input }, ctx) =>
      ctx.store.createPipeline(ctx.engine.definitionFromInput(fromInput(input))),
  }),
  updatePipeline: t.field({
    type: PipelineRef,
    description:
      "Replaces the definition. Runs already started keep the definition they started with.",
    args: {
      id: t.arg.id({ required: true, description: "The pipeline to change." }),
      input: t.arg({ type: PipelineInputRef, required: true, description: "The new definition." }),
    },
    resolve: async (_root, { id, input }, ctx) => {
      const updated = await ctx.store.updatePipeline(
        id,
        ctx.engine.definitionFromInput(fromInput(input)),
      );
      if (!updated) throw new NotFoundError("pipeline", id);
      return updated;
    },
  }),
  deletePipeline: t.boolean({
    description:
      "Deletes the pipeline with its runs, events and breakers. False when there was none. Refused while a run is QUEUED or RUNNING.",
    args: { id: t.arg.id({ required: true, description: "The pipeline to delete." }) },
    resolve: async (_root, { id }, ctx) => {
      const outcome = await ctx.store.deletePipeline(id);
      if (outcome === "has_active_runs") {
        throw new AppError(
          "PIPELINE_HAS_ACTIVE_RUNS",
          `pipeline "${id}" has runs in progress; cancel them first`,
          { id },
        );
      }
      return outcome === "deleted";
    },
  }),
  validatePipeline: t.field({
    type: ValidationResult,
    description:
      "Validates a stored pipeline (id) or a definition that is not stored; give one of the two.",
    args: {
      id: t.arg.id({ description: "A stored pipeline to validate." }),
      definition: t.arg({ type: PipelineInputRef, description: "A definition to validate." }),
    },
    resolve: async (_root, { id, definition }, ctx) => {
      if ((id == null) === (definition == null)) {
        throw new BadInputError(
          "validatePipeline takes either id or definition, not both or neither",
        );
      }
      const stored = id != null ? (await loadPipeline(ctx, id)).definition : undefined;
      // Too many nodes is a validation finding here, not a refused request.
      const checked = stored ?? ctx.engine.definitionFromInput(fromInput(definition!), false);
      return { errors: ctx.engine.compile(checked).errors };
    },
  }),
}));
