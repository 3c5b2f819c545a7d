/**
 * One run being executed by this instance: dispatches ready nodes, decides what follows each
 * outcome, ends the run once. What gets written is RunRecorder's job.
 *
 * Invariants:
 * - events get seq = previous + 1, in the order they happen; the terminal event is the last;
 * - `#end` runs once: after it, nothing but the end itself is written;
 * - every node that started ends COMPLETED, FAILED or (when the run ends under it) CANCELLED;
 * - nodes of an inline type (TRIGGER, PARALLEL, CONDITION) run synchronously in the drain
 *   loop; ACTION and AGENT nodes wait in the run's own list for one of the process's node
 *   slots (and for the pipeline's maxConcurrency); a DELAY only waits, and takes no slot.
 */
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import type { NodeDefinition, NodeType } from "../domain/definition.ts";
import type { JsonValue } from "../domain/json.ts";
import type { NodeRunRecord, RunRecord } from "../domain/records.ts";
import type { RunStatus } from "../domain/status.ts";
import { AbortGroup, type GroupMember } from "./abort-group.ts";
import type { StoreAvailability } from "./availability.ts";
import type { BreakerGuard, RunBreakers } from "./breaker-guard.ts";
import type { CompiledPipeline } from "./dag.ts";
import { errorMessage } from "./errors.ts";
import { cachedAncestorsOf } from "./graph.ts";
import type { EngineHooks } from "./hooks.ts";
import { nodeContext, type SignalSource } from "./node-context.ts";
import { type NodeHost, type NodeOutcome, runNode } from "./node-runner.ts";
import type { NodeSlots } from "./node-slots.ts";
import type { NodeContext, NodeHandler } from "./nodes/types.ts";
import type { OutputLimits } from "./run-outputs.ts";
import { type RunEnding, RunRecorder } from "./run-recorder.ts";
import { RunSlots } from "./run-slots.ts";
import { type Progress, RunState, type Settlement, settlementOf } from "./run-state.ts";
import type { RunWriter } from "./writer.ts";

const INLINE_TYPES: ReadonlySet<NodeType> = new Set(["TRIGGER", "PARALLEL", "CONDITION"]);
/**
 * Inline nodes run for at most this long (checked every 16 nodes) before yielding to other
 * work: requests, other runs and the writer's commits (a turn's writes are one commit).
 */
const INLINE_SLICE_MS = 5;

export interface ExecutionServices {
  /** Database outages: a node whose breaker cannot be read waits for the database. */
  readonly availability?: StoreAvailability;
  readonly writer: RunWriter;
  readonly breakers: BreakerGuard;
  readonly handlers: Readonly<Record<NodeType, NodeHandler>>;
  /** The process's node slots, shared by its runs. */
  readonly slots: NodeSlots;
  readonly logger: Logger;
  readonly outputLimits?: OutputLimits;
  readonly hooks?: Pick<EngineHooks, "onRunExecuting" | "onRunDone">;
}

export interface ResumeState {
  readonly nodeRuns: readonly NodeRunRecord[];
  readonly lastSeq: number;
}

export type ExecutionOutcome = RunStatus | "ABANDONED";

export class RunExecution {
  readonly run: RunRecord;
  /** Settles with the run's final status, or ABANDONED when handed to another instance. */
  readonly done: Promise<ExecutionOutcome>;
  readonly #pipeline: CompiledPipeline;
  readonly #services: ExecutionServices;
  readonly #state: RunState;
  readonly #record: RunRecorder;
  readonly #abort = new AbortGroup();
  readonly #breakers: RunBreakers;
  /** What the executions of this run's nodes are given (see runNode). */
  readonly #host: NodeHost;
  readonly #slots: RunSlots;
  readonly #logger: Logger;
  readonly #stored: readonly NodeRunRecord[];
  #resolveDone!: (outcome: ExecutionOutcome) => void;
  #ready: string[] = [];
  #readyHead = 0;
  /** Node executions under way (DELAY included). */
  #running = 0;
  #ending = false;
  #paused = false;
  #draining = false;
  #deadline: NodeJS.Timeout | undefined;
  #idleWaiters: (() => void)[] = [];
  #startedAt: Date;

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
    this.#stored = resume?.nodeRuns ?? [];
    this.#record = new RunRecorder(
      run,
      services.writer,
      resume?.lastSeq ?? 0,
      this.#stored,
      services.outputLimits,
    );
    this.#breakers = services.breakers.forRun(run.pipelineId);
    this.#startedAt = run.startedAt ?? new Date();
    this.#logger = services.logger.child({ runId: run.id, pipelineId: run.pipelineId });
    this.#host = {
      definition: pipeline.definition,
      handlers: services.handlers,
      breakers: this.#breakers,
      logger: this.#logger,
      availability: services.availability,
      attempts: (nodeId) => this.#record.attempts(nodeId),
      context: (node, attempt, scope) => this.#context(node, attempt, scope),
      started: (node, attempt) => this.#record.nodeStarted(node, attempt),
      retrying: (node, attempt, delayMs, error) =>
        this.#record.nodeRetrying(node.id, attempt, delayMs, error),
    };
    this.#slots = new RunSlots(
      services.slots,
      pipeline.definition.maxConcurrency,
      (node) => this.#start(node, true),
      () => !this.#ending && !this.#paused,
    );
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
    const { hooks } = services;
    if (hooks?.onRunDone) void this.done.then((outcome) => hooks.onRunDone?.(run.id, outcome));
    hooks?.onRunExecuting?.(run, resume !== undefined);
  }

  get id(): string {
    return this.run.id;
  }

  /** Node executions under way or waiting for a slot. */
  get inFlight(): number {
    return this.#running + this.#slots.waiting;
  }

  get ended(): boolean {
    return this.#ending;
  }

  /** Starts a fresh run, or picks up a resumed one where its stored state left it. */
  start(now = new Date()): void {
    this.#startedAt = this.run.startedAt ?? now;
    const timeoutMs = this.#pipeline.definition.timeoutSeconds * 1000;
    // A resumed run keeps its deadline: a hand-over does not buy it more time.
    const deadlineAt = this.run.deadlineAt ?? new Date(now.getTime() + timeoutMs);
    if (this.#record.seq === 0 || this.run.status === "QUEUED" || this.run.deadlineAt === null) {
      if (this.#record.seq === 0) this.#record.runStarted(this.run);
      this.#record.patchRun({ status: "RUNNING", startedAt: this.#startedAt, deadlineAt });
    }
    const remaining = deadlineAt.getTime() - now.getTime();
    if (remaining <= 0) {
      this.#timeOut();
      return;
    }
    this.#deadline = setTimeout(() => this.#timeOut(), Math.min(remaining, 2 ** 31 - 1));
    this.#deadline.unref?.();

    if (this.#stored.length === 0) {
      this.#advance({ ready: this.#state.roots(), skipped: [] });
      return;
    }
    const settled = new Map<string, Settlement>();
    for (const record of this.#stored) {
      const node = this.#pipeline.nodes.get(record.nodeId);
      const settlement = node && settlementOf(record, node);
      if (settlement === "failed") {
        const error = record.error ?? `node "${record.nodeId}" failed`;
        this.#end({ status: "FAILED", error, nodeId: record.nodeId });
        return;
      }
      if (settlement) settled.set(record.nodeId, settlement);
    }
    const progress = this.#state.restore(settled);
    this.#logger.info({ settled: settled.size, ready: progress.ready.length }, "resuming run");
    this.#advance(progress);
  }

  /**
   * Ends a run that was never started here (cancelled while QUEUED, or found cancelled or
   * invalid when taken over): RUN_STARTED if the run has no events yet, then the terminal event.
   */
  finishUnstarted(status: "CANCELLED" | "FAILED", error: string): void {
    if (this.#record.seq === 0) this.#record.runStarted(this.run);
    this.#end({ status, error });
  }

  /** Ends the run CANCELLED: aborts running handlers and backoff waits, starts nothing new. */
  cancel(reason = "cancelled by request"): void {
    this.#end({ status: "CANCELLED", error: reason });
  }

  /** Stops dispatching new nodes; resolves when the nodes under way have finished. */
  pause(): Promise<void> {
    this.#paused = true;
    if (this.#running === 0) return Promise.resolve();
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
    this.#abort.abort("run handed over to another instance");
    this.#breakers.release();
    if (dropWrites) this.#record.drop();
    this.#resolveDone("ABANDONED");
  }

  #advance(progress: Progress): void {
    for (const id of progress.skipped) this.#record.nodeSkipped(id);
    for (const id of progress.ready) this.#ready.push(id);
    this.#drain();
  }

  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    try {
      let inline = 0;
      // Read when the first 16 inline nodes are done: most calls (a node's end) find none.
      let sliceStart = 0;
      while (this.#readyHead < this.#ready.length && !this.#ending && !this.#paused) {
        const node = this.#pipeline.nodes.get(this.#ready[this.#readyHead++]!)!;
        if (!INLINE_TYPES.has(node.type)) {
          // A DELAY only waits: it takes no slot, or 64 sleeping runs would stop all others.
          if (node.type === "DELAY") this.#start(node, false);
          else this.#slots.push(node);
          continue;
        }
        if (inline === 0) sliceStart = performance.now();
        this.#runInline(node);
        if ((++inline & 15) === 0 && performance.now() - sliceStart > INLINE_SLICE_MS) {
          // Yield so that the writer can flush and other runs get a turn.
          this.#slots.request();
          setImmediate(() => this.#drain());
          return;
        }
      }
      if (this.#readyHead > 0 && this.#readyHead === this.#ready.length) {
        this.#ready = [];
        this.#readyHead = 0;
      }
      this.#slots.request();
      if (!this.#ending && this.inFlight === 0 && this.#state.isComplete())
        this.#end({ status: "COMPLETED" });
    } finally {
      this.#draining = false;
    }
  }

  /** @param signal read only when the handler asks for it (see AbortGroup) */
  #context(node: NodeDefinition, attempt: number, signal: SignalSource): NodeContext {
    return nodeContext(
      {
        runId: this.id,
        pipelineId: this.run.pipelineId,
        node,
        inputs: this.#state.inputsOf(node.id),
        upstream: (id) =>
          cachedAncestorsOf(node.id, this.#pipeline.incoming).has(id)
            ? this.#record.completedOutput(id)
            : undefined,
        trigger: (this.run.triggerData ?? null) as JsonValue,
        attempt,
        logger: this.#logger,
        expression: this.#pipeline.conditions.get(node.id),
        startedBefore: this.#interrupted(node.id),
      },
      signal,
    );
  }

  /** When a node interrupted elsewhere (it was running when the run was taken over) began. */
  #interrupted(nodeId: string): Date | undefined {
    const record = this.#stored.find((r) => r.nodeId === nodeId);
    return record?.status === "RUNNING" ? (record.startedAt ?? undefined) : undefined;
  }

  #completed(node: NodeDefinition, attempt: number, output: JsonValue): void {
    const inputs = Object.keys(this.#state.inputsOf(node.id));
    const refused = this.#record.nodeCompleted(node.id, attempt, output, inputs);
    if (refused) {
      this.#failed(node, attempt, refused);
      return;
    }
    const branch =
      node.type === "CONDITION" ? Boolean((output as { result?: unknown }).result) : undefined;
    this.#advance(this.#state.settle(node.id, { kind: "completed", output, branch }));
  }

  #failed(node: NodeDefinition, attempt: number, error: unknown): void {
    const message = errorMessage(error);
    // Seed semantics: a condition whose expression errors counts as false; with
    // continueOnFail the error becomes the node's output. Either way the run goes on.
    let output: JsonValue | undefined;
    if (node.type === "CONDITION") output = { result: false, error: message };
    else if (node.continueOnFail) output = { error: message };
    this.#record.nodeFailed(node, attempt, error, output);
    if (output !== undefined) {
      const branch = node.type === "CONDITION" ? false : undefined;
      this.#advance(this.#state.settle(node.id, { kind: "completed", output, branch }));
      return;
    }
    const after =
      attempt === 0 ? "" : attempt === 1 ? " after 1 attempt" : ` after ${attempt} attempts`;
    this.#end({
      status: "FAILED",
      error: `node "${node.id}" failed${after}: ${message}`,
      nodeId: node.id,
    });
  }

  #runInline(node: NodeDefinition): void {
    const attempt = this.#record.attempts(node.id) + 1;
    this.#record.nodeStarted(node, attempt);
    let output: JsonValue;
    try {
      output = this.#services.handlers[node.type](
        this.#context(node, attempt, this.#abort),
      ) as JsonValue;
    } catch (error) {
      this.#failed(node, attempt, error);
      return;
    }
    this.#completed(node, attempt, output);
  }

  #start(node: NodeDefinition, slotted: boolean): void {
    this.#running++;
    const member = this.#abort.member();
    runNode(this.#host, node, member, (outcome) => this.#finish(node, member, slotted, outcome));
  }

  /** @param member the node's share of the run's abort (see AbortGroup) */
  #finish(node: NodeDefinition, member: GroupMember, slotted: boolean, outcome: NodeOutcome): void {
    try {
      if (this.#ending || outcome.kind === "aborted") return;
      if (outcome.kind === "completed") this.#completed(node, outcome.attempt, outcome.output);
      else this.#failed(node, outcome.attempt, outcome.error);
    } catch (error) {
      // A bug of the engine's own, not the node's.
      this.#logger.error({ err: error, nodeId: node.id }, "node outcome could not be recorded");
    } finally {
      member.release();
      this.#running--;
      if (slotted) this.#slots.release();
      if (this.#running === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
      this.#drain();
    }
  }

  #timeOut(): void {
    this.#end({
      status: "TIMED_OUT",
      error: `run timed out after ${this.#pipeline.definition.timeoutSeconds} s`,
    });
  }

  /** The one way a run ends. Invariant: runs once; the terminal event is the last event. */
  #end(ending: RunEnding): void {
    if (this.#ending) return;
    this.#ending = true;
    clearTimeout(this.#deadline);
    this.#abort.abort(`run ${ending.status.toLowerCase()}`);
    this.#breakers.release();
    const now = new Date();
    this.#slots.clear();
    this.#record.cancelRunningNodes(now);
    this.#record.runEnded(ending, this.#startedAt, this.#pipeline.definition.timeoutSeconds, now);
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
    void this.#record.flush().then(() => this.#resolveDone(ending.status));
  }
}
