/**
 * The engine of one instance: compiles pipelines, starts runs, executes the runs it owns
 * (which ones is ownership.ts's business), cancels them wherever they execute, and streams
 * their events. No GraphQL in here.
 */
import type { Logger } from "pino";
import type { NodeType, PipelineDefinition, PipelineInput } from "../domain/definition.ts";
import {
  AppError,
  assertJsonWithinLimits,
  BadInputError,
  NotFoundError,
} from "../domain/errors.ts";
import type { JsonValue } from "../domain/json.ts";
import type { BreakerRecord, RunEventRecord, RunRecord } from "../domain/records.ts";
import { isTerminalRunStatus } from "../domain/status.ts";
import { type ValidationError, validationFailureMessage } from "../domain/validation.ts";
import type { NewRun, NewRunRequest, Store } from "../store/types.ts";
import { StoreAvailability, untilStored } from "./availability.ts";
import { assertHasBreaker } from "./breaker.ts";
import { BreakerGuard } from "./breaker-guard.ts";
import type { EventBus } from "./bus.ts";
import { CompiledVersions } from "./compiled-versions.ts";
import { type CompiledPipeline, type CompileOutcome, compilePipeline } from "./dag.ts";
import { NodeSlots } from "./node-slots.ts";
import { ActionRegistry } from "./nodes/actions.ts";
import { AgentRegistry } from "./nodes/agents.ts";
import { nodeHandlers } from "./nodes/builtin.ts";
import type { NodeHandler } from "./nodes/types.ts";
import { DEFAULT_LIMITS, type EngineOptions } from "./options.ts";
import { RunOwnership } from "./ownership.ts";
import { definitionFromInput, type InputLimits } from "./pipeline-input.ts";
import { rerunStart } from "./rerun.ts";
import { RunCreation } from "./run-creation.ts";
import { RunExecution } from "./run-execution.ts";
import { refusedRunEvents } from "./run-recorder.ts";
import { runEventStream } from "./stream.ts";
import { RunWriter } from "./writer.ts";

/** How long stop() waits at most for the last writes when the database does not answer. */
const FINAL_FLUSH_MS = 10_000;
/** A new run's fields, but where it stands. */
type RunBase = Omit<NewRun, "status" | "error" | "startedAt" | "completedAt">;

export class Engine {
  readonly store: Store;
  readonly bus: EventBus;
  readonly actions: ActionRegistry;
  readonly agents: AgentRegistry;
  readonly breakers: BreakerGuard;
  readonly instanceId: string;
  /** Whether the database is there as this instance sees it (outages, see availability.ts). */
  readonly availability: StoreAvailability;
  readonly #logger: Logger;
  readonly #slots: NodeSlots;
  readonly #writer: RunWriter;
  readonly #handlers: Record<NodeType, NodeHandler>;
  readonly #active = new Map<string, RunExecution>();
  readonly #ownership: RunOwnership;
  readonly #creation: RunCreation;
  readonly #options: EngineOptions;
  readonly #limits: InputLimits;
  readonly #compiled = new CompiledVersions(
    (definition) => this.compile(definition),
    () => this.actions.generation,
  );
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
    this.#slots = new NodeSlots(options.maxConcurrentNodes ?? 64);
    this.availability = new StoreAvailability({
      store: { probe: () => options.store.probe(options.instanceId) },
      logger: options.logger,
      probeMs: options.probeMs,
    });
    this.#writer = new RunWriter({
      ...options,
      ownerId: options.instanceId,
      availability: this.availability,
      stallLimitMs: options.leaseMs ?? 5000,
      onRejected: (runIds) => {
        for (const id of runIds) this.#lost(id);
      },
      // Nothing of these runs can be written: stop them here (the lease then lapses) so that
      // they are resumed from what is stored once the database is back.
      onGaveUp: (runIds) => {
        for (const id of runIds) this.#active.get(id)?.abandon(true);
      },
    });
    this.#creation = new RunCreation(options.store, options.hooks);
    this.#ownership = new RunOwnership(
      { ...options, availability: this.availability },
      {
        ids: () => [...this.#active.keys()],
        execute: (run) => this.#execute(run),
        lost: (runId) => this.#lost(runId),
        cancel: (runId) => this.#active.get(runId)?.cancel(),
      },
    );
    this.breakers = new BreakerGuard(options.store, options);
    this.actions = new ActionRegistry(options);
    this.agents = new AgentRegistry(options.agents, options.hooks, options.secrets);
    this.#handlers = nodeHandlers(this.actions, this.agents);
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

  /** Starts executing a run this instance has just claimed.
   * @param fresh nothing of the run is stored yet but the run itself (a run just created) */
  async #execute(run: RunRecord, fresh = false): Promise<void> {
    const outcome = this.#compiled.get(run.pipelineId, run.pipelineVersion, run.definition);
    // A run taken over (it was under way elsewhere), or a re-run starting with reused nodes.
    const resume =
      !fresh && (run.status === "RUNNING" || run.rerunOf !== null)
        ? {
            nodeRuns: (await this.store.getNodeRuns([run.id])).get(run.id) ?? [],
            lastSeq: await this.store.lastSeq(run.id),
          }
        : undefined;
    // After the reads: a poll may have taken back a run being created here; it executes once.
    if (this.#active.has(run.id)) return;
    const services = {
      availability: this.availability,
      writer: this.#writer,
      breakers: this.breakers,
      handlers: this.#handlers,
      slots: this.#slots,
      logger: this.#logger,
      outputLimits: this.#options.outputLimits,
      hooks: this.#options.hooks,
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
    const ended = () => this.#active.delete(run.id) && this.#ownership.roomMade();
    execution.done.then(ended, ended);
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
    return this.#creation.withPipeline(pipelineId, (pipeline, onlyIfCurrent) => {
      const outcome = this.#compiled.get(pipelineId, pipeline.version, pipeline.definition);
      const base = {
        pipelineId,
        pipelineVersion: pipeline.version,
        triggerData,
        definition: pipeline.definition,
        onlyIfCurrent,
      };
      if (!outcome.valid) return this.#refuse(base, outcome.errors);
      return this.#start(base);
    });
  }

  /**
   * Runs a finished run again: the same pipeline version and trigger data, linked by
   * `rerunOf`. With `fromFailure` the nodes that completed (and all their upstream) are not
   * executed again: their outputs are reused (see rerun.ts). Returns at once, like runPipeline.
   * @throws {AppError} NOT_FOUND; RUN_STILL_ACTIVE while the source is queued or running
   */
  async rerunRun(runId: string, fromFailure = true): Promise<RunRecord> {
    const source = await this.#getRun(runId);
    if (!isTerminalRunStatus(source.status))
      throw new AppError(
        "RUN_STILL_ACTIVE",
        `run "${runId}" is ${source.status}; it can be re-run once it has ended`,
        { id: runId, status: source.status },
      );
    const base = {
      pipelineId: source.pipelineId,
      pipelineVersion: source.pipelineVersion,
      triggerData: source.triggerData,
      definition: source.definition,
      rerunOf: source.id,
    };
    const outcome = this.#compiled.get(
      source.pipelineId,
      source.pipelineVersion,
      source.definition,
    );
    if (!outcome.valid) return this.#refuse(base, outcome.errors);
    const stored = fromFailure
      ? ((await this.store.getNodeRuns([source.id])).get(source.id) ?? [])
      : [];
    const { events, nodeRuns } = rerunStart(
      source,
      outcome.pipeline,
      stored,
      fromFailure,
      this.#options.outputLimits,
    );
    return this.#start(base, events, nodeRuns);
  }

  /** A FAILED run of a pipeline version that does not validate, with the seed's message. */
  #refuse(base: RunBase, errors: readonly ValidationError[]): Promise<RunRecord> {
    const now = new Date();
    const error = validationFailureMessage(errors);
    return this.#createRun(
      { ...base, status: "FAILED", error, startedAt: now, completedAt: now },
      refusedRunEvents(base, error, now),
    );
  }

  /** Creates a queued run and starts it here if this instance has room. */
  async #start(
    fields: RunBase,
    events: NewRunRequest["events"] = [],
    nodeRuns: NewRunRequest["nodeRuns"] = [],
  ): Promise<RunRecord> {
    const queued: NewRun = {
      ...fields,
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
      const run = await this.#createRun(queued, events, nodeRuns);
      this.bus.publishWork();
      return run;
    }
    // Created RUNNING under this instance's lease: no other instance's poll takes it first,
    // and a read right after this call sees what it returns.
    this.#starting++;
    try {
      const lease = this.#ownership.lease();
      const run = await this.#createRun(
        { ...queued, status: "RUNNING", startedAt: new Date(), lease },
        events,
        nodeRuns,
      );
      if (await this.#ownership.keepCreated(run.id, lease))
        await this.#execute(run, events.length === 0 && nodeRuns.length === 0);
      return run;
    } finally {
      this.#starting--;
    }
  }

  #createRun(
    run: NewRun,
    events: NewRunRequest["events"],
    nodeRuns: NewRunRequest["nodeRuns"] = [],
  ): Promise<RunRecord> {
    return this.#creation.create({ run, events, nodeRuns });
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
    await this.#ownership.cancelElsewhere(runId);
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
    assertHasBreaker(pipeline, nodeId);
    return this.breakers.reset(pipelineId, nodeId);
  }

  /** The run's events: stored ones after `after`, then live ones until the run ends. */
  async events(runId: string, after = 0): Promise<AsyncIterableIterator<RunEventRecord>> {
    if (!Number.isInteger(after) || after < 0)
      throw new BadInputError(`after must be a whole number ≥ 0, got ${after}`);
    // A subscription made while the database is down waits for it, like one under way.
    await untilStored(this.availability, () => this.#getRun(runId));
    return runEventStream(this.store, this.bus, runId, after, {
      isLocal: () => this.#active.has(runId),
      availability: this.availability,
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
    await this.#writer.close(FINAL_FLUSH_MS);
    await this.#ownership.stop(unfinished);
    this.availability.close();
    this.#slots.clear();
    this.breakers.close();
  }
}
