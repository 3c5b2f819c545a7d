/** Pipeline.versions: each definition a pipeline has had, newest first. */
import type { PipelineVersionRecord } from "../domain/records.ts";
import { builder } from "./builder.ts";
import { definitionFields } from "./definition.ts";
import { PipelineRef } from "./pipeline.ts";

const PipelineVersion = builder.objectRef<PipelineVersionRecord>("PipelineVersion").implement({
  description:
    "A stored definition of a pipeline: the one it was created with (version 1) or one an update gave it. Runs record the version they execute (PipelineRun.pipelineVersion).",
  fields: (t) => ({
    version: t.exposeInt("version", { description: "1 when created; every update adds one." }),
    createdAt: t.expose("createdAt", {
      type: "DateTime",
      description: "When this definition was stored.",
    }),
    ...definitionFields(t, (version) => version.definition),
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
