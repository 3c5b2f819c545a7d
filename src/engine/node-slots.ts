/**
 * The process's node slots: at most `limit` node executions (ACTION, AGENT) at once, shared by
 * every run of the instance.
 *
 * A run waiting for slots queues itself once, not each of its ready nodes: its nodes wait in
 * its own list as ids, costing no closure or promise until they start. Slots go to the waiting
 * runs in turn, one node each, so a run with 2,000 ready nodes does not make a 3-node run wait
 * behind all of them (a queue of tasks, as p-queue's, serves them in the order they came).
 *
 * Steps that answer at once (a cached lookup, a no-op) end in microtasks, and their slots are
 * given on in microtasks: thousands of nodes could run without the event loop turning once.
 * After starting nodes for `SLICE_MS` (checked every 16 starts) the slots wait for the next
 * turn, so that requests, other runs and the writer's commits get theirs, as inline nodes do.
 */
import { performance } from "node:perf_hooks";

/** Longest stretch of node starts in one turn of the event loop. */
const SLICE_MS = 5;

/** A run that wants slots. */
export interface SlotUser {
  /**
   * Starts one node with a slot that is now the user's, to be given back with `release` when
   * the node is done. `more`: started, and another node waits; `last`: started, none waits;
   * `none`: nothing to start (the run ended or paused meanwhile), the slot stays free.
   */
  takeSlot(): SlotTaken;
}

export type SlotTaken = "more" | "last" | "none";

export class NodeSlots {
  readonly limit: number;
  #used = 0;
  #waiting: SlotUser[] = [];
  #head = 0;
  readonly #queued = new Set<SlotUser>();
  /** When the current stretch of starts began (0: none under way), and how many it made. */
  #sliceStart = 0;
  #starts = 0;
  /** Starts wait for the next turn (see above). */
  #yielding = false;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`Expected a positive integer of node slots, got \`${limit}\``);
    this.limit = limit;
  }

  /** Slots in use. */
  get used(): number {
    return this.#used;
  }

  /** Runs waiting for a slot. */
  get waiting(): number {
    return this.#queued.size;
  }

  /** The user wants slots: it is given them now if some are free, else in its turn. */
  request(user: SlotUser): void {
    if (this.#queued.has(user)) return;
    this.#queued.add(user);
    this.#waiting.push(user);
    this.#dispatch();
  }

  /** A node is done with its slot. */
  release(): void {
    this.#used--;
    this.#dispatch();
  }

  /** Forgets every waiting user (the engine is stopping). */
  clear(): void {
    this.#waiting = [];
    this.#head = 0;
    this.#queued.clear();
  }

  #dispatching = false;

  #dispatch(): void {
    // A node started here may end at once and release its slot: the loop below gives it on.
    if (this.#dispatching || this.#yielding) return;
    this.#dispatching = true;
    try {
      while (this.#used < this.limit && this.#head < this.#waiting.length) {
        if (this.#sliceStart === 0) {
          // A stretch lasts until the event loop turns.
          this.#sliceStart = performance.now();
          setImmediate(() => {
            this.#sliceStart = 0;
          });
        } else if ((++this.#starts & 15) === 0 && performance.now() - this.#sliceStart > SLICE_MS) {
          this.#yielding = true;
          setImmediate(() => {
            this.#yielding = false;
            this.#dispatch();
          });
          return;
        }
        const user = this.#waiting[this.#head++]!;
        this.#used++;
        let taken: SlotTaken = "none";
        try {
          taken = user.takeSlot();
        } finally {
          if (taken === "none") this.#used--;
          // Back at the end of the line: the next waiting run has the next slot.
          if (taken === "more") this.#waiting.push(user);
          else this.#queued.delete(user);
        }
        if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
          this.#waiting = this.#waiting.slice(this.#head);
          this.#head = 0;
        }
      }
    } finally {
      this.#dispatching = false;
    }
  }
}
