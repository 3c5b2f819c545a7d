/**
 * What a run writes: its events, numbered without gaps, and the latest state of each node,
 * both handed to the group-committing writer. Every run event is built here, against the
 * payload types of domain/events.ts. The decisions (what runs next, when the run ends) are
 * RunExecution's; this class only keeps the record straight.
 */

import type { NodeDefinition } from "../domain/definition.ts";
import type { RunEventData, TypedRunEvent } from "../domain/events.ts";
import type { JsonValue } from "../domain/json.ts";
import type { NodeRunRecord, RunRecord } from "../domain/records.ts";
import type { StoredOutput } from "../domain/shared-output.ts";
import type { RunEventType } from "../domain/status.ts";
import type { NodeRunWrite, RunPatch } from "../store/types.ts";
import { errorMessage, NodeError, PermanentError } from "./errors.ts";
import type { ReusedNode } from "./rerun.ts";
import { type OutputLimits, RunOutputs } from "./run-outputs.ts";
import type { RunWriter } from "./writer.ts";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** What the recorder keeps of a node: its row as written, and its output as the run holds it. */
interface NodeEntry {
  readonly row: Mutable<NodeRunWrite>;
  output: JsonValue | undefined;
}

export class RunRecorder {
  readonly #runId: string;
  readonly #pipelineId: string;
  readonly #writer: RunWriter;
  readonly #nodes = new Map<string, NodeEntry>();
  readonly #outputs: RunOutputs;
  #seq: number;

  constructor(
    run: { readonly id: string; readonly pipelineId: string },
    writer: RunWriter,
    lastSeq: number,
    stored: readonly NodeRunRecord[] = [],
    limits?: OutputLimits,
  ) {
    this.#runId = run.id;
    this.#pipelineId = run.pipelineId;
    this.#writer = writer;
    this.#seq = lastSeq;
    this.#outputs = new RunOutputs(limits, stored);
    for (const { output, outputRefs, outputBytes, outputStoredBytes, ...state } of stored) {
      // A stored output is never written again (completed nodes do not change), so its
      // stored form is not kept here: `row.output` null with `output` set marks it.
      this.#nodes.set(state.nodeId, { row: { ...state, output: null }, output });
    }
  }

  /** The last seq used (0: no event yet). */
  get seq(): number {
    return this.#seq;
  }

  /** Attempts made so far by a node. */
  attempts(nodeId: string): number {
    return this.#nodes.get(nodeId)?.row.attempts ?? 0;
  }

  /** The output of a completed node, or undefined. */
  completedOutput(nodeId: string): JsonValue | undefined {
    const entry = this.#nodes.get(nodeId);
    return entry?.row.status === "COMPLETED" ? entry.output : undefined;
  }

  /** Output bytes the run has stored so far. */
  get storedOutputBytes(): number {
    return this.#outputs.storedBytes;
  }

  #event<T extends RunEventType>(
    type: T,
    nodeId: string | null,
    attempt: number | null,
    data: RunEventData[T],
  ): void {
    this.#writer.appendEvent({
      runId: this.#runId,
      seq: ++this.#seq,
      type,
      nodeId,
      attempt,
      at: new Date(),
      data,
    });
  }

  /** RUN_STARTED: the first event of every run. */
  runStarted(run: Pick<RunRecord, "pipelineId" | "pipelineVersion" | "definition">): void {
    this.#event("RUN_STARTED", null, null, startedData(run));
  }

  /** Resolves once everything recorded so far is stored (and published). */
  flush(): Promise<void> {
    return this.#writer.flush();
  }

  /** Forgets what is not stored yet: the run is someone else's now. */
  drop(): void {
    this.#writer.drop(this.#runId);
  }

  patchRun(patch: Omit<RunPatch, "id">): void {
    this.#writer.patchRun({ id: this.#runId, pipelineId: this.#pipelineId, ...patch });
  }

  /**
   * Changes a node's row and hands it to the writer. `output` (with its stored form) is set
   * only by the completion of the node.
   */
  #node(
    nodeId: string,
    change: Partial<Omit<NodeRunWrite, "output">>,
    output?: { value: JsonValue; stored: StoredOutput },
  ): void {
    let entry = this.#nodes.get(nodeId);
    if (!entry) {
      entry = {
        row: {
          runId: this.#runId,
          nodeId,
          status: "PENDING",
          attempts: 0,
          output: null,
          error: null,
          startedAt: null,
          completedAt: null,
          reusedFrom: null,
        },
        output: undefined,
      };
      this.#nodes.set(nodeId, entry);
    }
    // Invariant: a stored output is never overwritten (see the constructor).
    if (entry.output !== undefined && entry.row.output === null)
      throw new Error(`node "${nodeId}" of run ${this.#runId} already has a stored output`);
    Object.assign(entry.row, change);
    if (output) {
      entry.row.output = output.stored;
      entry.output = output.value;
    }
    this.#writer.putNodeRun({ ...entry.row });
  }

  nodeStarted(node: NodeDefinition, attempt: number): void {
    this.#event("NODE_STARTED", node.id, attempt, { type: node.type });
    const startedAt = this.#nodes.get(node.id)?.row.startedAt ?? new Date();
    this.#node(node.id, { status: "RUNNING", attempts: attempt, startedAt, error: null });
  }

  nodeRetrying(nodeId: string, attempt: number, delayMs: number, error: unknown): void {
    this.#event("NODE_RETRYING", nodeId, attempt, { delayMs, error: errorMessage(error) });
    this.#node(nodeId, { status: "RETRYING", error: errorMessage(error) });
  }

  /**
   * NODE_COMPLETED and a COMPLETED node run, its output kept once (references to the outputs
   * it holds; `inputs`, the node's live predecessors, are the names references prefer).
   * Returns the reason when the output cannot be kept; nothing is recorded then.
   */
  nodeCompleted(
    nodeId: string,
    attempt: number,
    output: JsonValue,
    inputs: readonly string[] = [],
  ): PermanentError | null {
    const kept = this.#outputs.keep(nodeId, output, inputs);
    if (kept instanceof PermanentError) return kept;
    const { stored, inEvent } = kept;
    this.#event(
      "NODE_COMPLETED",
      nodeId,
      attempt,
      inEvent ? { output } : { outputBytes: stored.expandedBytes, truncated: true },
    );
    this.#node(
      nodeId,
      { status: "COMPLETED", attempts: attempt, error: null, completedAt: new Date() },
      { value: output, stored },
    );
    return null;
  }

  /** NODE_FAILED and a FAILED node run; `output` is what flows on when the run goes on. */
  nodeFailed(node: NodeDefinition, attempt: number, error: unknown, output?: JsonValue): void {
    const message = errorMessage(error);
    this.#event("NODE_FAILED", node.id, attempt || null, {
      error: message,
      code: error instanceof NodeError ? error.code : "ERROR",
      retryable: error instanceof NodeError ? error.retryable : true,
      continueOnFail: Boolean(node.continueOnFail),
    });
    const change = {
      status: "FAILED",
      attempts: attempt,
      error: message,
      completedAt: new Date(),
    } as const;
    // What flows on ({error}, or a condition's {result: false}) is small and new: always kept.
    const kept = output === undefined ? undefined : this.#outputs.keep(node.id, output);
    if (kept && !(kept instanceof PermanentError))
      this.#node(node.id, change, { value: output!, stored: kept.stored });
    else this.#node(node.id, change);
  }

  nodeSkipped(nodeId: string): void {
    this.#event("NODE_SKIPPED", nodeId, null, { reason: "no live incoming edge" });
    this.#node(nodeId, { status: "SKIPPED", completedAt: new Date() });
  }

  /** Nodes still running when the run ends: every started node ends in a terminal state. */
  cancelRunningNodes(now: Date): void {
    for (const [nodeId, { row }] of this.#nodes) {
      if (row.status === "RUNNING" || row.status === "RETRYING")
        this.#node(nodeId, { status: "CANCELLED", completedAt: now });
    }
  }

  /** The terminal event and the run's final row. */
  runEnded(ending: RunEnding, startedAt: Date, timeoutSeconds: number, now: Date): void {
    const { status } = ending;
    const error = status === "COMPLETED" ? null : ending.error;
    if (status === "COMPLETED")
      this.#event("RUN_COMPLETED", null, null, { durationMs: now.getTime() - startedAt.getTime() });
    else if (status === "FAILED")
      this.#event("RUN_FAILED", ending.nodeId ?? null, null, { error: ending.error });
    else if (status === "CANCELLED")
      this.#event("RUN_CANCELLED", null, null, { reason: ending.error });
    else this.#event("RUN_TIMED_OUT", null, null, { timeoutSeconds });
    this.patchRun({ status, error, completedAt: now });
  }
}

/** How a run ends; `error` becomes the run's error. */
export type RunEnding =
  | { readonly status: "COMPLETED" }
  | { readonly status: "FAILED"; readonly error: string; readonly nodeId?: string }
  | { readonly status: "CANCELLED"; readonly error: string }
  | { readonly status: "TIMED_OUT"; readonly error: string };

function startedData(
  run: Pick<RunRecord, "pipelineId" | "pipelineVersion" | "definition">,
): RunEventData["RUN_STARTED"] {
  return {
    pipelineId: run.pipelineId,
    pipelineVersion: run.pipelineVersion,
    nodeCount: run.definition.nodes.length,
  };
}

/**
 * The first events of a re-run, stored with the run itself: RUN_STARTED naming its source,
 * then one NODE_COMPLETED (no NODE_STARTED, attempt null) per node it reuses.
 */
export function rerunStartEvents(
  run: Pick<RunRecord, "pipelineId" | "pipelineVersion" | "definition">,
  source: { readonly id: string; readonly fromFailure: boolean },
  reused: readonly ReusedNode[],
  at: Date,
): Omit<TypedRunEvent<"RUN_STARTED" | "NODE_COMPLETED">, "runId">[] {
  const base = { attempt: null, at };
  return [
    {
      ...base,
      seq: 1,
      nodeId: null,
      type: "RUN_STARTED",
      data: {
        ...startedData(run),
        rerunOf: source.id,
        fromFailure: source.fromFailure,
        reused: reused.map((node) => node.nodeId),
      },
    },
    ...reused.map(({ nodeId, record, stored, inEvent }, i) => {
      const data: RunEventData["NODE_COMPLETED"] = inEvent
        ? { output: record.output!, reusedFrom: source.id }
        : { outputBytes: stored.expandedBytes, truncated: true, reusedFrom: source.id };
      return { ...base, seq: 2 + i, nodeId, type: "NODE_COMPLETED" as const, data };
    }),
  ];
}

/**
 * The whole event log of a run refused before it started (its pipeline does not validate):
 * RUN_STARTED, then RUN_FAILED with the validation message. Stored with the run itself.
 */
export function refusedRunEvents(
  run: Pick<RunRecord, "pipelineId" | "pipelineVersion" | "definition">,
  error: string,
  at: Date,
): Omit<TypedRunEvent<"RUN_STARTED" | "RUN_FAILED">, "runId">[] {
  const base = { nodeId: null, attempt: null, at };
  return [
    { ...base, seq: 1, type: "RUN_STARTED", data: startedData(run) },
    { ...base, seq: 2, type: "RUN_FAILED", data: { error } },
  ];
}
