/** Pipeline.versions: each definition a pipeline has had, newest first. */
import type { PipelineVersionRecord } from "../domain/records.ts";
import { builder } from "./builder.ts";
import { BreakerSettingsRef, PipelineEdge, PipelineNode, PipelineRef } from "./pipeline.ts";

const PipelineVersion = builder.objectRef<PipelineVersionRecord>("PipelineVersion").implement({
  description:
    "A stored definition of a pipeline: the one it was created with (version 1) or one an update gave it. Runs record the version they execute (PipelineRun.pipelineVersion).",
  fields: (t) => ({
    version: t.exposeInt("version", { description: "1 when created; every update adds one." }),
    createdAt: t.expose("createdAt", {
      type: "DateTime",
      description: "When this definition was stored.",
    }),
    name: t.string({
      description: "The pipeline's name in this version.",
      resolve: (v) => v.definition.name,
    }),
    nodes: t.field({
      type: [PipelineNode],
      description: "The nodes of this version.",
      resolve: (v) => [...v.definition.nodes],
    }),
    edges: t.field({
      type: [PipelineEdge],
      description: "The edges of this version.",
      resolve: (v) => [...v.definition.edges],
    }),
    maxRetriesPerNode: t.int({
      description: "Default attempts per node in this version, the first included.",
      resolve: (v) => v.definition.maxRetriesPerNode,
    }),
    timeoutSeconds: t.int({
      description: "Run timeout of this version.",
      resolve: (v) => v.definition.timeoutSeconds,
    }),
    maxConcurrency: t.int({
      nullable: true,
      description:
        "Node executions at once within one run in this version; null: no per-run limit.",
      resolve: (v) => v.definition.maxConcurrency,
    }),
    breaker: t.field({
      type: BreakerSettingsRef,
      description: "Breaker settings of this version.",
      resolve: (v) => v.definition.breaker,
    }),
  }),
});

builder.objectField(PipelineRef, "versions", (t) =>
  t.field({
    type: [PipelineVersion],
    description:
      "Every definition stored for this pipeline, newest first (the first is the current one). Pipelines stored before versions were kept have only their definition of that time.",
    resolve: (pipeline, _args, ctx) => ctx.loaders.versions.load(pipeline.id),
  }),
);
