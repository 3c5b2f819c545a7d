/** Columns and rows of the event and node-run tables, as commits and run creation write them. */
import type { RunEventRecord } from "../domain/records.ts";
import { nodeRunColumns } from "./codec.ts";
import type { SqlColumn, SqlValue } from "./sql.ts";
import type { NodeRunWrite } from "./types.ts";

export const EVENT_COLUMNS: readonly SqlColumn[] = [
  { name: "runId", pgType: "text" },
  { name: "seq", pgType: "int4" },
  { name: "type", pgType: "text" },
  { name: "nodeId", pgType: "text" },
  { name: "attempt", pgType: "int4" },
  { name: "at", pgType: "timestamptz" },
  { name: "data", pgType: "text" },
];
export const NODE_RUN_COLUMNS: readonly SqlColumn[] = [
  { name: "runId", pgType: "text" },
  { name: "nodeId", pgType: "text" },
  { name: "status", pgType: "text" },
  { name: "attempts", pgType: "int4" },
  { name: "output", pgType: "text" },
  { name: "outputRefs", pgType: "text" },
  { name: "error", pgType: "text" },
  { name: "startedAt", pgType: "timestamptz" },
  { name: "completedAt", pgType: "timestamptz" },
  { name: "reusedFrom", pgType: "text" },
];
export const NODE_RUN_UPSERT = `ON CONFLICT ("runId", "nodeId") DO UPDATE SET "status" = excluded."status", "attempts" = excluded."attempts", "output" = excluded."output", "outputRefs" = excluded."outputRefs", "error" = excluded."error", "startedAt" = excluded."startedAt", "completedAt" = excluded."completedAt", "reusedFrom" = excluded."reusedFrom"`;

export const eventRow = (e: RunEventRecord): SqlValue[] => [
  e.runId,
  e.seq,
  e.type,
  e.nodeId,
  e.attempt,
  e.at,
  e.data === null ? null : JSON.stringify(e.data),
];

export const nodeRunRow = (write: NodeRunWrite): SqlValue[] => {
  const n = nodeRunColumns(write);
  return [
    n.runId,
    n.nodeId,
    n.status,
    n.attempts,
    n.output,
    n.outputRefs,
    n.error,
    n.startedAt,
    n.completedAt,
    n.reusedFrom,
  ];
};
