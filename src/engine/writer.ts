/**
 * Group commit for everything the executor persists. Writes made while a transaction is in
 * flight are gathered into the next one, so a burst of 2,000 node results costs one
 * transaction, and a lone event is written on the next turn of the event loop.
 *
 * Invariants:
 * - per run, events are committed in `seq` order and a later batch never lands before an
 *   earlier one: what is stored is always a prefix of what was emitted;
 * - an event is published (to live subscribers) only once it is stored;
 * - a node run row in a batch is its latest state (coalesced by run and node).
 */
import type { Logger } from "pino";
import type { NodeRunRecord, RunEventRecord } from "../domain/records.ts";
import type { RunPatch, Store } from "../store/types.ts";
import type { EventBus } from "./bus.ts";

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
}

interface Pending {
  events: RunEventRecord[];
  nodeRuns: Map<string, NodeRunRecord>;
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
    this.#options = options;
  }

  appendEvent(event: RunEventRecord): void {
    this.#pending.events.push(event);
    this.#schedule();
  }

  putNodeRun(nodeRun: NodeRunRecord): void {
    this.#pending.nodeRuns.set(`${nodeRun.runId}\u0000${nodeRun.nodeId}`, nodeRun);
    this.#schedule();
  }

  patchRun(patch: RunPatch): void {
    const previous = this.#pending.runs.get(patch.id);
    this.#pending.runs.set(patch.id, previous ? { ...previous, ...patch } : patch);
    this.#schedule();
  }

  /** Resolves once everything written before the call is committed. */
  flush(): Promise<void> {
    if (this.#isEmpty(this.#pending) && !this.#inFlight) return Promise.resolve();
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

  /** Flushes what is pending, then refuses further commits. */
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
    try {
      const outcome = await this.#options.store.commit({
        events: batch.events,
        nodeRuns: [...batch.nodeRuns.values()],
        runs: [...batch.runs.values()],
        ownerId: this.#options.ownerId,
      });
      rejected = new Set(outcome.rejectedRuns);
    } catch (error) {
      this.#failures++;
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
