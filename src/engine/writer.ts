/**
 * Group commit for everything the executor persists. Writes made while a transaction is in
 * flight are gathered into the next one, so a burst of 2,000 node results costs one
 * transaction, and a lone event is written on the next turn of the event loop.
 *
 * Invariants:
 * - per run, events are committed in `seq` order and a later batch never lands before an
 *   earlier one: what is stored is always a prefix of what was emitted;
 * - an event is published (to live subscribers) only once it is stored;
 * - a node run row in a batch is its latest state (coalesced by run and node);
 * - a failed commit is retried with backoff, `maxFailures` times in a row at most: then the
 *   pending writes are given up, loudly, and their runs reported (onGaveUp) so that they are
 *   handed over and resumed from what is stored, never left half-written under a live lease;
 * - after close() nothing more is written, and flush() settles at once.
 */
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import type { RunEventRecord } from "../domain/records.ts";
import type { NodeRunWrite, RunPatch, Store } from "../store/types.ts";
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
  /** Commits failed in a row before the pending writes are given up. @default 20 (about 75 s) */
  readonly maxFailures?: number;
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

export class RunWriter {
  readonly #options: WriterOptions;
  #pending = empty();
  #inFlight: Promise<void> | null = null;
  #scheduled = false;
  #failures = 0;
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
    this.#schedule();
  }

  putNodeRun(nodeRun: NodeRunWrite): void {
    if (this.#closed) return;
    this.#pending.nodeRuns.set(`${nodeRun.runId}\u0000${nodeRun.nodeId}`, nodeRun);
    this.#schedule();
  }

  patchRun(patch: RunPatch): void {
    if (this.#closed) return;
    const previous = this.#pending.runs.get(patch.id);
    this.#pending.runs.set(patch.id, previous ? { ...previous, ...patch } : patch);
    this.#schedule();
  }

  /** Resolves once everything written before the call is committed. */
  flush(): Promise<void> {
    if (this.#closed || (this.#isEmpty(this.#pending) && !this.#inFlight)) return Promise.resolve();
    return new Promise((resolve) => {
      this.#pending.waiters.push(resolve);
      this.#schedule();
    });
  }

  /** Forgets what is pending for a run this instance no longer owns. */
  drop(runId: string): void {
    const pending = this.#pending;
    pending.events = pending.events.filter((event) => event.runId !== runId);
    for (const key of pending.nodeRuns.keys())
      if (key.startsWith(`${runId}\u0000`)) pending.nodeRuns.delete(key);
    pending.runs.delete(runId);
  }

  /** Flushes what is pending (or gives it up, see `maxFailures`), then writes nothing more. */
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
  }

  #isEmpty(pending: Pending): boolean {
    return pending.events.length === 0 && pending.nodeRuns.size === 0 && pending.runs.size === 0;
  }

  #schedule(delayMs = 0): void {
    if (this.#scheduled || this.#inFlight || this.#closed) return;
    this.#scheduled = true;
    const run = () => {
      this.#scheduled = false;
      this.#inFlight = this.#commit().finally(() => {
        this.#inFlight = null;
        if (!this.#isEmpty(this.#pending) || this.#pending.waiters.length > 0) {
          this.#schedule(this.#failures > 0 ? this.#backoff() : 0);
        }
      });
    };
    if (delayMs > 0) setTimeout(run, delayMs).unref();
    else setImmediate(run);
  }

  #backoff(): number {
    return Math.min(5000, (this.#options.retryDelayMs ?? 100) * 2 ** (this.#failures - 1));
  }

  async #commit(): Promise<void> {
    const batch = this.#pending;
    this.#pending = empty();
    if (this.#isEmpty(batch)) {
      for (const resolve of batch.waiters) resolve();
      return;
    }
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
      this.#failures++;
      if (this.#failures >= (this.#options.maxFailures ?? 20)) {
        this.#giveUp(batch, error);
        return;
      }
      this.#options.logger.error(
        { err: error, events: batch.events.length, attempt: this.#failures },
        "could not persist run state; retrying",
      );
      this.#requeue(batch);
      return;
    }
    this.#failures = 0;
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

  /** Gives up the failed batch and what was written since; tells which runs lost writes. */
  #giveUp(batch: Pending, error: unknown): void {
    this.#requeue(batch);
    const lost = this.#pending;
    this.#pending = empty();
    this.#failures = 0;
    const runIds = [
      ...new Set([
        ...lost.events.map((e) => e.runId),
        ...[...lost.nodeRuns.values()].map((n) => n.runId),
        ...lost.runs.keys(),
      ]),
    ];
    this.#options.logger.error(
      { err: error, runs: runIds.length, events: lost.events.length },
      `could not persist run state after ${this.#options.maxFailures ?? 20} attempts; giving up the pending writes and handing their runs over`,
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
