/** Runs: starting, cancelling and reading them, with their node runs. */
import type { NodeDefinition } from "../domain/definition.ts";
import { BadInputError } from "../domain/errors.ts";
import type { JsonValue } from "../domain/json.ts";
import type { NodeRunRecord, RunRecord } from "../domain/records.ts";
import type { OutputRef } from "../domain/shared-output.ts";
import { isTerminalRunStatus, NODE_RUN_STATUSES, RUN_STATUSES } from "../domain/status.ts";
import { builder, describedValues, requires } from "./builder.ts";
import { NodeTypeEnum } from "./definition.ts";
import { RunEventRef } from "./events.ts";
import { MAX_OUTPUT_VIEW_BYTES, OUTPUT_VIEW_BYTES, viewOutput } from "./output-view.ts";
import { pageArgs, toConnection } from "./pagination.ts";
import { PipelineRef } from "./pipeline.ts";

export const RunStatusEnum = builder.enumType("RunStatus", {
  description: "Where a run is; the last four are final and never change.",
  values: describedValues(RUN_STATUSES, {
    QUEUED: "Waiting for an instance with room to take it.",
    RUNNING: "Being executed by an instance.",
    COMPLETED: "Every node completed or was skipped.",
    FAILED: "A node failed (without continueOnFail), or the pipeline did not validate.",
    CANCELLED: "Ended by cancelRun.",
    TIMED_OUT: "Still going after the pipeline's timeoutSeconds.",
  }),
});
const NodeRunStatusEnum = builder.enumType("NodeRunStatus", {
  description: "Where a node of a run is.",
  values: describedValues(NODE_RUN_STATUSES, {
    PENDING: "Not started: waiting for its predecessors.",
    RUNNING: "An attempt is under way.",
    RETRYING: "An attempt failed; waiting for the next one.",
    COMPLETED: "Done; its output is set.",
    FAILED: "Failed for good (retries exhausted, a permanent error or an open breaker).",
    SKIPPED: "Not run: no live incoming edge (a branch not taken).",
    CANCELLED: "The run ended before the node finished or started.",
  }),
});

/** A node of the run's definition with its stored state (none before it starts). */
interface NodeRunView {
  readonly node: NodeDefinition;
  readonly record: NodeRunRecord | undefined;
  /** Status of a node without a stored state: PENDING, or CANCELLED once the run has ended. */
  readonly unstarted: "PENDING" | "CANCELLED";
}

const OUTPUT_BUDGET = `Largest output JSON returned whole, in bytes (default ${OUTPUT_VIEW_BYTES}, at most ${MAX_OUTPUT_VIEW_BYTES}).`;

function outputBudget(maxBytes: number | null | undefined): number {
  const budget = maxBytes ?? OUTPUT_VIEW_BYTES;
  if (!Number.isInteger(budget) || budget < 1 || budget > MAX_OUTPUT_VIEW_BYTES)
    throw new BadInputError(`maxBytes must be 1 to ${MAX_OUTPUT_VIEW_BYTES}, got ${budget}`);
  return budget;
}

const OutputRefRef = builder.objectRef<OutputRef>("OutputRef").implement({
  description: "A place in a node's output that holds another node's output.",
  fields: (t) => ({
    path: t.stringList({
      description: "Keys (and array indexes, as strings) from the output's top to the place.",
      resolve: (ref) => ref.path.map(String),
    }),
    nodeId: t.exposeString("nodeId", { description: "The node whose output sits there." }),
  }),
});

const NodeRunRef = builder.objectRef<NodeRunView>("NodeRun").implement({
  description:
    "One node within a run. Nodes that never started are PENDING, or CANCELLED once the run has ended.",
  fields: (t) => ({
    nodeId: t.string({
      description: "The node's id in the definition.",
      resolve: (n) => n.node.id,
    }),
    type: t.field({
      type: NodeTypeEnum,
      description: "The node's type.",
      resolve: (n) => n.node.type,
    }),
    name: t.string({
      nullable: true,
      description: "The node's label, if it has one.",
      resolve: (n) => n.node.name ?? null,
    }),
    status: t.field({
      type: NodeRunStatusEnum,
      description: "Where the node is in this run.",
      resolve: (n) => n.record?.status ?? n.unstarted,
    }),
    reusedFrom: t.id({
      nullable: true,
      description:
        "The run whose output this node reused instead of running (a re-run from failure); its attempts are 0.",
      resolve: (n) => n.record?.reusedFrom ?? null,
    }),
    attempts: t.int({
      description: "Calls made, the first included.",
      resolve: (n) => n.record?.attempts ?? 0,
    }),
    output: t.field({
      type: "JSON",
      nullable: true,
      description:
        'The node\'s output. One whose JSON is over `maxBytes` (a join of joins repeats what it holds, up to gigabytes) is cut from the top: parts that do not fit read {"$truncated": {"bytes": N}}.',
      args: { maxBytes: t.arg.int({ description: OUTPUT_BUDGET }) },
      resolve: (n, { maxBytes }) => {
        const output = n.record?.output;
        return output === undefined ? null : viewOutput(output, outputBudget(maxBytes)).value;
      },
    }),
    outputBytes: t.float({
      nullable: true,
      description:
        "Bytes of the output's whole JSON (every part it holds counted as often as it appears).",
      resolve: (n) => n.record?.outputBytes ?? null,
    }),
    outputTruncated: t.boolean({
      description: "True when `output` with the same `maxBytes` is cut.",
      args: { maxBytes: t.arg.int({ description: OUTPUT_BUDGET }) },
      resolve: (n, { maxBytes }) => (n.record?.outputBytes ?? 0) > outputBudget(maxBytes),
    }),
    outputRefs: t.field({
      type: [OutputRefRef],
      description:
        "Where the output holds other nodes' outputs: stored once, as references, not copied.",
      resolve: (n) => [...(n.record?.outputRefs ?? [])],
    }),
    error: t.string({
      nullable: true,
      description: "The error of its failed attempt while RETRYING or FAILED; null otherwise.",
      resolve: (n) => n.record?.error ?? null,
    }),
    startedAt: t.field({
      type: "DateTime",
      nullable: true,
      description: "When its first attempt began.",
      resolve: (n) => n.record?.startedAt ?? null,
    }),
    completedAt: t.field({
      type: "DateTime",
      nullable: true,
      description: "When it settled (completed, failed, skipped or cancelled).",
      resolve: (n) => n.record?.completedAt ?? null,
    }),
  }),
});

/** Every node of the run's definition, in definition order, stored or not yet. */
function nodeRunsOf(run: RunRecord, stored: readonly NodeRunRecord[]): NodeRunView[] {
  const byNode = new Map(stored.map((record) => [record.nodeId, record]));
  const unstarted = isTerminalRunStatus(run.status) ? "CANCELLED" : "PENDING";
  return run.definition.nodes.map((node) => ({ node, record: byNode.get(node.id), unstarted }));
}

export const PipelineRunRef = builder.objectRef<RunRecord>("PipelineRun").implement({
  description: "One run of a pipeline: its status, its nodes and its events.",
  fields: (t) => ({
    id: t.exposeID("id", { description: "A UUIDv7: ids sort by creation time." }),
    pipeline: t.field({
      type: PipelineRef,
      description: "The pipeline run (as it is now; `pipelineVersion` is the one executed).",
      resolve: (run) => run.pipelineId,
    }),
    pipelineVersion: t.exposeInt("pipelineVersion", {
      description: "The pipeline version the run executes.",
    }),
    status: t.field({
      type: RunStatusEnum,
      description: "Where the run is.",
      resolve: (run) => run.status,
    }),
    triggerData: t.field({
      type: "JSON",
      nullable: true,
      description: "The data the run was started with (the TRIGGER nodes' output).",
      resolve: (run) => run.triggerData,
    }),
    error: t.string({
      nullable: true,
      description: "Why it did not complete; null while running and when COMPLETED.",
      resolve: (run) => run.error,
    }),
    createdAt: t.expose("createdAt", { type: "DateTime", description: "When it was created." }),
    startedAt: t.field({
      type: "DateTime",
      nullable: true,
      description: "When an instance began executing it.",
      resolve: (run) => run.startedAt,
    }),
    completedAt: t.field({
      type: "DateTime",
      nullable: true,
      description: "When it ended.",
      resolve: (run) => run.completedAt,
    }),
    deadlineAt: t.field({
      type: "DateTime",
      nullable: true,
      description: "When the run times out if still going.",
      resolve: (run) => (isTerminalRunStatus(run.status) ? null : run.deadlineAt),
    }),
    cancelRequested: t.exposeBoolean("cancelRequested", {
      description: "True once cancelRun was asked for it.",
    }),
    nodeRuns: t.field({
      type: [NodeRunRef],
      description: "Every node of the executed definition, in definition order, with its state.",
      resolve: async (run, _args, ctx) => nodeRunsOf(run, await ctx.loaders.nodeRuns.load(run.id)),
    }),
    events: t.field({
      type: [RunEventRef],
      description: "Stored events with seq > after, in order (at most `first`, default 1000).",
      args: {
        after: t.arg.int({ description: "The last seq already seen (default 0)." }),
        first: t.arg.int({ description: "Events to return, 0 to 10000 (default 1000)." }),
      },
      resolve: (run, { after, first }, ctx) => {
        const limit = first ?? 1000;
        if (limit < 0 || limit > 10_000)
          throw new BadInputError(`first must be 0 to 10000, got ${limit}`);
        return ctx.store.getEvents(run.id, after ?? 0, limit);
      },
    }),
  }),
});

builder.objectField(PipelineRunRef, "rerunOf", (t) =>
  t.field({
    type: PipelineRunRef,
    nullable: true,
    description: "The run this one re-runs (rerunRun); null for a run started by runPipeline.",
    resolve: (run, _args, ctx) => (run.rerunOf ? ctx.loaders.runs.load(run.rerunOf) : null),
  }),
);

const PipelineRunConnection = builder.connectionObject(
  { type: PipelineRunRef, name: "PipelineRunConnection", description: "A page of runs." },
  { description: "A run with its cursor." },
);

builder.objectField(PipelineRef, "runs", (t) =>
  t.loadable({
    type: PipelineRunConnection,
    description: "The pipeline's runs, newest first.",
    byPath: true,
    args: { ...t.arg.connectionArgs() },
    load: async (ids: string[], ctx, args) => {
      const page = pageArgs(args);
      if (page.after) {
        return Promise.all(
          ids.map(async (id) =>
            toConnection(await ctx.store.listRuns({ ...page, pipelineId: id }), page),
          ),
        );
      }
      const latest = await ctx.store.latestRuns(ids, page.first);
      return ids.map((id) =>
        toConnection(latest.get(id) ?? { items: [], hasNextPage: false }, page),
      );
    },
    resolve: (pipeline) => pipeline.id,
  }),
);

builder.queryFields((t) => ({
  run: t.field({
    authScopes: requires("viewer"),
    type: PipelineRunRef,
    nullable: true,
    description: "One run; null when there is none with this id.",
    args: { id: t.arg.id({ required: true, description: "The run's id." }) },
    resolve: (_root, { id }, ctx) => ctx.loaders.runs.load(id),
  }),
  runs: t.field({
    authScopes: requires("viewer"),
    type: PipelineRunConnection,
    description: "Runs, newest first, optionally of one pipeline and in some statuses.",
    args: {
      pipelineId: t.arg.id({ description: "Only the runs of this pipeline." }),
      status: t.arg({ type: [RunStatusEnum], description: "Only runs in one of these statuses." }),
      ...t.arg.connectionArgs(),
    },
    resolve: async (_root, args, ctx) => {
      const page = pageArgs(args);
      return toConnection(
        await ctx.store.listRuns({ ...page, pipelineId: args.pipelineId, statuses: args.status }),
        page,
      );
    },
  }),
}));

builder.mutationFields((t) => ({
  runPipeline: t.field({
    authScopes: requires("operator"),
    type: PipelineRunRef,
    description: "Starts a run and returns at once (QUEUED or RUNNING); follow it with runEvents.",
    args: {
      id: t.arg.id({ required: true, description: "The pipeline to run." }),
      triggerData: t.arg({
        type: "JSON",
        description: "Data for the run: the TRIGGER nodes' output, `trigger` in templates.",
      }),
    },
    resolve: (_root, { id, triggerData }, ctx) =>
      ctx.engine.runPipeline(id, (triggerData ?? null) as JsonValue),
  }),
  rerunRun: t.field({
    authScopes: requires("operator"),
    type: PipelineRunRef,
    description:
      "Runs a finished run again: the same pipeline version and trigger data. With fromFailure (the default) the nodes that completed, and everything upstream of them, are not executed again: their outputs are reused (NodeRun.reusedFrom). Refused with RUN_STILL_ACTIVE while the run is queued or running. Returns at once, like runPipeline.",
    args: {
      id: t.arg.id({ required: true, description: "The finished run to run again." }),
      fromFailure: t.arg.boolean({
        defaultValue: true,
        description: "Reuse what completed (true) or run every node again (false).",
      }),
    },
    resolve: (_root, { id, fromFailure }, ctx) => ctx.engine.rerunRun(id, fromFailure ?? true),
  }),
  cancelRun: t.field({
    authScopes: requires("operator"),
    type: PipelineRunRef,
    description: "Cancels a run wherever it executes. A finished run is returned unchanged.",
    args: { id: t.arg.id({ required: true, description: "The run to cancel." }) },
    resolve: (_root, { id }, ctx) => ctx.engine.cancelRun(id),
  }),
}));
