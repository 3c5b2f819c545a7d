/**
 * The storage contract. The engine and the schema see only this interface; SQLite,
 * PostgreSQL and memory implement it. Every method that changes several rows does so in one
 * transaction.
 */
import type { PipelineDefinition } from "../domain/definition.ts";
import type { JsonValue } from "../domain/json.ts";
import type {
  BreakerRecord,
  NodeRunRecord,
  NodeRunState,
  PipelineRecord,
  PipelineVersionRecord,
  RunEventRecord,
  RunRecord,
} from "../domain/records.ts";
import type { StoredOutput } from "../domain/shared-output.ts";
import type { ActiveRunStatus, CircuitState, RunStatus } from "../domain/status.ts";
import type { AdminStore } from "./admin.ts";

/** A node run as the engine writes it: its output in stored form (null: none). */
export interface NodeRunWrite extends NodeRunState {
  readonly output: StoredOutput | null;
}

/** A change to a run row. Fields left out keep their value. */
export interface RunPatch {
  readonly id: string;
  /**
   * The run's pipeline, as the engine knows it (it never changes): PostgreSQL commits a batch
   * whose patches all name one pipeline in one statement (store/sql-commit-pg.ts). Must be the
   * run's own when set.
   */
  readonly pipelineId?: string;
  readonly status?: RunStatus;
  readonly error?: string | null;
  readonly startedAt?: Date;
  readonly completedAt?: Date;
  readonly deadlineAt?: Date;
}

/**
 * What the engine writes in one transaction. Node runs are whole rows (upserted); events are
 * appended. A patch to a terminal status is applied only if the run is not terminal yet, and
 * only then are the pipeline's counters moved: a run ends once, whatever races.
 */
export interface WriteBatch {
  readonly events: readonly RunEventRecord[];
  readonly nodeRuns: readonly NodeRunWrite[];
  readonly runs: readonly RunPatch[];
  /**
   * Fencing: when set, only the runs this instance still holds the lease of are written (the
   * check and the writes are one transaction, the rows locked); the others are left out and
   * reported, so that an instance that lost a run cannot write over its new owner.
   */
  readonly ownerId?: string;
}

export interface CommitOutcome {
  /** Runs left out because `ownerId` no longer holds their lease. */
  readonly rejectedRuns: readonly string[];
}

export interface Page<T> {
  readonly items: readonly T[];
  readonly hasNextPage: boolean;
}

export interface PageArgs {
  readonly first: number;
  /** Id of the last item of the previous page (newest first). */
  readonly after?: string | null;
}

export interface RunFilter extends PageArgs {
  readonly pipelineId?: string | null;
  readonly statuses?: readonly RunStatus[] | null;
}

export interface NewRun {
  readonly pipelineId: string;
  readonly pipelineVersion: number;
  readonly status: RunStatus;
  readonly triggerData: JsonValue;
  readonly error: string | null;
  readonly definition: PipelineDefinition;
  readonly startedAt: Date | null;
  readonly completedAt: Date | null;
  /** Created already held by this lease: no other instance's poll can take it first. */
  readonly lease?: LeaseArgs;
  /** The run this one re-runs. */
  readonly rerunOf?: string | null;
  /**
   * Create the run only while `pipelineVersion` is still the pipeline's version, otherwise
   * fail it with VERSION_CHANGED: a caller that read the pipeline earlier (and kept it) then
   * never starts a run of a definition that has been replaced.
   */
  readonly onlyIfCurrent?: boolean;
}

/** One run to create, with its first events and node runs. */
export interface NewRunRequest {
  readonly run: NewRun;
  readonly events?: readonly Omit<RunEventRecord, "runId">[];
  readonly nodeRuns?: readonly Omit<NodeRunWrite, "runId">[];
}

/** A lease request: who takes the run and until when. */
export interface LeaseArgs {
  readonly ownerId: string;
  readonly now: Date;
  readonly leaseUntil: Date;
}

export type DeleteOutcome = "deleted" | "not_found" | "has_active_runs";

/** Counts across all instances, for the metrics gauges. */
export interface StateCounts {
  /** Runs waiting for any instance, and runs being executed by one. */
  readonly runs: Readonly<Record<ActiveRunStatus, number>>;
  /** Stored breakers in each state (a node that never failed has none, and is CLOSED). */
  readonly breakers: Readonly<Record<CircuitState, number>>;
}

export interface CreatePipelineOptions {
  /** Refuse the insert when this many pipelines are stored. @default no cap */
  readonly maxPipelines?: number;
}

export interface Store {
  readonly provider: "sqlite" | "postgresql" | "memory";
  /** Statements sent to the database so far (for tests that count queries). */
  readonly stats: { queries: number };
  /** API keys, secrets, the pipeline cap and run retention. */
  readonly admin: AdminStore;

  /**
   * Stores version 1 of a new pipeline. With `maxPipelines`, the count is taken in the
   * insert's transaction (serialized against other creates), so concurrent creates never
   * store more than the cap.
   * @throws {PipelineLimitError} when `maxPipelines` pipelines are stored already
   */
  createPipeline(
    definition: PipelineDefinition,
    options?: CreatePipelineOptions,
  ): Promise<PipelineRecord>;
  /** `null` when no such pipeline. */
  updatePipeline(id: string, definition: PipelineDefinition): Promise<PipelineRecord | null>;
  /** Deletes the pipeline with its runs, events and breakers, unless a run is still active. */
  deletePipeline(id: string): Promise<DeleteOutcome>;
  /** In the order of `ids`; `null` where none. */
  getPipelines(ids: readonly string[]): Promise<(PipelineRecord | null)[]>;
  listPipelines(page: PageArgs): Promise<Page<PipelineRecord>>;
  /**
   * The stored definitions of each pipeline, newest first (`createPipeline` stores version 1
   * and each `updatePipeline` the next, in the same transaction as the pipeline row).
   */
  getPipelineVersions(
    pipelineIds: readonly string[],
  ): Promise<Map<string, PipelineVersionRecord[]>>;

  /**
   * Creates a run and adds it to its pipeline's counters, with its first events and node runs
   * (those a re-run reuses), atomically.
   */
  createRun(
    run: NewRun,
    events: readonly Omit<RunEventRecord, "runId">[],
    nodeRuns?: readonly Omit<NodeRunWrite, "runId">[],
  ): Promise<RunRecord>;
  /**
   * createRun for several runs in one transaction (runs started at the same moment share it).
   * Each answer is the run, or a NOT_FOUND StoreError when its pipeline does not exist.
   */
  createRuns(requests: readonly NewRunRequest[]): Promise<(RunRecord | StoreError)[]>;
  getRuns(ids: readonly string[]): Promise<(RunRecord | null)[]>;
  listRuns(filter: RunFilter): Promise<Page<RunRecord>>;
  /** The newest `first` runs of each pipeline, in one query. */
  latestRuns(pipelineIds: readonly string[], first: number): Promise<Map<string, Page<RunRecord>>>;
  /** Stored node runs of each run (nodes that have not started have none). */
  getNodeRuns(runIds: readonly string[]): Promise<Map<string, NodeRunRecord[]>>;
  /** Events with `seq > after`, in order, at most `limit`. */
  getEvents(runId: string, after: number, limit?: number): Promise<RunEventRecord[]>;
  /** Highest stored `seq` of a run, 0 when none. */
  lastSeq(runId: string): Promise<number>;

  /** Applies the batch in one transaction. */
  commit(batch: WriteBatch): Promise<CommitOutcome>;

  /**
   * Takes the run if it is QUEUED or RUNNING and nobody holds a live lease on it; returns the
   * run as taken, or `null`.
   */
  claimRun(runId: string, lease: LeaseArgs): Promise<RunRecord | null>;
  /** Takes up to `limit` claimable runs, oldest first. */
  claimRuns(limit: number, lease: LeaseArgs): Promise<RunRecord[]>;
  /** Extends the leases still held by `ownerId`; returns the ids still held. */
  renewLeases(runIds: readonly string[], lease: LeaseArgs): Promise<string[]>;
  /** Gives runs up so that another instance can take them at once. */
  releaseRuns(runIds: readonly string[], ownerId: string): Promise<void>;
  /** Marks a run for cancellation; returns the run after the change (null: no such run). */
  requestCancel(runId: string): Promise<RunRecord | null>;
  /** Of the given runs, those marked for cancellation. */
  cancelRequested(runIds: readonly string[]): Promise<string[]>;

  /** Breakers stored for these pipelines (nodes without a row are CLOSED). */
  getBreakers(pipelineIds: readonly string[]): Promise<Map<string, BreakerRecord[]>>;
  getBreaker(pipelineId: string, nodeId: string): Promise<BreakerRecord | null>;
  /**
   * Atomic read-modify-write of one breaker: `change` sees the current row and returns the new
   * one, or `null` to leave it as it is. Returns the row after the call.
   */
  updateBreaker(
    pipelineId: string,
    nodeId: string,
    change: (current: BreakerRecord | null) => BreakerRecord | null,
  ): Promise<BreakerRecord | null>;

  /** Active runs by status and breakers by state (two grouped counts, for metrics). */
  countStates(): Promise<StateCounts>;

  /**
   * Proves that the database accepts writes: one small committed write (a full disk, a
   * read-only file or a standby fail it). Used by `/ready` and while waiting out an outage.
   * @param instanceId the row to write (one per instance)
   */
  probe(instanceId?: string): Promise<void>;

  close(): Promise<void>;
}

/** Raised by a store when a write would break a rule the database keeps. */
export class StoreError extends Error {
  override readonly name = "StoreError";
  constructor(
    readonly code: "NOT_FOUND" | "CONFLICT" | "UNAVAILABLE" | "VERSION_CHANGED",
    message: string,
  ) {
    super(message);
  }
}

/** The error of a run `onlyIfCurrent` whose pipeline has moved on to another version. */
export function versionChanged(run: Pick<NewRun, "pipelineId" | "pipelineVersion">): StoreError {
  return new StoreError(
    "VERSION_CHANGED",
    `pipeline "${run.pipelineId}" is no longer at version ${run.pipelineVersion}`,
  );
}
