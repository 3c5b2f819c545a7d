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
import type { StoreAvailability } from "./availability.ts";
import type { EventBus } from "./bus.ts";

/** How long `cancelElsewhere` waits at least for the owner to carry the cancel out. */
const REMOTE_CANCEL_WAIT_MS = 3000;
/** How often `untilEnded` reads the run meanwhile (the bus may be down, or absent). */
const END_POLL_MS = 100;

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
  /**
   * Database outages: while one lasts, no claim or renewal is tried (the outage is logged once,
   * not at every poll); when it ends, leases are renewed at once, and for one lease length
   * only the leases that had expired before the outage began are taken over (see
   * `#claimLease`).
   */
  readonly availability?: StoreAvailability;
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
  #again = false;
  /** Runs may wait QUEUED for an instance with room. */
  #waiting = false;
  #taking = false;
  /** When the last successful renewal was sent (epoch ms): a late one is logged. */
  #renewedAt: number | null = null;
  /** Claims and heartbeats under way: stop() waits for them before the store is closed. */
  readonly #tasks = new Set<Promise<unknown>>();

  constructor(options: OwnershipOptions, runs: OwnedRuns) {
    this.#options = options;
    this.#runs = runs;
    this.#leaseMs = options.leaseMs ?? 5000;
  }

  /** How often leases are renewed: a third of their length. */
  get #renewEveryMs(): number {
    return Math.max(100, Math.floor(this.#leaseMs / 3));
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
    const { bus, availability } = this.#options;
    this.#unsubscribe = [
      bus.onCancel((runId) => this.#runs.cancel(runId)),
      bus.onWork(() => this.claimSoon()),
      // Back from an outage: renew first (the runs under way here are still ours), then look
      // for work.
      ...(availability
        ? [
            availability.onRecovered(() => {
              this.#background(() => this.#heartbeat(), "could not renew leases");
              this.claimSoon();
            }),
          ]
        : []),
    ];
    const every = (ms: number, task: () => Promise<unknown>, what: string) => {
      const timer = setInterval(() => this.#background(task, what), ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(this.#options.pollMs ?? 500, () => this.#claim(), "could not claim runs");
    every(this.#renewEveryMs, () => this.#heartbeat(), "could not renew leases");
    this.claimSoon();
  }

  /** Runs a background task; an outage is reported (logged once there), anything else logged. */
  #background(task: () => Promise<unknown>, what: string): void {
    // While the database is down, nothing is tried: the outage's probe notices its return.
    if (this.#options.availability?.available === false) return;
    this.#track(task()).catch((error: unknown) => {
      if (!this.#options.availability?.report(error))
        this.#options.logger.error({ err: error }, what);
    });
  }

  /**
   * The lease to claim with. Right after an outage every lease may have expired during it, the
   * live instances' included: for one lease length, only leases that had expired before the
   * outage began count as expired, so that each live owner has the time to renew its own
   * (an instance that died meanwhile loses its runs a lease length later than usual).
   */
  #claimLease(): LeaseArgs {
    const lease = this.lease();
    const last = this.#options.availability?.lastOutage;
    if (last && lease.now.getTime() < last.until + this.#leaseMs)
      return { ...lease, now: new Date(last.since) };
    return lease;
  }

  /**
   * A run just created here under `lease`: true while it is still this instance's to execute.
   * That lease was counted from before the creation's transaction, and the run is renewed only
   * from the next heartbeat on. When the creation took longer than a renewal interval (a loaded
   * machine, a busy pool), so little of the lease may be left that another instance's poll
   * takes the run before that heartbeat, and both would call its first node: such a run is
   * renewed first, and left to whoever holds it if someone does (false). A renewal that fails
   * also answers false: the run's lease then lapses and a claim (this instance's own included)
   * resumes it from what is stored, where nothing of it has run yet.
   */
  async keepCreated(runId: string, lease: LeaseArgs): Promise<boolean> {
    if (Date.now() - lease.now.getTime() <= this.#renewEveryMs) return true;
    try {
      if ((await this.#options.store.renewLeases([runId], this.lease())).includes(runId))
        return true;
      this.#options.logger.warn(
        { runId, creationMs: Date.now() - lease.now.getTime() },
        "lease lost while the run was being created here: it executes where it was taken",
      );
      return false;
    } catch (error) {
      if (!this.#options.availability?.report(error))
        this.#options.logger.error({ err: error, runId }, "could not renew a run just created");
      return false;
    }
  }

  /** Looks for runs to take now rather than at the next poll. */
  claimSoon(): void {
    this.#waiting = true;
    this.#background(() => this.#claim(), "could not claim runs");
  }

  /**
   * A run ended here. If runs may be waiting (a work notice came, or the last claim filled the
   * room), one is taken now: a burst of runs beyond `maxActiveRuns` then flows through as
   * runs end, instead of one batch per poll.
   */
  roomMade(): void {
    if (this.#waiting) this.#background(() => this.#claim(), "could not claim runs");
  }

  /** Takes one run if nobody else holds it; `null` when someone does or it has ended. */
  claim(runId: string): Promise<RunRecord | null> {
    return this.#options.store.claimRun(runId, this.#claimLease());
  }

  async #claim(): Promise<void> {
    if (!this.#taking) return;
    // Asked again while a claim is under way: one more claim after it, however many asked.
    if (this.#claiming) {
      this.#again = true;
      return;
    }
    this.#claiming = true;
    try {
      do {
        this.#again = false;
        const capacity = this.maxActiveRuns - this.#runs.ids().length;
        if (capacity <= 0) return;
        const claimed = await this.#options.store.claimRuns(capacity, this.#claimLease());
        // Fewer than there was room for: nothing else waits (until the next notice).
        if (claimed.length < capacity) this.#waiting = false;
        for (const run of claimed) await this.#runs.execute(run);
      } while (this.#again && this.#taking);
    } finally {
      this.#claiming = false;
    }
  }

  async #heartbeat(): Promise<void> {
    // Also while stopping: the leases of runs finishing their nodes must not lapse. Renewal
    // does not look at the expiry: after an outage longer than the lease, a run that nobody
    // took meanwhile is still ours. (A run whose writes keep failing is not renewed: the
    // writer gives its writes up and the run stops here, see writer.ts.)
    const ids = this.#runs.ids();
    if (ids.length === 0) {
      // No lease to keep: the next renewal is not late, however long this lasts.
      this.#renewedAt = null;
      return;
    }
    const { store } = this.#options;
    const lease = this.lease();
    const held = new Set(await store.renewLeases(ids, lease));
    this.#noteRenewal(lease.now.getTime());
    for (const id of ids) if (!held.has(id)) this.#runs.lost(id);
    // Without Redis a cancel made on another instance arrives only through the database.
    for (const id of await store.cancelRequested(ids)) this.#runs.cancel(id);
  }

  /** Logs a renewal that came late enough to put the leases at risk (not after an outage). */
  #noteRenewal(sentAt: number): void {
    const previous = this.#renewedAt;
    this.#renewedAt = sentAt;
    const outageEnd = this.#options.availability?.lastOutage?.until ?? 0;
    if (previous === null || outageEnd > previous) return;
    const gapMs = Date.now() - previous;
    if (gapMs > (this.#leaseMs * 2) / 3)
      this.#options.logger.warn(
        { gapMs, queryMs: Date.now() - sentAt, leaseMs: this.#leaseMs },
        "lease renewal late",
      );
  }

  /**
   * Asks the instance executing the run to cancel it (through the bus; the request is on the
   * run row already, which the owner reads at each heartbeat), and waits until it has ended,
   * for at least 3 s or one lease length.
   */
  async cancelElsewhere(runId: string): Promise<void> {
    this.#options.bus.publishCancel(runId);
    await this.untilEnded(runId, Math.max(REMOTE_CANCEL_WAIT_MS, this.#leaseMs));
  }

  /**
   * Resolves once the run has ended (its terminal event is published, or its row says so), or
   * after `timeoutMs`: the wait for another instance to carry out a cancel. The row is read
   * every 100 ms too, so that the answer comes as soon as the run has ended when the bus
   * carries nothing (no Redis, or Redis down).
   */
  async untilEnded(runId: string, timeoutMs: number): Promise<void> {
    const { bus, store } = this.#options;
    let ended = false;
    let wake = () => {};
    const unsubscribe = bus.onRunEvent(runId, (event) => {
      if (TERMINAL_EVENT_TYPES.has(event.type)) {
        ended = true;
        wake();
      }
    });
    const deadline = Date.now() + timeoutMs;
    try {
      // Bounded by the deadline: one read per END_POLL_MS at most.
      while (!ended && Date.now() < deadline) {
        const [run] = await store.getRuns([runId]).catch(() => [undefined]);
        if (run === null || (run && isTerminalRunStatus(run.status))) return;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(
            resolve,
            Math.min(END_POLL_MS, Math.max(0, deadline - Date.now())),
          );
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    } finally {
      unsubscribe();
    }
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
    try {
      await this.#options.store.releaseRuns(unfinished, this.#options.instanceId);
    } catch (error) {
      // The database is away: the leases lapse instead, and the runs are taken over then.
      this.#options.logger.warn(
        { err: error, runs: unfinished.length },
        "could not hand unfinished runs over; their leases will lapse",
      );
      return;
    }
    this.#options.bus.publishWork();
    this.#options.logger.info({ runs: unfinished.length }, "handed unfinished runs over");
  }
}
