/**
 * What each run event carries in `data`: one payload type per event type. Events are built
 * only by the run recorder (engine/run-recorder.ts), against this map, so that a client can
 * rely on the shape of every event it receives.
 */
import type { NodeType } from "./definition.ts";
import type { JsonValue } from "./json.ts";
import type { RunEventRecord } from "./records.ts";
import type { RunEventType } from "./status.ts";

export interface RunEventData {
  readonly RUN_STARTED: {
    readonly pipelineId: string;
    readonly pipelineVersion: number;
    /** Nodes in the definition the run executes. */
    readonly nodeCount: number;
    /** A re-run: the run it re-runs, whether from failure, and the nodes it reuses. */
    readonly rerunOf?: string;
    readonly fromFailure?: boolean;
    readonly reused?: string[];
  };
  readonly NODE_STARTED: { readonly type: NodeType };
  /** `attempt` on the event is the attempt that failed. */
  readonly NODE_RETRYING: { readonly delayMs: number; readonly error: string };
  /**
   * The output, or, when it is too large to carry in an event, its size. `reusedFrom`: the
   * node was not executed; its output is the one it had in that run (a re-run from failure).
   */
  readonly NODE_COMPLETED: (
    | { readonly output: JsonValue }
    | { readonly outputBytes: number; readonly truncated: true }
  ) & { readonly reusedFrom?: string };
  readonly NODE_FAILED: {
    readonly error: string;
    /** The failure's stable code (`HTTP_STATUS`, `TIMEOUT`, `BREAKER_OPEN`, …), `ERROR` when unknown. */
    readonly code: string;
    readonly retryable: boolean;
    readonly continueOnFail: boolean;
  };
  readonly NODE_SKIPPED: { readonly reason: string };
  readonly RUN_COMPLETED: { readonly durationMs: number };
  readonly RUN_FAILED: { readonly error: string };
  readonly RUN_CANCELLED: { readonly reason: string };
  readonly RUN_TIMED_OUT: { readonly timeoutSeconds: number };
}

/** A run event whose `data` is known from its `type`. */
export type TypedRunEvent<T extends RunEventType = RunEventType> = {
  [K in T]: Omit<RunEventRecord, "type" | "data"> & {
    readonly type: K;
    readonly data: RunEventData[K];
  };
}[T];
