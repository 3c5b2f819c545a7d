/**
 * A run's abort, fanned out to its nodes without a listener per node on the run's signal.
 *
 * Every node task of a run used to hand the run's signal to p-queue, cockatiel and the
 * handler, each adding an `abort` listener: thousands on one signal for a wide run (each add
 * and remove walks them, and Node warns past ten). Here the group keeps its members in a set
 * and aborts them itself. A member makes its own AbortSignal only when someone asks for it (a
 * handler that passes it to fetch, a retry policy): a step that never looks at its signal costs
 * no AbortController and no listener at all.
 */
import { abortError } from "./errors.ts";

/** What a piece of work needs to stop with its run. */
export interface AbortScope {
  readonly aborted: boolean;
  /** An AbortSignal that fires with the scope (made on first use). */
  readonly signal: AbortSignal;
  /** `work`, or a rejection with the abort error as soon as the scope is aborted. */
  race<T>(work: Promise<T>): Promise<T>;
}

/** A scope over a plain signal (one listener per race). */
export function signalScope(signal: AbortSignal): AbortScope {
  return {
    signal,
    get aborted() {
      return signal.aborted;
    },
    race: (work) => {
      if (signal.aborted) return Promise.reject(abortError(signal));
      return new Promise((resolve, reject) => {
        const onAbort = () => reject(abortError(signal));
        signal.addEventListener("abort", onAbort, { once: true });
        work.then(
          (value) => {
            signal.removeEventListener("abort", onAbort);
            resolve(value);
          },
          (error: unknown) => {
            signal.removeEventListener("abort", onAbort);
            reject(error);
          },
        );
      });
    },
  };
}

/** One node's share of its run's abort. */
export class GroupMember implements AbortScope {
  readonly #group: AbortGroup;
  #controller: AbortController | undefined;
  #reason: Error | undefined;
  /** The race under way: a node makes one at a time. */
  #reject: ((error: Error) => void) | undefined;

  constructor(group: AbortGroup) {
    this.#group = group;
  }

  get aborted(): boolean {
    return this.#reason !== undefined;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#reason) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  race<T>(work: Promise<T>): Promise<T> {
    if (this.#reason) return Promise.reject(this.#reason);
    if (this.#reject) return signalScope(this.signal).race(work);
    return new Promise((resolve, reject) => {
      this.#reject = reject;
      work.then(
        (value) => {
          this.#reject = undefined;
          resolve(value);
        },
        (error: unknown) => {
          this.#reject = undefined;
          reject(error);
        },
      );
    });
  }

  /** The work is done: the group forgets the member. */
  release(): void {
    this.#group.forget(this);
  }

  abort(reason: Error): void {
    if (this.#reason) return;
    this.#reason = reason;
    this.#controller?.abort(reason);
    this.#reject?.(reason);
    this.#reject = undefined;
  }
}

export class AbortGroup {
  /** Made when someone asks for the run's signal: most runs never do. */
  #controller: AbortController | undefined;
  /** Why the group was aborted; the Error itself is made only for someone to see it. */
  #why: string | undefined;
  #reason: Error | undefined;
  readonly #members = new Set<GroupMember>();

  /** The run's signal: aborted once, when the run ends or is handed over. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#why !== undefined) this.#controller.abort(this.#error());
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#why !== undefined;
  }

  /** A scope for one piece of the run's work, aborted with the group; `release` it after. */
  member(): GroupMember {
    const member = new GroupMember(this);
    if (this.#why !== undefined) member.abort(this.#error());
    else this.#members.add(member);
    return member;
  }

  forget(member: GroupMember): void {
    this.#members.delete(member);
  }

  /** Aborts every member and the signal with `new Error(why)`. */
  abort(why: string): void {
    if (this.#why !== undefined) return;
    this.#why = why;
    if (this.#controller) this.#controller.abort(this.#error());
    if (this.#members.size === 0) return;
    const members = [...this.#members];
    this.#members.clear();
    for (const member of members) member.abort(this.#error());
  }

  #error(): Error {
    this.#reason ??= new Error(this.#why);
    return this.#reason;
  }
}
