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
import type { RunEventType } from "../domain/status.ts";
import type { RunPatch } from "../store/types.ts";
import { errorMessage, NodeError } from "./errors.ts";
import type { RunWriter } from "./writer.ts";

/** Outputs larger than this (as JSON) are left out of NODE_COMPLETED's data; the node run keeps them. */
const MAX_EVENT_OUTPUT_BYTES = 16 * 1024;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export class RunRecorder {
  readonly #runId: string;
  readonly #writer: RunWriter;
  readonly #nodeRuns = new Map<string, Mutable<NodeRunRecord>>();
  #seq: number;

  constructor(
    runId: string,
    writer: RunWriter,
    lastSeq: number,
    stored: readonly NodeRunRecord[] = [],
  ) {
    this.#runId = runId;
    this.#writer = writer;
    this.#seq = lastSeq;
    for (const record of stored) this.#nodeRuns.set(record.nodeId, { ...record });
  }

  /** The last seq used (0: no event yet). */
  get seq(): number {
    return this.#seq;
  }

  /** Attempts made so far by a node. */
  attempts(nodeId: string): number {
    return this.#nodeRuns.get(nodeId)?.attempts ?? 0;
  }

  /** The output of a completed node, or undefined. */
  completedOutput(nodeId: string): JsonValue | undefined {
    const record = this.#nodeRuns.get(nodeId);
    return record?.status === "COMPLETED" ? (record.output as JsonValue) : undefined;
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
    this.#writer.patchRun({ id: this.#runId, ...patch });
  }

  #node(nodeId: string, change: Partial<NodeRunRecord>): void {
    let record = this.#nodeRuns.get(nodeId);
    if (!record) {
      record = {
        runId: this.#runId,
        nodeId,
        status: "PENDING",
        attempts: 0,
        output: undefined,
        error: null,
        startedAt: null,
        completedAt: null,
      };
      this.#nodeRuns.set(nodeId, record);
    }
    Object.assign(record, change);
    this.#writer.putNodeRun({ ...record });
  }

  nodeStarted(node: NodeDefinition, attempt: number): void {
    this.#event("NODE_STARTED", node.id, attempt, { type: node.type });
    const startedAt = this.#nodeRuns.get(node.id)?.startedAt ?? new Date();
    this.#node(node.id, { status: "RUNNING", attempts: attempt, startedAt, error: null });
  }

  nodeRetrying(nodeId: string, attempt: number, delayMs: number, error: unknown): void {
    this.#event("NODE_RETRYING", nodeId, attempt, { delayMs, error: errorMessage(error) });
    this.#node(nodeId, { status: "RETRYING", error: errorMessage(error) });
  }

  nodeCompleted(nodeId: string, attempt: number, output: JsonValue): void {
    const bytes = (JSON.stringify(output) ?? "null").length;
    this.#event(
      "NODE_COMPLETED",
      nodeId,
      attempt,
      bytes > MAX_EVENT_OUTPUT_BYTES ? { outputBytes: bytes, truncated: true } : { output },
    );
    this.#node(nodeId, {
      status: "COMPLETED",
      attempts: attempt,
      output,
      error: null,
      completedAt: new Date(),
    });
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
    this.#node(node.id, {
      status: "FAILED",
      attempts: attempt,
      output,
      error: message,
      completedAt: new Date(),
    });
  }

  nodeSkipped(nodeId: string): void {
    this.#event("NODE_SKIPPED", nodeId, null, { reason: "no live incoming edge" });
    this.#node(nodeId, { status: "SKIPPED", completedAt: new Date() });
  }

  /** Nodes still running when the run ends: every started node ends in a terminal state. */
  cancelRunningNodes(now: Date): void {
    for (const [nodeId, record] of this.#nodeRuns) {
      if (record.status === "RUNNING" || record.status === "RETRYING")
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
