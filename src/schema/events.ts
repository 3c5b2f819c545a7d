/** Run events: the stored log of a run and its live stream. */

import type { RunEventRecord } from "../domain/records.ts";
import { RUN_EVENT_TYPES } from "../domain/status.ts";
import { builder, describedValues, requires } from "./builder.ts";

const RunEventTypeEnum = builder.enumType("RunEventType", {
  description: "What a run event records; `data` has the details of each type.",
  values: describedValues(RUN_EVENT_TYPES, {
    RUN_STARTED: "The first event of every run: data {pipelineId, pipelineVersion, nodeCount}.",
    NODE_STARTED: "An attempt of a node began: data {type}.",
    NODE_RETRYING: "The attempt failed and will be retried: data {delayMs, error}.",
    NODE_COMPLETED: "The node completed: data {output} (or {outputBytes, truncated} when large).",
    NODE_FAILED: "The node failed: data {error, code, retryable, continueOnFail}.",
    NODE_SKIPPED: "The node will not run: data {reason}.",
    RUN_COMPLETED: "The run completed: data {durationMs}. Terminal.",
    RUN_FAILED: "The run failed: data {error}. Terminal.",
    RUN_CANCELLED: "The run was cancelled: data {reason}. Terminal.",
    RUN_TIMED_OUT: "The run passed its timeout: data {timeoutSeconds}. Terminal.",
  }),
});

export const RunEventRef = builder.objectRef<RunEventRecord>("RunEvent").implement({
  description:
    "One step of a run. seq runs 1, 2, 3 … without gaps; exactly one RUN_COMPLETED, RUN_FAILED, RUN_CANCELLED or RUN_TIMED_OUT ends it.",
  fields: (t) => ({
    seq: t.exposeInt("seq", {
      description: "1 for the first event of the run, then one more each.",
    }),
    runId: t.exposeID("runId", { description: "The run it belongs to." }),
    type: t.field({
      type: RunEventTypeEnum,
      description: "What happened.",
      resolve: (e) => e.type,
    }),
    nodeId: t.string({
      nullable: true,
      description: "The node it is about; on RUN_FAILED the node that failed the run, if one did.",
      resolve: (e) => e.nodeId,
    }),
    attempt: t.int({
      nullable: true,
      description: "The node's attempt (for NODE_RETRYING, the one that failed).",
      resolve: (e) => e.attempt,
    }),
    at: t.expose("at", { type: "DateTime", description: "When it happened." }),
    data: t.field({
      type: "JSON",
      nullable: true,
      description: "Details, by type (see RunEventType).",
      resolve: (e) => e.data,
    }),
  }),
});

builder.subscriptionFields((t) => ({
  runEvents: t.field({
    authScopes: requires("viewer"),
    type: RunEventRef,
    description:
      "Replays the run's stored events with seq > after (default 0), then streams new ones as they happen, without gaps or duplicates; completes after the terminal event.",
    args: {
      runId: t.arg.id({ required: true, description: "The run to follow." }),
      after: t.arg.int({ description: "The last seq already seen; 0 replays everything." }),
    },
    subscribe: (_root, { runId, after }, ctx) =>
      ctx.limits.subscription(() => ctx.engine.events(runId, after ?? 0)),
    resolve: (event) => event,
  }),
}));
