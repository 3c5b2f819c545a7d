/**
 * Group commit for everything the executor persists. Writes made while a transaction is in
 * flight are gathered into the next one, so a burst of 2,000 node results costs one
 * transaction, and a lone event is written on the next turn of the event loop.
 *
 * While commits succeed, a second one may be under way beside the first, with the writes of
 * runs the first does not hold: a short run started beside a heavy one is not held behind the
 * heavy run's next large commit. A run's writes are never in two commits at once.
 *
 * Invariants:
 * - per run, events are committed in `seq` order and a later batch never lands before an
 *   earlier one: what is stored is always a prefix of what was emitted;
 * - an event is published (to live subscribers) only once it is stored;
 * - a node run row in a batch is its latest state (coalesced by run and node);
 * - after close() nothing more is written, and flush() settles at once.
 *
 * A failed commit is kept (newer writes merged behind it) and retried. Which failures end in
 * giving the writes up is the rule below; giving up reports the runs (onGaveUp) so that they
 * are stopped here and resumed from what is stored, never left half-written under a live lease:
 * - the database is unavailable (store/unavailable.ts: unreachable, restarting, disk full,
 *   read-only) and the outage is under way: never given up, whatever its length; the commit
 *   waits for the database's return (`availability`) and is retried at once then;
 * - any other failure (a bug, bad data) counts: after `maxFailures` in a row it is given up;
 * - whatever the failure, commits failing for longer than `stallLimitMs` while the database
 *   is up (counted from the later of the first failure and the end of the last outage) are
 *   given up too: an owner that cannot write must not keep renewing the lease of its runs.
 */
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import type { RunEventRecord } from "../domain/records.ts";
import type { NodeRunWrite, RunPatch, Store } from "../store/types.ts";
import type { StoreAvailability } from "./availability.ts";
import type { EventBus } from "./bus.ts";
import type { EngineHooks } from "./hooks.ts";

export interface WriterOptions {
  readonly store: Store;
  readonly bus: EventBus;
  readonly logger: Logger;
  /** First wait after a failed commit; doubles up to 5 s. @default 100 */
  readonly retryDelayMs?: number;
  /** Writes only for runs this owner holds the lease of (see WriteBatch.ownerId). */
  readonly ownerId?: string;
  /** Told of runs whose writes were refused because their lease is held by someone else. */
  readonly onRejected?: (runIds: readonly string[]) => void;
  /**
   * Commits failed in a row, for reasons other than the database being unavailable, before
   * the pending writes are given up. @default 20 (about 75 s)
   */
  readonly maxFailures?: number;
  /**
   * Tells "the database is unavailable" from other failures, and when it is back. Without it
   * every failure counts towards `maxFailures`.
   */
  readonly availability?: StoreAvailability;
  /**
   * Longest time commits may keep failing while the database is up before the writes are
   * given up (the engine passes the lease length). @default Infinity
   */
  readonly stallLimitMs?: number;
  /** Told of runs whose pending writes were given up after `maxFailures` failed commits. */
  readonly onGaveUp?: (runIds: readonly string[], error: unknown) => void;
  /** Observers told of each event appended and of each commit (guarded by the engine). */
  readonly hooks?: Pick<EngineHooks, "onEvent" | "onCommit">;
}

interface Pending {
  events: RunEventRecord[];
  nodeRuns: Map<string, NodeRunWrite>;
  runs: Map<string, RunPatch>;
  waiters: (() => void)[];
}

const empty = (): Pending => ({ events: [], nodeRuns: new Map(), runs: new Map(), waiters: [] });

/** Commits under way at once while none fails (one while they fail). */
const MAX_COMMITS = 2;

/** The writes of runs not in `busy`, and the rest; the waiters go with the first if no rest. */
function split(pending: Pending, busy: ReadonlySet<string>): [Pending, Pending] {
  const free = empty();
  const rest = empty();
  for (const event of pending.events) (busy.has(event.runId) ? rest : free).events.push(event);
  for (const [key, nodeRun] of pending.nodeRuns)
    (busy.has(nodeRun.runId) ? rest : free).nodeRuns.set(key, nodeRun);
  for (const [id, patch] of pending.runs) (busy.has(id) ? rest : free).runs.set(id, patch);
  const restEmpty = rest.events.length === 0 && rest.nodeRuns.size === 0 && rest.runs.size === 0;
  (restEmpty ? free : rest).waiters.push(...pending.waiters);
  return [free, rest];
}

export class RunWriter {
  readonly #options: WriterOptions;
  #pending = empty();
  readonly #inFlight = new Set<Promise<void>>();
  /** Runs with writes in a commit under way: their newer writes wait for it. */
  readonly #busy = new Set<string>();
  /** Pending holds writes of a run that is not busy (a second commit could take them). */
  #freeWork = false;
  #scheduled = false;
  #failures = 0;
  /** When the current run of failed commits began (epoch ms); null after a success. */
  #failingSince: number | null = null;
  /** The last commit failed because the database is unavailable: wait for its return. */
  #waitForStore = false;
  #closed = false;

  constructor(options: WriterOptions) {
    const maxFailures = options.maxFailures ?? 20;
    if (!Number.isInteger(maxFailures) || maxFailures < 1)
      throw new TypeError(
        `Expected \`maxFailures\` >= 1, got \`${maxFailures}\` (${typeof maxFailures})`,
      );
    this.#options = options;
  }

  appendEvent(event: RunEventRecord): void {
    if (this.#closed) return;
    this.#pending.events.push(event);
    this.#options.hooks?.onEvent?.(event);
    this.#wrote(event.runId);
  }

  putNodeRun(nodeRun: NodeRunWrite): void {
    if (this.#closed) return;
    this.#pending.nodeRuns.set(`${nodeRun.runId}\u0000${nodeRun.nodeId}`, nodeRun);
    this.#wrote(nodeRun.runId);
  }

  patchRun(patch: RunPatch): void {
    if (this.#closed) return;
    const previous = this.#pending.runs.get(patch.id);
    this.#pending.runs.set(patch.id, previous ? { ...previous, ...patch } : patch);
    this.#wrote(patch.id);
  }

  #wrote(runId: string): void {
    if (!this.#busy.has(runId)) this.#freeWork = true;
    this.#schedule();
  }

  /** Resolves once everything written before the call is committed. */
  flush(): Promise<void> {
    if (this.#closed || (this.#isEmpty(this.#pending) && this.#inFlight.size === 0))
      return Promise.resolve();
    // The commits under way (they never reject), and the one that takes what is pending.
    const underWay = [...this.#inFlight];
    const pending = new Promise<void>((resolve) => {
      this.#pending.waiters.push(resolve);
      this.#schedule();
    });
    return Promise.all([...underWay, pending]).then(() => {});
  }

  /** Forgets what is pending for a run this instance no longer owns. */
  drop(runId: string): void {
    const pending = this.#pending;
    pending.events = pending.events.filter((event) => event.runId !== runId);
    for (const key of pending.nodeRuns.keys())
      if (key.startsWith(`${runId}\u0000`)) pending.nodeRuns.delete(key);
    pending.runs.delete(runId);
  }

  /** When the current run of failed commits began (epoch ms), or null while commits succeed. */
  get failingSince(): number | null {
    return this.#failingSince;
  }

  /**
   * Flushes what is pending (or gives it up, see the rule above), then writes nothing more.
   * With `timeoutMs`, waits that long at most (a database that stays away must not hold a
   * shutdown for ever): what is still pending then is dropped, loudly; its runs are resumed
   * from what is stored by whichever instance takes them.
   */
  async close(timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const flushed = this.flush();
    if (Number.isFinite(timeoutMs)) {
      await Promise.race([
        flushed,
        new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            timedOut = true;
            resolve();
          }, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
    } else {
      await flushed;
    }
    this.#closed = true;
    if (timedOut) {
      const lost = this.#pending;
      this.#pending = empty();
      for (const resolve of lost.waiters) resolve();
      this.#options.logger.error(
        { runs: this.#runIdsOf(lost).length, events: lost.events.length },
        "stopping with run state not persisted (the database did not answer): those runs resume from what is stored",
      );
    }
  }

  #isEmpty(pending: Pending): boolean {
    return pending.events.length === 0 && pending.nodeRuns.size === 0 && pending.runs.size === 0;
  }

  /** Whether a commit may start now: none under way, or a second one with work of its own. */
  #mayStart(): boolean {
    if (this.#inFlight.size === 0) return true;
    const healthy = this.#failures === 0 && this.#failingSince === null && !this.#waitForStore;
    return healthy && this.#inFlight.size < MAX_COMMITS && this.#freeWork;
  }

  #schedule(delayMs = 0): void {
    if (this.#scheduled || this.#closed || !this.#mayStart()) return;
    this.#scheduled = true;
    const run = () => {
      this.#scheduled = false;
      if (this.#closed || !this.#mayStart()) return;
      const commit: Promise<void> = this.#commit().finally(() => {
        this.#inFlight.delete(commit);
        if (!this.#isEmpty(this.#pending) || this.#pending.waiters.length > 0) {
          // What waited for the runs of this commit may go now.
          this.#freeWork = true;
          this.#schedule(this.#failures > 0 || this.#waitForStore ? this.#backoff() : 0);
        }
      });
      this.#inFlight.add(commit);
    };
    const availability = this.#options.availability;
    if (this.#waitForStore && availability && !availability.available && !availability.closed)
      void availability.whenAvailable().then(run);
    else if (delayMs > 0) setTimeout(run, delayMs).unref();
    else setImmediate(run);
  }

  #backoff(): number {
    return Math.min(5000, (this.#options.retryDelayMs ?? 100) * 2 ** (this.#failures - 1));
  }

  async #commit(): Promise<void> {
    let batch = this.#pending;
    if (this.#busy.size === 0) this.#pending = empty();
    else [batch, this.#pending] = split(this.#pending, this.#busy);
    this.#freeWork = false;
    if (this.#isEmpty(batch)) {
      for (const resolve of batch.waiters) resolve();
      return;
    }
    const runIds = this.#runIdsOf(batch);
    for (const id of runIds) this.#busy.add(id);
    try {
      await this.#write(batch);
    } finally {
      for (const id of runIds) this.#busy.delete(id);
    }
  }

  async #write(batch: Pending): Promise<void> {
    let rejected: ReadonlySet<string>;
    const began = performance.now();
    const events = batch.events.length;
    try {
      const outcome = await this.#options.store.commit({
        events: batch.events,
        nodeRuns: [...batch.nodeRuns.values()],
        runs: [...batch.runs.values()],
        ownerId: this.#options.ownerId,
      });
      rejected = new Set(outcome.rejectedRuns);
      this.#options.hooks?.onCommit?.({ durationMs: performance.now() - began, events, ok: true });
    } catch (error) {
      this.#options.hooks?.onCommit?.({ durationMs: performance.now() - began, events, ok: false });
      this.#failed(batch, error);
      return;
    }
    this.#failures = 0;
    this.#failingSince = null;
    this.#waitForStore = false;
    const byRun = new Map<string, RunEventRecord[]>();
    for (const event of batch.events) {
      if (rejected.has(event.runId)) continue;
      const list = byRun.get(event.runId);
      if (list) list.push(event);
      else byRun.set(event.runId, [event]);
    }
    for (const [runId, events] of byRun) this.#options.bus.publish(runId, events);
    for (const resolve of batch.waiters) resolve();
    if (rejected.size > 0) this.#options.onRejected?.([...rejected]);
  }

  /** Applies the rule of the file's comment to a failed commit. */
  #failed(batch: Pending, error: unknown): void {
    const { availability } = this.#options;
    const now = Date.now();
    this.#failingSince ??= now;
    // Reported first: an "unavailable" failure starts (or joins) the outage.
    const unavailable = availability?.report(error) ?? false;
    if (!unavailable) this.#failures++;
    const upSince = Math.max(this.#failingSince, availability?.lastOutage?.until ?? 0);
    const stalled =
      (availability?.available ?? true) && now - upSince > (this.#options.stallLimitMs ?? Infinity);
    if (this.#failures >= (this.#options.maxFailures ?? 20) || stalled) {
      this.#giveUp(batch, error);
      return;
    }
    this.#waitForStore = unavailable;
    // The outage is logged once by `availability`; other failures each time.
    if (!unavailable)
      this.#options.logger.error(
        { err: error, events: batch.events.length, attempt: this.#failures },
        "could not persist run state; retrying",
      );
    this.#requeue(batch);
  }

  #runIdsOf(pending: Pending): string[] {
    return [
      ...new Set([
        ...pending.events.map((e) => e.runId),
        ...[...pending.nodeRuns.values()].map((n) => n.runId),
        ...pending.runs.keys(),
      ]),
    ];
  }

  /** Gives up the failed batch and what was written since; tells which runs lost writes. */
  #giveUp(batch: Pending, error: unknown): void {
    this.#requeue(batch);
    const lost = this.#pending;
    this.#pending = empty();
    const failures = this.#failures;
    this.#failures = 0;
    this.#failingSince = null;
    this.#waitForStore = false;
    const runIds = this.#runIdsOf(lost);
    this.#options.logger.error(
      { err: error, runs: runIds.length, events: lost.events.length, failures },
      "could not persist run state; giving up the pending writes and handing their runs over",
    );
    for (const resolve of lost.waiters) resolve();
    this.#options.onGaveUp?.(runIds, error);
  }

  /** Puts a failed batch back in front of what was written since, newer states winning. */
  #requeue(batch: Pending): void {
    const newer = this.#pending;
    for (const [key, nodeRun] of newer.nodeRuns) batch.nodeRuns.set(key, nodeRun);
    for (const [id, patch] of newer.runs) {
      const older = batch.runs.get(id);
      batch.runs.set(id, older ? { ...older, ...patch } : patch);
    }
    batch.events.push(...newer.events);
    batch.waiters.push(...newer.waiters);
    this.#pending = batch;
  }
}
