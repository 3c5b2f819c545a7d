/**
 * Live run events and cancel signals. In one process they go through an in-memory
 * EventTarget; with Redis (`REDIS_URL`) through `@graphql-yoga/redis-event-target`, so that a
 * subscriber on any instance sees a run executing on any other.
 *
 * Events are published only after they are stored (see writer.ts). A subscriber therefore
 * listens first, reads the store second, and fills any gap it sees from the store: replay and
 * live stream meet without a gap or a duplicate.
 */
import { setMaxListeners } from "node:events";
import type { BreakerRecord, RunEventRecord } from "../domain/records.ts";

/** The channels and what travels on them. */
export interface BusChannels {
  /** `run:<runId>`: stored events of that run, in seq order. */
  readonly run: readonly RunEventRecord[];
  /** `cancel`: a run some instance was asked to cancel. */
  readonly cancel: { readonly runId: string };
  /** `work`: runs wait to be taken (queued beyond an instance's room, or handed over). */
  readonly work: Record<string, never>;
  /** `breaker`: a breaker's row after a change, and the instance that made it. */
  readonly breaker: { readonly row: BreakerRecord; readonly from: string };
}

export type BusEvent = CustomEvent<unknown>;
/** What both the in-memory EventTarget and the Redis event target offer. */
export interface BusTarget {
  addEventListener(type: string, listener: (event: BusEvent) => void): void;
  removeEventListener(type: string, listener: (event: BusEvent) => void): void;
  dispatchEvent(event: BusEvent): boolean;
}

export interface EventBus {
  /**
   * Publishes stored events of one run, in seq order. One message per batch, not per event:
   * a commit that stored 2,000 node results sends one message (through Redis: one PUBLISH).
   */
  publish(runId: string, events: readonly RunEventRecord[]): void;
  /** Calls `listener` with each event of the run; returns the unsubscribe function. */
  onRunEvent(runId: string, listener: (event: RunEventRecord) => void): () => void;
  publishCancel(runId: string): void;
  onCancel(listener: (runId: string) => void): () => void;
  /** Tells every instance that runs wait to be taken, so that they poll at once. */
  publishWork(): void;
  onWork(listener: () => void): () => void;
  /** Tells every instance that a breaker changed, so that the runs under way there see it. */
  publishBreaker(change: BusChannels["breaker"]): void;
  onBreaker(listener: (change: BusChannels["breaker"]) => void): () => void;
  /** True when messages reach other instances (Redis); false when only this process. */
  readonly shared: boolean;
  /**
   * Whether messages get through now. While not (Redis is down), publishing drops them and
   * subscribers must read the store instead; `reason` says why.
   */
  health(): BusHealth;
  close(): Promise<void>;
}

export interface BusHealth {
  readonly available: boolean;
  readonly reason: string | null;
}

const HEALTHY: BusHealth = { available: true, reason: null };

const runChannel = (runId: string) => `run:${runId}`;

function revive(value: unknown): RunEventRecord {
  const event = value as RunEventRecord;
  return event.at instanceof Date
    ? event
    : { ...event, at: new Date(event.at as unknown as string) };
}

const dateOrNull = (value: Date | string | null) =>
  value === null || value instanceof Date ? value : new Date(value);

function reviveBreaker(change: BusChannels["breaker"]): BusChannels["breaker"] {
  const { row } = change;
  if (row.updatedAt instanceof Date) return change;
  return {
    from: change.from,
    row: {
      ...row,
      openedAt: dateOrNull(row.openedAt),
      trialStartedAt: dateOrNull(row.trialStartedAt),
      updatedAt: new Date(row.updatedAt),
    },
  };
}

/**
 * @param local true when every listener is in this process: events nobody listens to are then
 * not dispatched at all (most runs have no subscriber).
 */
export function busOn(target: BusTarget, local: boolean): EventBus {
  const listeners = new Map<string, number>();
  const listen = (type: string, listener: (detail: unknown) => void) => {
    const handler = (event: BusEvent) => {
      try {
        listener(event.detail);
      } catch {
        // A listener's bug must not reach the publisher (the engine).
      }
    };
    target.addEventListener(type, handler);
    listeners.set(type, (listeners.get(type) ?? 0) + 1);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      target.removeEventListener(type, handler);
      const left = (listeners.get(type) ?? 1) - 1;
      if (left > 0) listeners.set(type, left);
      else listeners.delete(type);
    };
  };
  return {
    publish: (runId, events) => {
      const channel = runChannel(runId);
      if (events.length === 0 || (local && !listeners.has(channel))) return;
      target.dispatchEvent(new CustomEvent(channel, { detail: events }));
    },
    onRunEvent: (runId, listener) =>
      listen(runChannel(runId), (detail) => {
        for (const event of detail as unknown[]) listener(revive(event));
      }),
    publishCancel: (runId) =>
      target.dispatchEvent(new CustomEvent("cancel", { detail: { runId } })),
    onCancel: (listener) =>
      listen("cancel", (detail) => listener((detail as BusChannels["cancel"]).runId)),
    publishWork: () => target.dispatchEvent(new CustomEvent("work", { detail: {} })),
    onWork: (listener) => listen("work", () => listener()),
    publishBreaker: (change) => {
      if (local && !listeners.has("breaker")) return;
      target.dispatchEvent(new CustomEvent("breaker", { detail: change }));
    },
    onBreaker: (listener) =>
      listen("breaker", (detail) => listener(reviveBreaker(detail as BusChannels["breaker"]))),
    shared: !local,
    health: () => HEALTHY,
    close: async () => {},
  };
}

/** The in-process bus. */
export function createMemoryBus(): EventBus {
  const target = new EventTarget();
  // A run may have any number of subscribers; Node warns past 10 listeners by default.
  setMaxListeners(0, target);
  return busOn(target as unknown as BusTarget, true);
}
