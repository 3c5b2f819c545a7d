/**
 * A run's events for a subscriber: the stored ones after `after`, then the live ones, with no
 * gap and no duplicate, ending after the terminal event.
 *
 * Order of operations: listen first, read the store second. Every event is published after it
 * is stored, so anything missing from the read arrives live; anything seen twice is dropped
 * by `seq`; a gap in the live stream (a slow subscriber whose buffer overflowed) is filled
 * from the store.
 */

import type { RunEventRecord } from "../domain/records.ts";
import { TERMINAL_EVENT_TYPES } from "../domain/status.ts";
import type { Store } from "../store/types.ts";
import { type StoreAvailability, untilStored } from "./availability.ts";
import type { EventBus } from "./bus.ts";

/** Live events held for a subscriber that reads slower than they come; past it, re-read the store. */
const MAX_BUFFERED = 10_000;
/** Events read from the store at a time. */
const PAGE = 1000;

export interface StreamOptions {
  /**
   * While the run executes on another instance, also read the store this often: events then
   * arrive even without Redis between the instances, or if a message is lost. @default 1000
   */
  readonly pollMs?: number;
  /** True while this process executes the run (its events cannot miss the local bus). */
  readonly isLocal?: () => boolean;
  /**
   * Database outages: a read that fails because the database is unavailable waits for its
   * return and is made again, so that the stream goes on from its last seq instead of ending
   * with an error. Without it, such a failure ends the stream.
   */
  readonly availability?: StoreAvailability;
}

async function* stream(
  store: Store,
  bus: EventBus,
  runId: string,
  after: number,
  signal: AbortSignal,
  options: StreamOptions,
): AsyncGenerator<RunEventRecord, void, undefined> {
  const pollMs = options.pollMs ?? 1000;
  // A queue read from `head`: a burst of thousands of events costs no array shifting.
  let buffer: RunEventRecord[] = [];
  let head = 0;
  let overflowed = false;
  let wake: (() => void) | undefined;
  const unsubscribe = bus.onRunEvent(runId, (event) => {
    if (buffer.length - head >= MAX_BUFFERED) {
      overflowed = true;
      buffer = [];
      head = 0;
    } else {
      buffer.push(event);
    }
    wake?.();
  });
  const onAbort = () => wake?.();
  signal.addEventListener("abort", onAbort, { once: true });
  let last = after;
  try {
    // Replay (and gap filling): page through the store until it has nothing newer.
    const replay = async function* (): AsyncGenerator<RunEventRecord, boolean> {
      for (;;) {
        const from = last;
        const read = () => store.getEvents(runId, from, PAGE);
        const page = await (options.availability
          ? untilStored(options.availability, read, signal)
          : read());
        for (const event of page) {
          last = event.seq;
          yield event;
          if (TERMINAL_EVENT_TYPES.has(event.type)) return true;
        }
        if (page.length < PAGE) return false;
      }
    };
    if (yield* replay()) return;
    for (;;) {
      if (signal.aborted) return;
      if (overflowed) {
        overflowed = false;
        buffer = [];
        head = 0;
        if (yield* replay()) return;
        continue;
      }
      const event = buffer[head];
      if (event) head++;
      if (head === buffer.length) {
        buffer = [];
        head = 0;
      }
      if (!event) {
        let timer: NodeJS.Timeout | undefined;
        const polled = await new Promise<boolean>((resolve) => {
          wake = () => resolve(false);
          timer = setTimeout(() => resolve(true), pollMs);
        });
        clearTimeout(timer);
        wake = undefined;
        // A run executing here needs no reads, unless the bus is down (Redis: what was
        // published meanwhile was lost).
        if (
          polled &&
          buffer.length === head &&
          !signal.aborted &&
          (!options.isLocal?.() || !bus.health().available) &&
          (yield* replay())
        )
          return;
        continue;
      }
      if (event.seq <= last) continue;
      if (event.seq > last + 1 && (yield* replay())) return;
      if (event.seq <= last) continue;
      last = event.seq;
      yield event;
      if (TERMINAL_EVENT_TYPES.has(event.type)) return;
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    unsubscribe();
  }
}

/**
 * The stream as an iterator whose `return()` (a client going away) ends it at once, even
 * while it waits for the next live event.
 */
export function runEventStream(
  store: Store,
  bus: EventBus,
  runId: string,
  after = 0,
  options: StreamOptions = {},
): AsyncIterableIterator<RunEventRecord> {
  const controller = new AbortController();
  const inner = stream(store, bus, runId, after, controller.signal, options);
  const iterator: AsyncIterableIterator<RunEventRecord> = {
    next: () => inner.next(),
    async return() {
      controller.abort();
      await inner.return(undefined);
      return { done: true, value: undefined };
    },
    async throw(error: unknown) {
      controller.abort();
      return inner.throw(error);
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}
