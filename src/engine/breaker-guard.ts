/**
 * The breakers as runs see them: read once per run, kept current by the writes that change
 * them.
 *
 * A run reads its pipeline's breaker rows once, when its first ACTION or AGENT node asks to be
 * admitted, instead of once per node; a run started within `maxAgeMs` (at most 5 s) of another
 * run's read of the same pipeline starts from that read instead, kept current in the same way. The view then stays current without reading again:
 * every change this process makes (a failure counted, a trial, a reset) is applied to the
 * views of all runs of that pipeline at once, and is published on the bus so that the runs of
 * other instances apply it too. When the bus reaches only this process (no Redis) while
 * another instance may share the database, a view older than `maxAgeMs` is read again before
 * it admits a node: other instances' changes are then seen within that time, as their events
 * are.
 *
 * Admission stays exact where it matters: a CLOSED breaker admits without a write (as one
 * plain read did before), an OPEN one whose wait is not over refuses without one, and every
 * move of the state (a trial taken, a count, a close) is decided in the store's atomic
 * read-modify-write, which sees what every instance wrote.
 */
import type { BreakerRecord } from "../domain/records.ts";
import type { Store } from "../store/types.ts";
import {
  type Admission,
  admit,
  afterAbandon,
  afterFailure,
  afterSuccess,
  type BreakerSettings,
  closedBreaker,
} from "./breaker.ts";
import type { EventBus } from "./bus.ts";

export interface BreakerGuardOptions {
  /** The clock breakers read (tests move it instead of waiting). */
  readonly now?: () => Date;
  /** Changes reach other instances through it, and theirs reach this one. */
  readonly bus?: EventBus;
  /** This instance, so that its own changes coming back from the bus are not applied twice. */
  readonly instanceId?: string;
  /**
   * How long a run's view is trusted without a read when the bus does not reach other
   * instances. @default 1000 without a shared bus, unbounded with one
   */
  readonly maxAgeMs?: number;
}

/** Later wins; at the same instant, a change made after the view was read wins over the read. */
const newer = (row: BreakerRecord, than: BreakerRecord | undefined, orSame: boolean) =>
  !than ||
  row.updatedAt.getTime() > than.updatedAt.getTime() ||
  (orSame && row.updatedAt.getTime() === than.updatedAt.getTime());

const CLEAN_ADMISSION: Admission = Object.freeze({ admitted: true, trial: false, clean: true });
const COUNTED_ADMISSION: Admission = Object.freeze({ admitted: true, trial: false, clean: false });

/** A pipeline's rows as last read, kept current like the views, for the next run to start from. */
interface RecentRead {
  readonly rows: Map<string, BreakerRecord>;
  readonly readAt: number;
}

/** Pipelines whose last read is kept for the next run (the oldest are forgotten first). */
const RECENT_PIPELINES = 1000;
/** However current the bus keeps them, a new run starts from a read no older than this. */
const RECENT_MAX_AGE_MS = 5000;

/** The breakers of one pipeline as one run sees them. */
export class RunBreakers {
  readonly pipelineId: string;
  readonly #guard: BreakerGuard;
  readonly #rows = new Map<string, BreakerRecord>();
  #loading: Promise<void> | undefined;
  #loadedAt = 0;
  /** The read begun at #loadedAt has completed. */
  #read = false;

  constructor(guard: BreakerGuard, pipelineId: string, seed?: RecentRead) {
    this.#guard = guard;
    this.pipelineId = pipelineId;
    if (seed) {
      for (const [nodeId, row] of seed.rows) this.#rows.set(nodeId, row);
      this.#loadedAt = seed.readAt;
      this.#read = true;
      this.#loading = Promise.resolve();
    }
  }

  /**
   * The admission decided without waiting: a fresh view whose breaker is CLOSED admits. Null
   * when the view must be read first or the state may move (then `admit`).
   */
  admitNow(nodeId: string): Admission | null {
    if (!this.#read || Date.now() - this.#loadedAt >= this.#guard.maxAgeMs) return null;
    const row = this.#rows.get(nodeId);
    if (!row || row.state === "CLOSED")
      return !row || row.failureCount === 0 ? CLEAN_ADMISSION : COUNTED_ADMISSION;
    return null;
  }

  /** Whether the node may be called now. */
  async admit(nodeId: string, settings: BreakerSettings): Promise<Admission> {
    await this.#current();
    const row = this.#rows.get(nodeId) ?? null;
    if (!row || row.state === "CLOSED")
      return { admitted: true, trial: false, clean: !row || row.failureCount === 0 };
    const decision = admit(row, settings, this.#guard.now());
    if (!decision.admission.admitted) return decision.admission;
    // The state moves (a trial is taken): decided by the store, where another run or instance
    // may have taken it first.
    let admission!: Admission;
    await this.#guard.update(this.pipelineId, nodeId, (current) => {
      const next = admit(current, settings, this.#guard.now());
      admission = next.admission;
      return next.next;
    });
    return admission;
  }

  /** After a successful execution; the caller skips it when the breaker was clean. */
  async succeeded(nodeId: string, trial: boolean): Promise<void> {
    await this.#guard.update(this.pipelineId, nodeId, (row) =>
      afterSuccess(row, trial, this.#guard.now()),
    );
  }

  /** After a failed execution; the breaker's row after it. */
  failed(nodeId: string, trial: boolean, settings: BreakerSettings): Promise<BreakerRecord | null> {
    return this.#guard.update(this.pipelineId, nodeId, (row) =>
      afterFailure(row, trial, settings, this.#guard.now(), {
        pipelineId: this.pipelineId,
        nodeId,
      }),
    );
  }

  /** A trial interrupted by the run's end: undecided, the next call may try again. */
  async abandoned(nodeId: string, trial: boolean): Promise<void> {
    if (!trial) return;
    await this.#guard.update(this.pipelineId, nodeId, (row) =>
      afterAbandon(row, trial, this.#guard.now()),
    );
  }

  /** The run has ended: its view is no longer kept current. */
  release(): void {
    this.#guard.release(this);
  }

  /** A row written after the view was read (here, by another run, or by another instance). */
  apply(row: BreakerRecord): void {
    if (newer(row, this.#rows.get(row.nodeId), true)) this.#rows.set(row.nodeId, row);
  }

  #current(): Promise<void> {
    const fresh = Date.now() - this.#loadedAt < this.#guard.maxAgeMs;
    if (this.#loading && fresh) return this.#loading;
    this.#loadedAt = Date.now();
    this.#read = false;
    const loading = this.#guard.store.getBreakers([this.pipelineId]).then(
      (byPipeline) => {
        for (const row of byPipeline.get(this.pipelineId) ?? []) {
          if (newer(row, this.#rows.get(row.nodeId), false)) this.#rows.set(row.nodeId, row);
        }
        if (this.#loading !== loading) return;
        this.#read = true;
        this.#guard.remember(this.pipelineId, this.#rows, this.#loadedAt);
      },
      (error: unknown) => {
        // Read again by the next node rather than keeping the failure.
        if (this.#loading === loading) this.#loading = undefined;
        throw error;
      },
    );
    this.#loading = loading;
    return loading;
  }
}

/** The breakers of one store, shared by the runs of this instance. */
export class BreakerGuard {
  readonly store: Store;
  readonly now: () => Date;
  readonly #maxAgeMs: number | undefined;
  readonly #views = new Map<string, Set<RunBreakers>>();
  readonly #recent = new Map<string, RecentRead>();
  readonly #bus: EventBus | undefined;
  readonly #instanceId: string;
  readonly #unsubscribe: (() => void) | undefined;

  constructor(store: Store, options: BreakerGuardOptions = {}) {
    this.store = store;
    this.now = options.now ?? (() => new Date());
    this.#bus = options.bus;
    this.#instanceId = options.instanceId ?? "";
    this.#maxAgeMs = options.maxAgeMs;
    this.#unsubscribe = this.#bus?.onBreaker(({ row, from }) => {
      if (from !== this.#instanceId) this.#apply(row);
    });
  }

  /**
   * How long a run's view is trusted without a read: for ever while a shared bus carries the
   * changes, 1 s without one, or while it is down (Redis unavailable: changes are not heard).
   */
  get maxAgeMs(): number {
    if (this.#maxAgeMs !== undefined) return this.#maxAgeMs;
    return this.#bus?.shared && this.#bus.health().available ? Number.POSITIVE_INFINITY : 1000;
  }

  /**
   * The view of one run; `release` it when the run ends. A run started soon after another
   * run's read starts from it (kept current the same way) instead of reading again: one short
   * run after another reads its breakers once in `maxAgeMs`, not once per run.
   */
  forRun(pipelineId: string): RunBreakers {
    const recent = this.#recent.get(pipelineId);
    const fresh = recent && Date.now() - recent.readAt < Math.min(this.maxAgeMs, RECENT_MAX_AGE_MS);
    if (recent && !fresh) this.#recent.delete(pipelineId);
    const view = new RunBreakers(this, pipelineId, fresh ? recent : undefined);
    const views = this.#views.get(pipelineId) ?? new Set();
    this.#views.set(pipelineId, views);
    views.add(view);
    return view;
  }

  /** Closes the breaker and clears its count. */
  async reset(pipelineId: string, nodeId: string): Promise<BreakerRecord> {
    const now = this.now();
    return (await this.update(pipelineId, nodeId, () => closedBreaker(pipelineId, nodeId, now)))!;
  }

  /** The store's atomic read-modify-write, whose result every view and instance then sees. */
  async update(
    pipelineId: string,
    nodeId: string,
    change: (current: BreakerRecord | null) => BreakerRecord | null,
  ): Promise<BreakerRecord | null> {
    let wrote = false;
    const row = await this.store.updateBreaker(pipelineId, nodeId, (current) => {
      const next = change(current);
      wrote = next !== null;
      return next;
    });
    if (row) {
      // Also when nothing was written: the row read is news to views that are behind.
      this.#apply(row);
      if (wrote) this.#bus?.publishBreaker({ row, from: this.#instanceId });
    }
    return row;
  }

  /** A view has read its pipeline's rows: the next run of the pipeline may start from them. */
  remember(pipelineId: string, rows: ReadonlyMap<string, BreakerRecord>, readAt: number): void {
    const current = this.#recent.get(pipelineId);
    if (current && current.readAt >= readAt) return;
    this.#recent.delete(pipelineId);
    if (this.#recent.size >= RECENT_PIPELINES) {
      const oldest = this.#recent.keys().next().value;
      if (oldest !== undefined) this.#recent.delete(oldest);
    }
    this.#recent.set(pipelineId, { rows: new Map(rows), readAt });
  }

  release(view: RunBreakers): void {
    const views = this.#views.get(view.pipelineId);
    if (!views) return;
    views.delete(view);
    if (views.size === 0) this.#views.delete(view.pipelineId);
  }

  close(): void {
    this.#unsubscribe?.();
  }

  #apply(row: BreakerRecord): void {
    for (const view of this.#views.get(row.pipelineId) ?? []) view.apply(row);
    const recent = this.#recent.get(row.pipelineId);
    if (recent && newer(row, recent.rows.get(row.nodeId), true)) recent.rows.set(row.nodeId, row);
  }
}
