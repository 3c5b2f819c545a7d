/**
 * The engine of one instance: compiles pipelines, starts runs, executes the runs it owns
 * (which ones is ownership.ts's business), cancels them wherever they execute, and streams
 * their events. No GraphQL in here.
 */
import { LRUCache } from "lru-cache";
import PQueue from "p-queue";
import type { Logger } from "pino";
import {
  BREAKER_NODE_TYPES,
  type NodeType,
  type PipelineDefinition,
  type PipelineInput,
} from "../domain/definition.ts";
import { assertJsonWithinLimits, BadInputError, NotFoundError } from "../domain/errors.ts";
import type { JsonValue } from "../domain/json.ts";
import type { BreakerRecord, RunEventRecord, RunRecord } from "../domain/records.ts";
import { isTerminalRunStatus } from "../domain/status.ts";
import { validationFailureMessage } from "../domain/validation.ts";
import { type NewRun, type Store, StoreError } from "../store/types.ts";
import { BreakerGuard } from "./breaker.ts";
import type { EventBus } from "./bus.ts";
import { type CompiledPipeline, type CompileOutcome, compilePipeline } from "./dag.ts";
import { ActionRegistry } from "./nodes/actions.ts";
import { AgentRegistry } from "./nodes/agents.ts";
import {
  conditionHandler,
  delayHandler,
  parallelHandler,
  triggerHandler,
} from "./nodes/builtin.ts";
import type { NodeHandler } from "./nodes/types.ts";
import { DEFAULT_LIMITS, type EngineOptions } from "./options.ts";
import { RunOwnership } from "./ownership.ts";
import { definitionFromInput, type InputLimits } from "./pipeline-input.ts";
import { RunExecution } from "./run-execution.ts";
import { refusedRunEvents } from "./run-recorder.ts";
import { runEventStream } from "./stream.ts";
import { RunWriter } from "./writer.ts";

/** How long `cancelRun` waits for another instance to confirm the cancel. */
const REMOTE_CANCEL_WAIT_MS = 3000;

export class Engine {
  readonly store: Store;
  readonly bus: EventBus;
  readonly actions: ActionRegistry;
  readonly agents: AgentRegistry;
  readonly breakers: BreakerGuard;
  readonly instanceId: string;
  readonly #logger: Logger;
  readonly #queue: PQueue;
  readonly #writer: RunWriter;
  readonly #handlers: Record<NodeType, NodeHandler>;
  readonly #active = new Map<string, RunExecution>();
  readonly #ownership: RunOwnership;
  readonly #options: EngineOptions;
  readonly #limits: InputLimits;
  /** Compiled pipeline versions (a version compiles the same while the actions stay the same). */
  readonly #compiled = new LRUCache<string, CompileOutcome>({ max: 256 });
  #stopping = false;
  /** Runs being created here to execute here: they count against maxActiveRuns already. */
  #starting = 0;

  constructor(options: EngineOptions) {
    this.store = options.store;
    this.bus = options.bus;
    this.instanceId = options.instanceId;
    this.#logger = options.logger;
    this.#options = options;
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#queue = new PQueue({ concurrency: options.maxConcurrentNodes ?? 64 });
    this.#writer = new RunWriter({
      store: options.store,
      bus: options.bus,
      logger: options.logger,
      ownerId: options.instanceId,
      onRejected: (runIds) => {
        for (const id of runIds) this.#lost(id);
      },
      // Nothing of these runs can be written: stop them here (the lease then lapses) so that
      // they are resumed from what is stored once the database is back.
      onGaveUp: (runIds) => {
        for (const id of runIds) this.#active.get(id)?.abandon(true);
      },
    });
    this.#ownership = new RunOwnership(options, {
      ids: () => [...this.#active.keys()],
      execute: (run) => this.#execute(run),
      lost: (runId) => this.#lost(runId),
      cancel: (runId) => this.#active.get(runId)?.cancel(),
    });
    this.breakers = new BreakerGuard(options.store, options.now);
    this.actions = new ActionRegistry({ httpAllowlist: options.httpAllowlist ?? [] });
    this.agents = new AgentRegistry(options.agents ?? []);
    this.#handlers = {
      TRIGGER: triggerHandler,
      PARALLEL: parallelHandler,
      CONDITION: conditionHandler,
      DELAY: delayHandler,
      ACTION: this.actions.handler,
      AGENT: this.agents.handler,
    };
  }

  /** Runs this instance is executing now. */
  get activeRuns(): number {
    return this.#active.size;
  }

  /** Node executions queued or under way in this process (sleeping DELAY nodes included). */
  get queuedNodes(): number {
    let inFlight = 0;
    for (const execution of this.#active.values()) inFlight += execution.inFlight;
    return inFlight;
  }

  /** Validates a definition with this engine's limits and registered actions. */
  compile(definition: PipelineDefinition): CompileOutcome {
    return compilePipeline(definition, { ...this.#limits, actions: this.actions });
  }

  /**
   * Client input as a definition, refusing documents over the size limits.
   * @param countLimits false: too many nodes or edges are left for validation to report
   * @throws {AppError} PIPELINE_TOO_LARGE, JSON_TOO_DEEP, JSON_TOO_LARGE
   */
  definitionFromInput(input: PipelineInput, countLimits = true): PipelineDefinition {
    return definitionFromInput(input, this.#limits, countLimits);
  }

  /** Each pipeline version is compiled once, not once when a run is created and again when executed. */
  #compileVersion(
    pipelineId: string,
    version: number,
    definition: PipelineDefinition,
  ): CompileOutcome {
    const key = `${pipelineId}@${version}#${this.actions.generation}`;
    let outcome = this.#compiled.get(key);
    if (!outcome) {
      outcome = this.compile(definition);
      this.#compiled.set(key, outcome);
    }
    return outcome;
  }

  /** Begins taking runs (queued ones, and those of dead instances) and renewing leases. */
  start(): void {
    if (!this.#stopping) this.#ownership.start();
  }

  #lost(runId: string): void {
    const execution = this.#active.get(runId);
    if (!execution || execution.ended) return;
    this.#logger.warn({ runId }, "lease lost: another instance owns the run now; stopping here");
    execution.abandon(true);
  }

  /** Starts executing a run this instance has just claimed. */
  async #execute(run: RunRecord): Promise<void> {
    if (this.#active.has(run.id)) return;
    const outcome = this.#compileVersion(run.pipelineId, run.pipelineVersion, run.definition);
    const resume =
      run.status === "RUNNING"
        ? {
            nodeRuns: (await this.store.getNodeRuns([run.id])).get(run.id) ?? [],
            lastSeq: await this.store.lastSeq(run.id),
          }
        : undefined;
    const services = {
      writer: this.#writer,
      breakers: this.breakers,
      handlers: this.#handlers,
      queue: this.#queue,
      logger: this.#logger,
      createRunQueue: (concurrency: number) => new PQueue({ concurrency }),
      outputLimits: this.#options.outputLimits,
    };
    const compiled: CompiledPipeline = outcome.valid
      ? outcome.pipeline
      : {
          definition: run.definition,
          nodes: new Map(),
          order: [],
          outgoing: new Map(),
          incoming: new Map(),
          conditions: new Map(),
        };
    const execution = new RunExecution(run, compiled, services, resume);
    this.#active.set(run.id, execution);
    execution.done.then(
      () => this.#active.delete(run.id),
      () => this.#active.delete(run.id),
    );
    if (!outcome.valid)
      execution.finishUnstarted("FAILED", validationFailureMessage(outcome.errors));
    else if (run.cancelRequested) execution.finishUnstarted("CANCELLED", "cancelled by request");
    else execution.start();
  }

  /**
   * Creates a run and starts it here if this instance has room (otherwise it waits QUEUED for
   * any instance). Returns at once; the run goes on in the background. A pipeline that does not
   * validate gets a FAILED run whose error starts "Validation failed:".
   */
  async runPipeline(pipelineId: string, triggerData: JsonValue = null): Promise<RunRecord> {
    assertJsonWithinLimits(triggerData, this.#limits, "triggerData");
    const [pipeline] = await this.store.getPipelines([pipelineId]);
    if (!pipeline) throw new NotFoundError("pipeline", pipelineId);
    const outcome = this.#compileVersion(pipelineId, pipeline.version, pipeline.definition);
    const base = {
      pipelineId,
      pipelineVersion: pipeline.version,
      triggerData,
      definition: pipeline.definition,
    };
    if (!outcome.valid) {
      const now = new Date();
      const error = validationFailureMessage(outcome.errors);
      return this.#createRun(
        { ...base, status: "FAILED", error, startedAt: now, completedAt: now },
        refusedRunEvents(base, error, now),
      );
    }
    const queued: NewRun = {
      ...base,
      status: "QUEUED",
      error: null,
      startedAt: null,
      completedAt: null,
    };
    if (
      !this.#ownership.taking ||
      this.#active.size + this.#starting >= this.#ownership.maxActiveRuns
    ) {
      // No room here: tell the other instances, so that one with room takes it now.
      const run = await this.#createRun(queued, []);
      this.bus.publishWork();
      return run;
    }
    // Created under this instance's lease, so that no other instance's poll takes it first.
    this.#starting++;
    let run: RunRecord;
    try {
      run = await this.#createRun({ ...queued, lease: this.#ownership.lease() }, []);
      await this.#execute(run);
    } finally {
      this.#starting--;
    }
    return { ...run, status: "RUNNING", startedAt: new Date() };
  }

  /** The store's createRun, with a pipeline deleted meanwhile reported as NOT_FOUND. */
  async #createRun(run: NewRun, events: Parameters<Store["createRun"]>[1]): Promise<RunRecord> {
    try {
      return await this.store.createRun(run, events);
    } catch (error) {
      if (error instanceof StoreError && error.code === "NOT_FOUND")
        throw new NotFoundError("pipeline", run.pipelineId);
      throw error;
    }
  }

  /**
   * Cancels a run wherever it executes. A finished run is returned unchanged. Resolves with the
   * run as stored once the cancel has taken effect (or, for a run owned by an instance that does
   * not answer in time, with the cancel requested).
   */
  async cancelRun(runId: string): Promise<RunRecord> {
    const local = this.#active.get(runId);
    if (local) {
      local.cancel();
      await local.done;
      return this.#getRun(runId);
    }
    const run = await this.#getRun(runId);
    if (isTerminalRunStatus(run.status)) return run;
    await this.store.requestCancel(runId);
    // Unowned (queued) or orphaned: take it and end it here.
    const claimed = await this.#ownership.claim(runId);
    if (claimed) {
      await this.#execute({ ...claimed, cancelRequested: true });
      await this.#active.get(runId)?.done;
      return this.#getRun(runId);
    }
    this.bus.publishCancel(runId);
    return this.#waitForEnd(runId, REMOTE_CANCEL_WAIT_MS);
  }

  async #waitForEnd(runId: string, timeoutMs: number): Promise<RunRecord> {
    const ended = new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const unsubscribe = this.bus.onRunEvent(runId, (event) => {
        if (event.type.startsWith("RUN_") && event.type !== "RUN_STARTED") done();
      });
      function done() {
        clearTimeout(timer);
        unsubscribe();
        resolve();
      }
    });
    // The end may have been written between the read above and the subscription.
    const current = await this.#getRun(runId);
    if (isTerminalRunStatus(current.status)) return current;
    await ended;
    return this.#getRun(runId);
  }

  async #getRun(runId: string): Promise<RunRecord> {
    const [run] = await this.store.getRuns([runId]);
    if (!run) throw new NotFoundError("run", runId);
    return run;
  }

  /** Closes a node's breaker and clears its failure count. */
  async resetBreaker(pipelineId: string, nodeId: string): Promise<BreakerRecord> {
    const [pipeline] = await this.store.getPipelines([pipelineId]);
    if (!pipeline) throw new NotFoundError("pipeline", pipelineId);
    const node = pipeline.definition.nodes.find((n) => n.id === nodeId);
    if (!node)
      throw new BadInputError(`pipeline "${pipelineId}" has no node "${nodeId}"`, {
        pipelineId,
        nodeId,
      });
    if (!BREAKER_NODE_TYPES.has(node.type)) {
      throw new BadInputError(
        `node "${nodeId}" is a ${node.type}; only ACTION and AGENT nodes have breakers`,
      );
    }
    return this.breakers.reset(pipelineId, nodeId);
  }

  /** The run's events: stored ones after `after`, then live ones until the run ends. */
  async events(runId: string, after = 0): Promise<AsyncIterableIterator<RunEventRecord>> {
    if (!Number.isInteger(after) || after < 0)
      throw new BadInputError(`after must be a whole number ≥ 0, got ${after}`);
    await this.#getRun(runId);
    return runEventStream(this.store, this.bus, runId, after, {
      isLocal: () => this.#active.has(runId),
    });
  }

  /**
   * Stops: takes no more runs, lets running nodes finish for up to `graceMs`, then hands the
   * runs still going back (their leases are released, so another instance resumes them at
   * once) and flushes everything written.
   */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#ownership.stopTaking();
    const executions = [...this.#active.values()];
    const idle = Promise.all(executions.map((execution) => execution.pause()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      idle,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
    ]);
    clearTimeout(timer);
    const unfinished: string[] = [];
    for (const execution of executions) {
      if (!execution.ended) {
        execution.abandon(false);
        unfinished.push(execution.id);
      }
    }
    await this.#writer.close();
    await this.#ownership.stop(unfinished);
    this.#queue.clear();
  }
}
