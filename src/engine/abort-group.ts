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
  /**
   * Calls `onValue` with what `work` gives, or `onError` with its error or, as soon as the
   * scope is aborted, with the abort error: one of them, once, never synchronously.
   */
  watch<T>(
    work: PromiseLike<T>,
    onValue: (value: T) => void,
    onError: (error: unknown) => void,
  ): void;
}

/** A scope over a plain signal (one listener per race). */
export function signalScope(signal: AbortSignal): AbortScope {
  const race = <T>(work: Promise<T>): Promise<T> => {
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
  };
  return {
    signal,
    get aborted() {
      return signal.aborted;
    },
    race,
    watch: (work, onValue, onError) => {
      race(Promise.resolve(work)).then(onValue, onError);
    },
  };
}

/** One node's share of its run's abort. */
export class GroupMember implements AbortScope {
  readonly #group: AbortGroup;
  #controller: AbortController | undefined;
  #reason: Error | undefined;
  /** The race or watch under way (a node makes one at a time): how an abort ends it. */
  #reject: ((error: Error) => void) | undefined;
  /** The group's members under way, linked through themselves: no set to grow and shrink. */
  previous: GroupMember | undefined;
  next: GroupMember | undefined;

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

  watch<T>(
    work: PromiseLike<T>,
    onValue: (value: T) => void,
    onError: (error: unknown) => void,
  ): void {
    if (this.#reason || this.#reject) {
      this.race(Promise.resolve(work)).then(onValue, onError);
      return;
    }
    // No promise of its own: whichever comes first, the work's end or the abort, clears
    // #reject; the other then finds it cleared (or another's) and does nothing.
    const reject = (reason: Error) => {
      queueMicrotask(() => onError(reason));
    };
    this.#reject = reject;
    work.then(
      (value) => {
        if (this.#reject !== reject) return;
        this.#reject = undefined;
        onValue(value);
      },
      (error: unknown) => {
        if (this.#reject !== reject) return;
        this.#reject = undefined;
        onError(error);
      },
    );
  }

  /** The work is done: the group forgets the member. */
  release(): void {
    this.#group.forget(this);
  }

  abort(reason: Error): void {
    if (this.#reason) return;
    this.#reason = reason;
    this.#controller?.abort(reason);
    const reject = this.#reject;
    this.#reject = undefined;
    reject?.(reason);
  }
}

export class AbortGroup {
  /** Made when someone asks for the run's signal: most runs never do. */
  #controller: AbortController | undefined;
  /** Why the group was aborted; the Error itself is made only for someone to see it. */
  #why: string | undefined;
  #reason: Error | undefined;
  /** The first of the members under way (see GroupMember.next). */
  #first: GroupMember | undefined;

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
    else {
      member.next = this.#first;
      if (this.#first) this.#first.previous = member;
      this.#first = member;
    }
    return member;
  }

  forget(member: GroupMember): void {
    const { previous, next } = member;
    if (previous) previous.next = next;
    else if (this.#first === member) this.#first = next;
    else return; // not a member under way (forgotten already, or made after the abort)
    if (next) next.previous = previous;
    member.previous = member.next = undefined;
  }

  /** Aborts every member and the signal with `new Error(why)`. */
  abort(why: string): void {
    if (this.#why !== undefined) return;
    this.#why = why;
    if (this.#controller) this.#controller.abort(this.#error());
    let member = this.#first;
    this.#first = undefined;
    while (member) {
      const next = member.next;
      member.previous = member.next = undefined;
      member.abort(this.#error());
      member = next;
    }
  }

  #error(): Error {
    this.#reason ??= new Error(this.#why);
    return this.#reason;
  }
}
