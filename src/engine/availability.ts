/**
 * Whether the database is there, as this instance sees it. Every part of the engine that
 * talks to the store reports an "unavailable" failure here (see store/unavailable.ts); the
 * first one marks the database down and logs it once, then a probe (a real write,
 * `Store.probe`) runs every `probeMs` until it succeeds: that marks it up again, logs the end
 * with its length, and wakes everything waiting (the writer, node executions, subscribers,
 * the lease heartbeat), so that work resumes within one probe interval of the return.
 *
 * Why a probe rather than waiting for the next failing call to succeed: during an outage the
 * callers stop calling (they wait here), so nothing else would notice the return.
 */
import type { Logger } from "pino";
import type { Store } from "../store/types.ts";
import { isStoreUnavailable } from "../store/unavailable.ts";

export interface AvailabilityOptions {
  readonly store: Pick<Store, "probe">;
  readonly logger: Pick<Logger, "warn" | "info">;
  /** How often to probe while the database is down. @default 250 */
  readonly probeMs?: number;
  /** The clock (tests replace it). */
  readonly now?: () => number;
}

export interface Outage {
  /** When the first failure was seen (epoch ms). */
  readonly since: number;
  /** The first failure's message. */
  readonly reason: string;
}

export class StoreAvailability {
  readonly #options: AvailabilityOptions;
  readonly #probeMs: number;
  readonly #now: () => number;
  #outage: Outage | null = null;
  #timer: NodeJS.Timeout | undefined;
  #probing = false;
  #closed = false;
  #waiters = new Set<() => void>();
  readonly #recoveryListeners = new Set<(outage: Outage) => void>();
  /** End of the last outage (epoch ms) and when it began. */
  #lastOutage: { readonly since: number; readonly until: number } | null = null;

  constructor(options: AvailabilityOptions) {
    const probeMs = options.probeMs ?? 250;
    if (!Number.isFinite(probeMs) || probeMs <= 0)
      throw new TypeError(`Expected \`probeMs\` > 0, got \`${probeMs}\` (${typeof probeMs})`);
    this.#options = options;
    this.#probeMs = probeMs;
    this.#now = options.now ?? Date.now;
  }

  /** True unless an outage is under way. */
  get available(): boolean {
    return this.#outage === null;
  }

  /** After close(): nothing waits any more. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The outage under way, if any. */
  get outage(): Outage | null {
    return this.#outage;
  }

  /** The last outage that ended: when it began and ended (epoch ms). */
  get lastOutage(): { readonly since: number; readonly until: number } | null {
    return this.#lastOutage;
  }

  /**
   * Reports a failed store call. Returns true when the error means "unavailable" (the outage
   * is then under way, and the caller should wait with `whenAvailable`); false for any other
   * error, which the caller handles as a failure of its own.
   */
  report(error: unknown): boolean {
    if (!isStoreUnavailable(error)) return false;
    if (this.#closed) return true;
    if (!this.#outage) {
      const reason = error instanceof Error ? error.message : String(error);
      this.#outage = { since: this.#now(), reason };
      this.#options.logger.warn(
        { err: error },
        "database unavailable: waiting for it (runs keep their state in memory)",
      );
      this.#schedule();
    }
    return true;
  }

  /** Resolves at once when available, else when the outage ends (or `signal` aborts, or close()). */
  whenAvailable(signal?: AbortSignal): Promise<void> {
    if (!this.#outage || this.#closed || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      this.#waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /** Calls `listener` each time an outage ends; returns the unsubscribe function. */
  onRecovered(listener: (outage: Outage) => void): () => void {
    this.#recoveryListeners.add(listener);
    return () => this.#recoveryListeners.delete(listener);
  }

  /** Stops probing and releases every waiter. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const wake of [...this.#waiters]) wake();
  }

  #schedule(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#probe();
    }, this.#probeMs);
    this.#timer.unref?.();
  }

  async #probe(): Promise<void> {
    if (this.#probing || !this.#outage || this.#closed) return;
    this.#probing = true;
    try {
      await this.#options.store.probe();
    } catch {
      this.#probing = false;
      this.#schedule();
      return;
    }
    this.#probing = false;
    this.#recovered();
  }

  #recovered(): void {
    const outage = this.#outage;
    if (!outage) return;
    this.#outage = null;
    const until = this.#now();
    this.#lastOutage = { since: outage.since, until };
    this.#options.logger.info(
      { outageMs: until - outage.since },
      `database available again after ${until - outage.since} ms`,
    );
    for (const wake of [...this.#waiters]) wake();
    for (const listener of this.#recoveryListeners) {
      try {
        listener(outage);
      } catch {
        // A listener's bug must not stop the others from being told.
      }
    }
  }
}

/**
 * Calls `work` until it settles with something other than an "unavailable" failure, waiting
 * for the database between tries. Bounded by `signal` (aborted: the last failure is thrown).
 */
export async function untilStored<T>(
  availability: StoreAvailability,
  work: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  for (;;) {
    try {
      return await work();
    } catch (error) {
      if (signal?.aborted || availability.closed || !availability.report(error)) throw error;
      await availability.whenAvailable(signal);
      if (signal?.aborted || availability.closed) throw error;
    }
  }
}
