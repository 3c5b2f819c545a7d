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
import { builder } from "./builder.ts";
import type { GraphQLContext } from "./context.ts";
import { pageArgs, toConnection } from "./pagination.ts";

export const NodeTypeEnum = builder.enumType("NodeType", { values: NODE_TYPES });
export const EdgeBranchEnum = builder.enumType("EdgeBranch", { values: EDGE_BRANCHES });

const RetryPolicy = builder.objectRef<RetrySettings>("RetryPolicy").implement({
  description: "A node's retry settings; unset fields take the pipeline's defaults.",
  fields: (t) => ({
    maxAttempts: t.int({
      nullable: true,
      description: "Calls in all, the first included.",
      resolve: (r) => r.maxAttempts ?? null,
    }),
    initialDelayMs: t.int({ nullable: true, resolve: (r) => r.initialDelayMs ?? null }),
    maxDelayMs: t.int({ nullable: true, resolve: (r) => r.maxDelayMs ?? null }),
    jitter: t.boolean({ nullable: true, resolve: (r) => r.jitter ?? null }),
  }),
});

export const BreakerSettingsRef = builder.objectRef<BreakerSettings>("BreakerSettings").implement({
  fields: (t) => ({
    failureThreshold: t.int({ nullable: true, resolve: (b) => b.failureThreshold ?? null }),
    recoveryTimeoutMs: t.int({ nullable: true, resolve: (b) => b.recoveryTimeoutMs ?? null }),
  }),
});

export const PipelineNode = builder.objectRef<NodeDefinition>("PipelineNode").implement({
  fields: (t) => ({
    id: t.exposeString("id"),
    type: t.field({ type: NodeTypeEnum, resolve: (node) => node.type }),
    name: t.string({ nullable: true, resolve: (node) => node.name ?? null }),
    config: t.field({ type: "JSON", resolve: (node) => node.config }),
    retry: t.field({ type: RetryPolicy, nullable: true, resolve: (node) => node.retry ?? null }),
    timeoutMs: t.int({ nullable: true, resolve: (node) => node.timeoutMs ?? null }),
    continueOnFail: t.boolean({ resolve: (node) => node.continueOnFail ?? false }),
    breaker: t.field({
      type: BreakerSettingsRef,
      nullable: true,
      resolve: (node) => node.breaker ?? null,
    }),
  }),
});

export const PipelineEdge = builder.objectRef<EdgeDefinition>("PipelineEdge").implement({
  fields: (t) => ({
    source: t.exposeString("source"),
    target: t.exposeString("target"),
    branch: t.field({
      type: EdgeBranchEnum,
      nullable: true,
      resolve: (edge) => edge.branch ?? null,
    }),
  }),
});

const ValidationErrorRef = builder.objectRef<ValidationError>("ValidationError").implement({
  description: `One problem with a definition. Codes: ${Object.keys(VALIDATION_CODES).join(", ")}.`,
  fields: (t) => ({
    code: t.exposeString("code"),
    message: t.exposeString("message"),
    nodeId: t.string({ nullable: true, resolve: (e) => e.nodeId ?? null }),
  }),
});

const ValidationResult = builder
  .objectRef<{ errors: readonly ValidationError[] }>("ValidationResult")
  .implement({
    fields: (t) => ({
      valid: t.boolean({ resolve: (r) => r.errors.length === 0 }),
      errors: t.field({ type: [ValidationErrorRef], resolve: (r) => [...r.errors] }),
    }),
  });

export const PipelineRef = builder.loadableObject("Pipeline", {
  load: async (ids: string[], ctx: GraphQLContext) =>
    (await ctx.store.getPipelines(ids)).map(
      (pipeline, i) => pipeline ?? new NotFoundError("pipeline", ids[i]!),
    ),
  fields: (t) => ({
    id: t.exposeID("id"),
    name: t.string({ resolve: (p) => p.definition.name }),
    nodes: t.field({ type: [PipelineNode], resolve: (p) => [...p.definition.nodes] }),
    edges: t.field({ type: [PipelineEdge], resolve: (p) => [...p.definition.edges] }),
    maxRetriesPerNode: t.int({ resolve: (p) => p.definition.maxRetriesPerNode }),
    timeoutSeconds: t.int({ resolve: (p) => p.definition.timeoutSeconds }),
    maxConcurrency: t.int({
      nullable: true,
      description: "Node executions at once within one run; null: only the server's limit applies.",
      resolve: (p) => p.definition.maxConcurrency,
    }),
    breaker: t.field({ type: BreakerSettingsRef, resolve: (p) => p.definition.breaker }),
    runCount: t.exposeInt("runCount"),
    successCount: t.exposeInt("successCount"),
    errorCount: t.exposeInt("errorCount"),
    version: t.exposeInt("version", { description: "1 when created; every update adds one." }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
    validation: t.field({
      type: ValidationResult,
      description:
        "The stored definition checked against the current rules; a run of an invalid pipeline fails.",
      resolve: (p, _args, ctx) => ({ errors: ctx.engine.compile(p.definition).errors }),
    }),
  }),
});

const RetryPolicyInput = builder.inputType("RetryPolicyInput", {
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
  fields: (t) => ({
    id: t.string({ required: true }),
    type: t.field({ type: NodeTypeEnum, required: true }),
    name: t.string(),
    config: t.field({ type: "JSON", description: "Settings of the node type (see README)." }),
    retry: t.field({ type: RetryPolicyInput }),
    timeoutMs: t.int({
      description: "Limit for one attempt; a slower attempt fails and may be retried.",
    }),
    continueOnFail: t.boolean({
      description: "On failure the output is {error} and the run goes on.",
    }),
    breaker: t.field({ type: BreakerSettingsInput }),
  }),
});

const PipelineEdgeInput = builder.inputType("PipelineEdgeInput", {
  fields: (t) => ({
    source: t.string({ required: true }),
    target: t.string({ required: true }),
    branch: t.field({
      type: EdgeBranchEnum,
      description: "Only on edges out of a CONDITION; default TRUE.",
    }),
  }),
});

export const PipelineInputRef = builder.inputType("PipelineInput", {
  fields: (t) => ({
    name: t.string({ required: true }),
    nodes: t.field({ type: [PipelineNodeInput], required: true }),
    edges: t.field({ type: [PipelineEdgeInput] }),
    maxRetriesPerNode: t.int({
      description: "Default attempts per node, the first included. Default 3.",
    }),
    timeoutSeconds: t.int({
      description: "A run still going after this long ends TIMED_OUT. Default 3600.",
    }),
    maxConcurrency: t.int({
      description: "Node executions at once within one run. Default: no per-run limit.",
    }),
    breaker: t.field({ type: BreakerSettingsInput }),
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
  { type: PipelineRef, name: "PipelineConnection" },
  { name: "PipelineConnectionEdge" },
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
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx) => (await ctx.store.getPipelines([id]))[0] ?? null,
  }),
}));

builder.mutationFields((t) => ({
  createPipeline: t.field({
    type: PipelineRef,
    description:
      "Stores a pipeline. An invalid one is stored too (see Pipeline.validation) but cannot run.",
    args: { input: t.arg({ type: PipelineInputRef, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.store.createPipeline(ctx.engine.definitionFromInput(fromInput(input))),
  }),
  updatePipeline: t.field({
    type: PipelineRef,
    description:
      "Replaces the definition. Runs already started keep the definition they started with.",
    args: {
      id: t.arg.id({ required: true }),
      input: t.arg({ type: PipelineInputRef, required: true }),
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
    args: { id: t.arg.id({ required: true }) },
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
    args: { id: t.arg.id(), definition: t.arg({ type: PipelineInputRef }) },
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
