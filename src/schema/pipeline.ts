/** Pipelines: the stored definitions, their CRUD and validation (through the engine). */
import type { PipelineInput } from "../domain/definition.ts";
import { AppError, BadInputError, NotFoundError } from "../domain/errors.ts";
import type { PipelineRecord } from "../domain/records.ts";
import { VALIDATION_CODES, type ValidationError } from "../domain/validation.ts";
import { builder, requires } from "./builder.ts";
import type { GraphQLContext } from "./context.ts";
import { definitionFields, PipelineInputRef } from "./definition.ts";
import { pageArgs, toConnection } from "./pagination.ts";

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
    ...definitionFields(t, (p) => p.definition),
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
    authScopes: requires("viewer"),
    type: PipelineConnection,
    description: "Pipelines, newest first.",
    args: { ...t.arg.connectionArgs() },
    resolve: async (_root, args, ctx) => {
      const page = pageArgs(args);
      return toConnection(await ctx.store.listPipelines(page), page);
    },
  }),
  pipeline: t.field({
    authScopes: requires("viewer"),
    type: PipelineRef,
    nullable: true,
    description: "One pipeline; null when there is none with this id.",
    args: { id: t.arg.id({ required: true, description: "The pipeline's id." }) },
    resolve: async (_root, { id }, ctx) => (await ctx.store.getPipelines([id]))[0] ?? null,
  }),
}));

builder.mutationFields((t) => ({
  createPipeline: t.field({
    authScopes: requires("admin"),
    type: PipelineRef,
    description:
      "Stores a pipeline. An invalid one is stored too (see Pipeline.validation) but cannot run.",
    args: {
      input: t.arg({ type: PipelineInputRef, required: true, description: "The definition." }),
    },
    resolve: async (_root, { input }, ctx) => {
      const definition = ctx.engine.definitionFromInput(fromInput(input));
      // The cap is counted inside the insert's transaction, so concurrent creates cannot pass it.
      return ctx.store.createPipeline(definition, { maxPipelines: ctx.limits.maxPipelines });
    },
  }),
  updatePipeline: t.field({
    authScopes: requires("admin"),
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
    authScopes: requires("admin"),
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
    authScopes: requires("operator"),
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
