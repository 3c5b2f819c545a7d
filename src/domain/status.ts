/**
 * Run-time vocabulary shared by the engine, the store and the schema: statuses and which of
 * them are active or terminal, event types, breaker states, and the one rule of how an ended
 * run moves its pipeline's counters.
 */

export const RUN_STATUSES = [
  "QUEUED",
  "RUNNING",
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMED_OUT",
] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
/** A run in one of these is still to be executed by some instance. */
export const ACTIVE_RUN_STATUSES = ["QUEUED", "RUNNING"] as const satisfies readonly RunStatus[];
export type ActiveRunStatus = (typeof ACTIVE_RUN_STATUSES)[number];
export type TerminalRunStatus = Exclude<RunStatus, ActiveRunStatus>;
export const TERMINAL_RUN_STATUSES: ReadonlySet<RunStatus> = new Set(
  RUN_STATUSES.filter((status) => !(ACTIVE_RUN_STATUSES as readonly RunStatus[]).includes(status)),
);
export const isTerminalRunStatus = (status: RunStatus): status is TerminalRunStatus =>
  TERMINAL_RUN_STATUSES.has(status);

/**
 * Which of its pipeline's counters a run in `status` adds to, besides `runCount` (added when
 * the run is created): COMPLETED counts as a success, FAILED and TIMED_OUT as errors, a
 * cancelled or unfinished run as neither.
 */
export function counterOf(status: RunStatus): "successCount" | "errorCount" | null {
  if (status === "COMPLETED") return "successCount";
  if (status === "FAILED" || status === "TIMED_OUT") return "errorCount";
  return null;
}

export const NODE_RUN_STATUSES = [
  "PENDING",
  "RUNNING",
  "RETRYING",
  "COMPLETED",
  "FAILED",
  "SKIPPED",
  "CANCELLED",
] as const;
export type NodeRunStatus = (typeof NODE_RUN_STATUSES)[number];

export const RUN_EVENT_TYPES = [
  "RUN_STARTED",
  "NODE_STARTED",
  "NODE_RETRYING",
  "NODE_COMPLETED",
  "NODE_FAILED",
  "NODE_SKIPPED",
  "RUN_COMPLETED",
  "RUN_FAILED",
  "RUN_CANCELLED",
  "RUN_TIMED_OUT",
] as const;
export type RunEventType = (typeof RUN_EVENT_TYPES)[number];
export const TERMINAL_EVENT_TYPES: ReadonlySet<RunEventType> = new Set([
  "RUN_COMPLETED",
  "RUN_FAILED",
  "RUN_CANCELLED",
  "RUN_TIMED_OUT",
]);

export const CIRCUIT_STATES = ["CLOSED", "OPEN", "HALF_OPEN"] as const;
export type CircuitState = (typeof CIRCUIT_STATES)[number];
