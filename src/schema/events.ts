/** Run events: the stored log of a run and its live stream. */

import type { RunEventRecord } from "../domain/records.ts";
import { RUN_EVENT_TYPES } from "../domain/status.ts";
import { builder } from "./builder.ts";

const RunEventTypeEnum = builder.enumType("RunEventType", { values: RUN_EVENT_TYPES });

export const RunEventRef = builder.objectRef<RunEventRecord>("RunEvent").implement({
  description:
    "One step of a run. seq runs 1, 2, 3 … without gaps; exactly one RUN_COMPLETED, RUN_FAILED, RUN_CANCELLED or RUN_TIMED_OUT ends it.",
  fields: (t) => ({
    seq: t.exposeInt("seq"),
    runId: t.exposeID("runId"),
    type: t.field({ type: RunEventTypeEnum, resolve: (e) => e.type }),
    nodeId: t.string({ nullable: true, resolve: (e) => e.nodeId }),
    attempt: t.int({ nullable: true, resolve: (e) => e.attempt }),
    at: t.expose("at", { type: "DateTime" }),
    data: t.field({ type: "JSON", nullable: true, resolve: (e) => e.data }),
  }),
});

builder.subscriptionFields((t) => ({
  runEvents: t.field({
    type: RunEventRef,
    description:
      "Replays the run's stored events with seq > after (default 0), then streams new ones as they happen, without gaps or duplicates; completes after the terminal event.",
    args: { runId: t.arg.id({ required: true }), after: t.arg.int() },
    subscribe: (_root, { runId, after }, ctx) => ctx.engine.events(runId, after ?? 0),
    resolve: (event) => event,
  }),
}));
