/**
 * One run being executed by this instance: dispatches ready nodes, records every step, ends
 * the run once.
 *
 * Invariants:
 * - events get seq = previous + 1, in the order they happen; the terminal event is the last;
 * - `#end` runs once: after it, nothing but the end itself is written;
 * - every node that started ends COMPLETED, FAILED or (when the run ends under it) CANCELLED;
 * - nodes of an inline type (TRIGGER, PARALLEL, CONDITION) run synchronously in the drain
 *   loop; the others go through the global queue (and the run's own queue when the pipeline
 *   sets maxConcurrency).
 */
import type PQueue from "p-queue";
import type { Logger } from "pino";
import type { NodeRunRecord, RunEventRecord, RunRecord } from "../store/types.ts";
import type { BreakerGuard } from "./breaker.ts";
import type { CompiledPipeline } from "./dag.ts";
import {
  BREAKER_NODE_TYPES,
  breakerSettingsOf,
  type JsonValue,
  type NodeDefinition,
  type NodeType,
  retryPolicyOf,
} from "./definition.ts";
import { errorMessage, NodeError } from "./errors.ts";
import type { NodeContext, NodeHandler } from "./nodes/types.ts";
import { executeWithRetry } from "./retry.ts";
import { type Progress, RunState, type Settlement } from "./run-state.ts";
import type { RunEventType, RunStatus } from "./types.ts";
import type { RunWriter } from "./writer.ts";

const INLINE_TYPES: ReadonlySet<NodeType> = new Set(["TRIGGER", "PARALLEL", "CONDITION"]);
/** Inline nodes run per turn of the event loop before yielding to other work. */
const INLINE_SLICE = 512;
/** Outputs larger than this (as JSON) are left out of NODE_COMPLETED's data (still stored on the node run). */
const MAX_EVENT_OUTPUT_BYTES = 16 * 1024;

export interface ExecutionServices {
  readonly writer: RunWriter;
  readonly breakers: BreakerGuard;
  readonly handlers: Readonly<Record<NodeType, NodeHandler>>;
  readonly queue: PQueue;
  readonly logger: Logger;
  readonly createRunQueue: (concurrency: number) => PQueue;
}

export interface ResumeState {
  readonly nodeRuns: readonly NodeRunRecord[];
  readonly lastSeq: number;
}

export type ExecutionOutcome = RunStatus | "ABANDONED";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Ending =
  | { readonly status: "COMPLETED" }
  | { readonly status: "FAILED"; readonly error: string; readonly nodeId?: string }
  | { readonly status: "CANCELLED"; readonly error: string }
  | { readonly status: "TIMED_OUT"; readonly error: string };

function settlementOf(
  record: NodeRunRecord,
  node: NodeDefinition,
): Settlement | "failed" | undefined {
  const output = (record.output ?? null) as JsonValue;
  switch (record.status) {
    case "COMPLETED":
      return node.type === "CONDITION"
        ? {
            kind: "completed",
            output,
            branch: Boolean((output as { result?: unknown } | null)?.result),
          }
        : { kind: "completed", output };
    case "SKIPPED":
      return { kind: "skipped" };
    case "FAILED":
      if (node.type === "CONDITION") return { kind: "completed", output, branch: false };
      return node.continueOnFail ? { kind: "completed", output } : "failed";
    default:
      return undefined;
  }
}

export class RunExecution {
  readonly run: RunRecord;
  /** Settles with the run's final status, or ABANDONED when handed to another instance. */
  readonly done: Promise<ExecutionOutcome>;
  readonly #pipeline: CompiledPipeline;
  readonly #services: ExecutionServices;
  readonly #state: RunState;
  readonly #controller = new AbortController();
  readonly #nodeRuns = new Map<string, Mutable<NodeRunRecord>>();
  readonly #runQueue: PQueue | undefined;
  readonly #logger: Logger;
  #resolveDone!: (outcome: ExecutionOutcome) => void;
  #seq: number;
  #ready: string[] = [];
  #readyHead = 0;
  #inFlight = 0;
  #ending = false;
  #paused = false;
  #draining = false;
  #deadline: NodeJS.Timeout | undefined;
  #idleWaiters: (() => void)[] = [];
  #resume: ResumeState | undefined;
  #startedAt: Date;
  readonly #ancestorCache = new Map<string, Set<string>>();

  constructor(
    run: RunRecord,
    pipeline: CompiledPipeline,
    services: ExecutionServices,
    resume?: ResumeState,
  ) {
    this.run = run;
    this.#pipeline = pipeline;
    this.#services = services;
    this.#state = new RunState(pipeline);
    this.#seq = resume?.lastSeq ?? 0;
    this.#resume = resume;
    this.#startedAt = run.startedAt ?? new Date();
    this.#logger = services.logger.child({ runId: run.id, pipelineId: run.pipelineId });
    const concurrency = pipeline.definition.maxConcurrency;
    this.#runQueue = concurrency ? services.createRunQueue(concurrency) : undefined;
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  get id(): string {
    return this.run.id;
  }

  /** Node executions under way. */
  get inFlight(): number {
    return this.#inFlight;
  }

  get ended(): boolean {
    return this.#ending;
  }

  /** Starts a fresh run, or picks up a resumed one where its stored state left it. */
  start(now = new Date()): void {
    this.#startedAt = this.run.startedAt ?? now;
    const deadlineAt =
      this.run.deadlineAt ??
      new Date(now.getTime() + this.#pipeline.definition.timeoutSeconds * 1000);
    if (!this.#resume || this.#seq === 0) {
      this.#emit("RUN_STARTED", null, null, {
        pipelineId: this.run.pipelineId,
        pipelineVersion: this.run.pipelineVersion,
        nodeCount: this.#pipeline.order.length,
      });
      this.#services.writer.patchRun({
        id: this.id,
        status: "RUNNING",
        startedAt: this.run.startedAt ?? now,
        deadlineAt,
      });
    } else if (this.run.status === "QUEUED") {
      this.#services.writer.patchRun({
        id: this.id,
        status: "RUNNING",
        startedAt: now,
        deadlineAt,
      });
    }
    const remaining = deadlineAt.getTime() - now.getTime();
    if (remaining <= 0) {
      this.#timeOut();
      return;
    }
    this.#deadline = setTimeout(() => this.#timeOut(), Math.min(remaining, 2 ** 31 - 1));
    this.#deadline.unref?.();

    let progress: Progress;
    if (this.#resume && this.#resume.nodeRuns.length > 0) {
      const stored = new Map<string, Settlement>();
      for (const record of this.#resume.nodeRuns) {
        const node = this.#pipeline.nodes.get(record.nodeId);
        if (!node) continue;
        this.#nodeRuns.set(record.nodeId, { ...record });
        const settlement = settlementOf(record, node);
        if (settlement === "failed") {
          this.#end({
            status: "FAILED",
            error: record.error ?? `node "${record.nodeId}" failed`,
            nodeId: record.nodeId,
          });
          return;
        }
        if (settlement) stored.set(record.nodeId, settlement);
      }
      progress = this.#state.restore(stored);
      this.#logger.info({ settled: stored.size, ready: progress.ready.length }, "resuming run");
    } else {
      progress = { ready: this.#state.roots(), skipped: [] };
    }
    this.#resume = undefined;
    this.#advance(progress);
  }

  /**
   * Ends a run that was never started here (cancelled while QUEUED, or found cancelled when
   * taken over): RUN_STARTED if the run has no events yet, then the terminal event.
   */
  finishUnstarted(status: "CANCELLED" | "FAILED", error: string): void {
    for (const record of this.#resume?.nodeRuns ?? [])
      this.#nodeRuns.set(record.nodeId, { ...record });
    if (this.#seq === 0) {
      this.#emit("RUN_STARTED", null, null, {
        pipelineId: this.run.pipelineId,
        pipelineVersion: this.run.pipelineVersion,
        nodeCount: this.#pipeline.order.length,
      });
    }
    this.#startedAt = this.run.startedAt ?? new Date();
    this.#end(status === "CANCELLED" ? { status, error } : { status, error });
  }

  /** Ends the run CANCELLED: aborts running handlers and backoff waits, starts nothing new. */
  cancel(reason = "cancelled by request"): void {
    this.#end({ status: "CANCELLED", error: reason });
  }

  /** Stops dispatching new nodes; resolves when the nodes under way have finished. */
  pause(): Promise<void> {
    this.#paused = true;
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Stops executing without ending the run, so that another instance resumes it. With
   * `dropWrites` (the lease is lost: someone else owns the run now) nothing pending is
   * written either.
   */
  abandon(dropWrites: boolean): void {
    if (this.#ending) return;
    this.#ending = true;
    clearTimeout(this.#deadline);
    this.#controller.abort(new Error("run handed over to another instance"));
    if (dropWrites) this.#services.writer.drop(this.id);
    this.#resolveDone("ABANDONED");
  }

  #emit(
    type: RunEventType,
    nodeId: string | null,
    attempt: number | null,
    data: RunEventRecord["data"],
  ): void {
    this.#services.writer.appendEvent({
      runId: this.id,
      seq: ++this.#seq,
      type,
      nodeId,
      attempt,
      at: new Date(),
      data,
    });
  }

  #putNodeRun(nodeId: string, change: Partial<NodeRunRecord>): Mutable<NodeRunRecord> {
    let record = this.#nodeRuns.get(nodeId);
    if (!record) {
      record = {
        runId: this.id,
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
    this.#services.writer.putNodeRun({ ...record });
    return record;
  }

  #advance(progress: Progress): void {
    for (const id of progress.skipped) {
      this.#emit("NODE_SKIPPED", id, null, { reason: "no live incoming edge" });
      this.#putNodeRun(id, { status: "SKIPPED", completedAt: new Date() });
    }
    for (const id of progress.ready) this.#ready.push(id);
    this.#drain();
  }

  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    try {
      let inline = 0;
      while (this.#readyHead < this.#ready.length && !this.#ending && !this.#paused) {
        const node = this.#pipeline.nodes.get(this.#ready[this.#readyHead++]!)!;
        if (!INLINE_TYPES.has(node.type)) {
          this.#enqueue(node);
          continue;
        }
        this.#runInline(node);
        if (++inline >= INLINE_SLICE) {
          // Yield so that the writer can flush and other runs get a turn.
          setImmediate(() => this.#drain());
          return;
        }
      }
      if (this.#readyHead === this.#ready.length) {
        this.#ready = [];
        this.#readyHead = 0;
      }
      this.#checkComplete();
    } finally {
      this.#draining = false;
    }
  }

  /** Nodes upstream of `nodeId`, computed when a template first needs them. */
  #ancestors(nodeId: string): ReadonlySet<string> {
    let found = this.#ancestorCache.get(nodeId);
    if (found) return found;
    found = new Set<string>();
    const stack = [nodeId];
    while (stack.length > 0) {
      for (const edge of this.#pipeline.incoming.get(stack.pop()!) ?? []) {
        if (!found.has(edge.source)) {
          found.add(edge.source);
          stack.push(edge.source);
        }
      }
    }
    this.#ancestorCache.set(nodeId, found);
    return found;
  }

  #context(node: NodeDefinition, attempt: number, signal: AbortSignal): NodeContext {
    return {
      runId: this.id,
      pipelineId: this.run.pipelineId,
      node,
      inputs: this.#state.inputsOf(node.id),
      upstream: (id) => {
        const record = this.#nodeRuns.get(id);
        return record?.status === "COMPLETED" && this.#ancestors(node.id).has(id)
          ? (record.output as JsonValue)
          : undefined;
      },
      trigger: (this.run.triggerData ?? null) as JsonValue,
      attempt,
      signal,
      logger: this.#logger,
      expression: this.#pipeline.conditions.get(node.id),
    };
  }

  #started(node: NodeDefinition, attempt: number): void {
    this.#emit("NODE_STARTED", node.id, attempt, { type: node.type });
    const record = this.#nodeRuns.get(node.id);
    this.#putNodeRun(node.id, {
      status: "RUNNING",
      attempts: attempt,
      startedAt: record?.startedAt ?? new Date(),
      error: null,
    });
  }

  #completed(node: NodeDefinition, attempt: number, output: JsonValue): void {
    const json = JSON.stringify(output) ?? "null";
    this.#emit(
      "NODE_COMPLETED",
      node.id,
      attempt,
      json.length > MAX_EVENT_OUTPUT_BYTES
        ? { outputBytes: json.length, truncated: true }
        : { output },
    );
    this.#putNodeRun(node.id, {
      status: "COMPLETED",
      attempts: attempt,
      output,
      error: null,
      completedAt: new Date(),
    });
    const branch =
      node.type === "CONDITION" ? Boolean((output as { result?: unknown }).result) : undefined;
    this.#advance(this.#state.settle(node.id, { kind: "completed", output, branch }));
  }

  #failed(node: NodeDefinition, attempt: number, error: unknown): void {
    const message = errorMessage(error);
    const code = error instanceof NodeError ? error.code : "ERROR";
    const retryable = error instanceof NodeError ? error.retryable : true;
    this.#emit("NODE_FAILED", node.id, attempt || null, {
      error: message,
      code,
      retryable,
      continueOnFail: Boolean(node.continueOnFail),
    });
    if (node.type === "CONDITION") {
      // Seed semantics: an expression that errors counts as false and the run goes on.
      const output = { result: false, error: message };
      this.#putNodeRun(node.id, {
        status: "FAILED",
        attempts: attempt,
        output,
        error: message,
        completedAt: new Date(),
      });
      this.#advance(this.#state.settle(node.id, { kind: "completed", output, branch: false }));
      return;
    }
    if (node.continueOnFail) {
      const output = { error: message };
      this.#putNodeRun(node.id, {
        status: "FAILED",
        attempts: attempt,
        output,
        error: message,
        completedAt: new Date(),
      });
      this.#advance(this.#state.settle(node.id, { kind: "completed", output }));
      return;
    }
    this.#putNodeRun(node.id, {
      status: "FAILED",
      attempts: attempt,
      error: message,
      completedAt: new Date(),
    });
    const after =
      attempt === 0 ? "" : attempt === 1 ? " after 1 attempt" : ` after ${attempt} attempts`;
    this.#end({
      status: "FAILED",
      error: `node "${node.id}" failed${after}: ${message}`,
      nodeId: node.id,
    });
  }

  #runInline(node: NodeDefinition): void {
    const attempt = (this.#nodeRuns.get(node.id)?.attempts ?? 0) + 1;
    this.#started(node, attempt);
    let output: JsonValue;
    try {
      output = this.#services.handlers[node.type](
        this.#context(node, attempt, this.#controller.signal),
      ) as JsonValue;
    } catch (error) {
      this.#failed(node, attempt, error);
      return;
    }
    this.#completed(node, attempt, output);
  }

  #enqueue(node: NodeDefinition): void {
    this.#inFlight++;
    const signal = this.#controller.signal;
    const task = () => this.#services.queue.add(() => this.#runAsync(node), { signal });
    const queued = this.#runQueue ? this.#runQueue.add(task, { signal }) : task();
    queued
      .catch((error: unknown) => {
        // Aborted while waiting in a queue: the run is ending, nothing to record.
        if (!signal.aborted)
          this.#logger.error({ err: error, nodeId: node.id }, "node task failed unexpectedly");
      })
      .finally(() => {
        this.#inFlight--;
        if (this.#inFlight === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
        this.#drain();
      });
  }

  async #runAsync(node: NodeDefinition): Promise<void> {
    if (this.#ending) return;
    const pipelineId = this.run.pipelineId;
    const guarded = BREAKER_NODE_TYPES.has(node.type);
    const settings = breakerSettingsOf(node, this.#pipeline.definition);
    const previousAttempts = this.#nodeRuns.get(node.id)?.attempts ?? 0;
    let attempt = previousAttempts;
    let trial = false;
    let clean = true;
    if (guarded) {
      const admission = await this.#services.breakers.admit(pipelineId, node.id, settings);
      if (this.#ending) return;
      if (!admission.admitted) {
        this.#failed(node, previousAttempts, admission.error);
        return;
      }
      trial = admission.trial;
      clean = admission.clean ?? false;
    }
    const policy = retryPolicyOf(node, this.#pipeline.definition);
    const signal = this.#controller.signal;
    try {
      const output = await executeWithRetry(
        async (context) => {
          attempt = context.attempt;
          this.#started(node, attempt);
          return (await this.#services.handlers[node.type](
            this.#context(node, attempt, context.signal),
          )) as JsonValue;
        },
        {
          ...policy,
          // A run resumed after a crash still gets one attempt, whatever was used before.
          maxAttempts: Math.max(1, policy.maxAttempts - previousAttempts),
          previousAttempts,
          timeoutMs: node.timeoutMs ?? null,
          onRetry: ({ attempt: failed, delayMs, error }) => {
            if (this.#ending) return;
            this.#emit("NODE_RETRYING", node.id, failed, { delayMs, error: errorMessage(error) });
            this.#putNodeRun(node.id, { status: "RETRYING", error: errorMessage(error) });
          },
        },
        signal,
      );
      if (this.#ending)
        return void (await this.#services.breakers.abandoned(pipelineId, node.id, trial));
      if (guarded && (trial || !clean))
        await this.#services.breakers.succeeded(pipelineId, node.id, trial);
      if (this.#ending) return;
      this.#completed(node, attempt, output);
    } catch (error) {
      if (signal.aborted || this.#ending) {
        await this.#services.breakers.abandoned(pipelineId, node.id, trial).catch(() => {});
        return;
      }
      if (guarded) {
        // Awaited, so that a run started right after this one fails sees the breaker's count.
        const breaker = await this.#services.breakers
          .failed(pipelineId, node.id, trial, settings)
          .catch((err: unknown) => {
            this.#logger.error({ err, nodeId: node.id }, "could not record a breaker failure");
            return null;
          });
        if (
          breaker?.state === "OPEN" &&
          breaker.openedAt &&
          Date.now() - breaker.openedAt.getTime() < 1000
        ) {
          this.#logger.warn(
            { nodeId: node.id, failures: breaker.failureCount },
            "circuit breaker opened",
          );
        }
      }
      if (this.#ending) return;
      this.#failed(node, attempt, error);
    }
  }

  #checkComplete(): void {
    if (!this.#ending && this.#inFlight === 0 && this.#state.isComplete())
      this.#end({ status: "COMPLETED" });
  }

  #timeOut(): void {
    this.#end({
      status: "TIMED_OUT",
      error: `run timed out after ${this.#pipeline.definition.timeoutSeconds} s`,
    });
  }

  /** The one way a run ends. Invariant: runs once; the terminal event is the last event. */
  #end(ending: Ending): void {
    if (this.#ending) return;
    this.#ending = true;
    clearTimeout(this.#deadline);
    this.#controller.abort(
      new Error(
        ending.status === "COMPLETED" ? "run completed" : `run ${ending.status.toLowerCase()}`,
      ),
    );
    const now = new Date();
    for (const [nodeId, record] of this.#nodeRuns) {
      if (record.status === "RUNNING" || record.status === "RETRYING") {
        this.#putNodeRun(nodeId, { status: "CANCELLED", completedAt: now });
      }
    }
    const started = this.#startedAt;
    switch (ending.status) {
      case "COMPLETED":
        this.#emit("RUN_COMPLETED", null, null, { durationMs: now.getTime() - started.getTime() });
        break;
      case "FAILED":
        this.#emit("RUN_FAILED", ending.nodeId ?? null, null, { error: ending.error });
        break;
      case "CANCELLED":
        this.#emit("RUN_CANCELLED", null, null, { reason: ending.error });
        break;
      case "TIMED_OUT":
        this.#emit("RUN_TIMED_OUT", null, null, {
          timeoutSeconds: this.#pipeline.definition.timeoutSeconds,
        });
        break;
    }
    this.#services.writer.patchRun({
      id: this.id,
      status: ending.status,
      error: ending.status === "COMPLETED" ? null : ending.error,
      completedAt: now,
    });
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
    this.#services.writer.flush().then(() => this.#resolveDone(ending.status));
  }
}
