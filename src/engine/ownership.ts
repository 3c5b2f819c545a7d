/**
 * Which runs this instance executes: taking them (queued ones, and those whose owner's lease
 * expired), renewing their leases, noticing a lease lost to another instance, and giving runs
 * back on shutdown.
 *
 * A run is executed by the instance holding its lease (PipelineRun.ownerId and
 * leaseExpiresAt), renewed every `leaseMs / 3`. An instance that stops renewing (killed, cut
 * off) loses its runs when the lease expires, and whichever instance polls next takes them and
 * resumes them from their stored state. An instance that finds its lease gone stops at once
 * and writes nothing more for that run.
 *
 * Why our own lease rather than pg-boss or BullMQ: the same code must work on the embedded
 * SQLite default (no PostgreSQL, no Redis), and the run row is already the state a queue job
 * would duplicate; a lease on it is one conditional UPDATE, atomic on both databases. The loop
 * follows graphile-worker's: every run it takes is either finished or released.
 */
import type { Logger } from "pino";
import type { RunRecord } from "../domain/records.ts";
import { isTerminalRunStatus, TERMINAL_EVENT_TYPES } from "../domain/status.ts";
import type { LeaseArgs, Store } from "../store/types.ts";
import type { EventBus } from "./bus.ts";

export interface OwnershipOptions {
  readonly store: Store;
  readonly bus: EventBus;
  readonly logger: Logger;
  readonly instanceId: string;
  /** Runs this instance executes at once. @default 256 */
  readonly maxActiveRuns?: number;
  /** Lease length; renewed every third of it. @default 5000 */
  readonly leaseMs?: number;
  /** How often to look for runs to take. @default 500 */
  readonly pollMs?: number;
}

/** What ownership needs of the runs under way here. */
export interface OwnedRuns {
  /** Ids of the runs executing here. */
  ids(): readonly string[];
  /** Begins executing a run just taken. */
  execute(run: RunRecord): Promise<void>;
  /** Another instance holds the run now: stop at once and write nothing more. */
  lost(runId: string): void;
  /** A run was asked to cancel (through the bus, or seen in the database); ignores others. */
  cancel(runId: string): void;
}

export class RunOwnership {
  readonly #options: OwnershipOptions;
  readonly #runs: OwnedRuns;
  readonly #leaseMs: number;
  #timers: NodeJS.Timeout[] = [];
  #unsubscribe: (() => void)[] = [];
  #claiming = false;
  #taking = false;
  /** Claims and heartbeats under way: stop() waits for them before the store is closed. */
  readonly #tasks = new Set<Promise<unknown>>();

  constructor(options: OwnershipOptions, runs: OwnedRuns) {
    this.#options = options;
    this.#runs = runs;
    this.#leaseMs = options.leaseMs ?? 5000;
  }

  get maxActiveRuns(): number {
    return this.#options.maxActiveRuns ?? 256;
  }

  /** True while new runs are taken (between start() and stopTaking()). */
  get taking(): boolean {
    return this.#taking;
  }

  #track<T>(task: Promise<T>): Promise<T> {
    this.#tasks.add(task);
    const untrack = () => this.#tasks.delete(task);
    task.then(untrack, untrack);
    return task;
  }

  /** A lease for this instance from `now`. */
  lease(now = new Date()): LeaseArgs {
    return {
      ownerId: this.#options.instanceId,
      now,
      leaseUntil: new Date(now.getTime() + this.#leaseMs),
    };
  }

  /** Begins taking runs and renewing the leases of those under way. */
  start(): void {
    if (this.#taking) return;
    this.#taking = true;
    const { bus, logger } = this.#options;
    this.#unsubscribe = [
      bus.onCancel((runId) => this.#runs.cancel(runId)),
      bus.onWork(() => this.claimSoon()),
    ];
    const every = (ms: number, task: () => Promise<unknown>) => {
      const timer = setInterval(() => {
        this.#track(task()).catch((error: unknown) =>
          logger.error({ err: error }, "engine background task failed"),
        );
      }, ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(this.#options.pollMs ?? 500, () => this.#claim());
    every(Math.max(100, Math.floor(this.#leaseMs / 3)), () => this.#heartbeat());
    this.claimSoon();
  }

  /** Looks for runs to take now rather than at the next poll. */
  claimSoon(): void {
    this.#track(this.#claim()).catch((error: unknown) =>
      this.#options.logger.error({ err: error }, "could not claim runs"),
    );
  }

  /** Takes one run if nobody else holds it; `null` when someone does or it has ended. */
  claim(runId: string): Promise<RunRecord | null> {
    return this.#options.store.claimRun(runId, this.lease());
  }

  async #claim(): Promise<void> {
    if (!this.#taking || this.#claiming) return;
    this.#claiming = true;
    try {
      const capacity = this.maxActiveRuns - this.#runs.ids().length;
      if (capacity <= 0) return;
      for (const run of await this.#options.store.claimRuns(capacity, this.lease()))
        await this.#runs.execute(run);
    } finally {
      this.#claiming = false;
    }
  }

  async #heartbeat(): Promise<void> {
    // Also while stopping: the leases of runs finishing their nodes must not lapse.
    const ids = this.#runs.ids();
    if (ids.length === 0) return;
    const { store } = this.#options;
    const held = new Set(await store.renewLeases(ids, this.lease()));
    for (const id of ids) if (!held.has(id)) this.#runs.lost(id);
    // Without Redis a cancel made on another instance arrives only through the database.
    for (const id of await store.cancelRequested(ids)) this.#runs.cancel(id);
  }

  /**
   * Resolves once the run has ended (its terminal event is stored), or after `timeoutMs`: the
   * wait for another instance to carry out a cancel.
   */
  async untilEnded(runId: string, timeoutMs: number): Promise<void> {
    const { bus, store } = this.#options;
    let stop = () => {};
    const ended = new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const unsubscribe = bus.onRunEvent(runId, (event) => {
        if (TERMINAL_EVENT_TYPES.has(event.type)) done();
      });
      function done() {
        clearTimeout(timer);
        unsubscribe();
        resolve();
      }
      stop = done;
    });
    // The end may have been written before the subscription.
    const [run] = await store.getRuns([runId]);
    if (!run || isTerminalRunStatus(run.status)) stop();
    await ended;
  }

  /** Takes no more runs; leases are still renewed until stop(). */
  stopTaking(): void {
    this.#taking = false;
    clearInterval(this.#timers[0]);
  }

  /**
   * Gives unfinished runs back so that another instance takes them at once, and stops
   * renewing leases.
   */
  async stop(unfinished: readonly string[]): Promise<void> {
    this.stopTaking();
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    await Promise.allSettled([...this.#tasks]);
    if (unfinished.length === 0) return;
    await this.#options.store.releaseRuns(unfinished, this.#options.instanceId);
    this.#options.bus.publishWork();
    this.#options.logger.info({ runs: unfinished.length }, "handed unfinished runs over");
  }
}
