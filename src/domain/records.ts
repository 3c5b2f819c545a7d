/**
 * What is stored, as the engine, the store and the schema all see it: pipelines, runs, node
 * runs, events and breakers. Plain data; the store maps rows to these and back.
 */
import type { PipelineDefinition } from "./definition.ts";
import type { JsonValue } from "./json.ts";
import type { OutputRef } from "./shared-output.ts";
import type { CircuitState, NodeRunStatus, RunEventType, RunStatus } from "./status.ts";

export interface PipelineRecord {
  readonly id: string;
  readonly definition: PipelineDefinition;
  readonly runCount: number;
  readonly successCount: number;
  readonly errorCount: number;
  /** Starts at 1; every update adds one. */
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** One stored definition of a pipeline. */
export interface PipelineVersionRecord {
  readonly pipelineId: string;
  /** 1 for the definition the pipeline was created with; each update adds one. */
  readonly version: number;
  readonly definition: PipelineDefinition;
  readonly createdAt: Date;
}

export interface RunRecord {
  readonly id: string;
  readonly pipelineId: string;
  readonly pipelineVersion: number;
  readonly status: RunStatus;
  readonly triggerData: JsonValue;
  readonly error: string | null;
  /** The definition the run executes: later edits of the pipeline do not change it. */
  readonly definition: PipelineDefinition;
  readonly createdAt: Date;
  readonly startedAt: Date | null;
  readonly completedAt: Date | null;
  readonly deadlineAt: Date | null;
  readonly ownerId: string | null;
  readonly leaseExpiresAt: Date | null;
  readonly cancelRequested: boolean;
  /** The run this one re-runs (rerunRun); null for a run started by runPipeline. */
  readonly rerunOf: string | null;
}

/** A node run's state, as every writer of it knows it. */
export interface NodeRunState {
  readonly runId: string;
  readonly nodeId: string;
  readonly status: NodeRunStatus;
  readonly attempts: number;
  readonly error: string | null;
  readonly startedAt: Date | null;
  readonly completedAt: Date | null;
  /** The run whose stored output this node reused instead of running (re-run from failure). */
  readonly reusedFrom: string | null;
}

/** A node run as it is read: its output decoded (see shared-output.ts). */
export interface NodeRunRecord extends NodeRunState {
  /**
   * `undefined` when the node produced none. Outputs of other nodes inside it are those very
   * values (shared, as the engine held them), not copies.
   */
  readonly output: JsonValue | undefined;
  /** Where the output holds other nodes' outputs. */
  readonly outputRefs: readonly OutputRef[];
  /** Bytes of the output's JSON with every reference expanded; null when there is none. */
  readonly outputBytes: number | null;
  /** Bytes the output takes in the store (its own data only). */
  readonly outputStoredBytes: number;
}

export interface RunEventRecord {
  readonly runId: string;
  readonly seq: number;
  readonly type: RunEventType;
  readonly nodeId: string | null;
  readonly attempt: number | null;
  readonly at: Date;
  readonly data: { readonly [key: string]: JsonValue } | null;
}

export interface BreakerRecord {
  readonly pipelineId: string;
  readonly nodeId: string;
  readonly state: CircuitState;
  readonly failureCount: number;
  readonly openedAt: Date | null;
  readonly trialStartedAt: Date | null;
  readonly updatedAt: Date;
}
