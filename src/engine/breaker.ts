/**
 * Circuit breakers, one per pipeline node, shared by every run and instance and kept across
 * restarts: their state is a database row, changed only by atomic read-modify-write.
 *
 * Why not cockatiel's CircuitBreakerPolicy (which the retries do use): its state lives in one
 * process's memory. Several instances must agree on one breaker, so each transition below is a
 * pure function applied inside the store's transaction (`Store.updateBreaker`).
 *
 * CLOSED --failureThreshold consecutive failed executions--> OPEN
 * OPEN --recoveryTimeoutMs elapsed, next call becomes the trial--> HALF_OPEN
 * HALF_OPEN --trial succeeds--> CLOSED;  --trial fails--> OPEN (timer restarts)
 */

import { BREAKER_NODE_TYPES } from "../domain/definition.ts";
import { BadInputError } from "../domain/errors.ts";
import type { BreakerRecord, PipelineRecord } from "../domain/records.ts";
import { BreakerOpenError } from "./errors.ts";

export interface BreakerSettings {
  readonly failureThreshold: number;
  readonly recoveryTimeoutMs: number;
}

/**
 * A trial whose instance died must not hold the breaker HALF_OPEN for ever: after this long
 * another call may take the trial over.
 */
export const STALE_TRIAL_MS = 5 * 60_000;

export type Admission =
  | {
      readonly admitted: true;
      readonly trial: boolean;
      /** Closed with no failures counted: a success has nothing to reset. */
      readonly clean?: boolean;
    }
  | { readonly admitted: false; readonly error: BreakerOpenError };

/** A closed breaker with no failures counted. */
export const closedBreaker = (pipelineId: string, nodeId: string, now: Date): BreakerRecord => ({
  pipelineId,
  nodeId,
  state: "CLOSED",
  failureCount: 0,
  openedAt: null,
  trialStartedAt: null,
  updatedAt: now,
});

/** Whether a call may go ahead, and the row to write if the state moves (OPEN → HALF_OPEN). */
export function admit(
  current: BreakerRecord | null,
  settings: BreakerSettings,
  now: Date,
): { admission: Admission; next: BreakerRecord | null } {
  if (!current || current.state === "CLOSED")
    return { admission: { admitted: true, trial: false }, next: null };
  if (current.state === "OPEN") {
    const until = new Date((current.openedAt?.getTime() ?? 0) + settings.recoveryTimeoutMs);
    if (now < until) {
      return {
        admission: { admitted: false, error: new BreakerOpenError(current.nodeId, until) },
        next: null,
      };
    }
    return {
      admission: { admitted: true, trial: true },
      next: { ...current, state: "HALF_OPEN", trialStartedAt: now, updatedAt: now },
    };
  }
  const trialAge = now.getTime() - (current.trialStartedAt?.getTime() ?? 0);
  if (trialAge >= Math.max(STALE_TRIAL_MS, settings.recoveryTimeoutMs)) {
    return {
      admission: { admitted: true, trial: true },
      next: { ...current, trialStartedAt: now, updatedAt: now },
    };
  }
  return {
    admission: { admitted: false, error: new BreakerOpenError(current.nodeId, null) },
    next: null,
  };
}

/** After a successful execution. `null`: nothing to write. */
export function afterSuccess(
  current: BreakerRecord | null,
  trial: boolean,
  now: Date,
): BreakerRecord | null {
  if (!current) return null;
  if (current.state === "HALF_OPEN" && trial)
    return closedBreaker(current.pipelineId, current.nodeId, now);
  if (current.state === "CLOSED" && current.failureCount > 0)
    return { ...current, failureCount: 0, updatedAt: now };
  // A call admitted before the breaker opened that succeeds late proves little: leave it open.
  return null;
}

/** After an execution failed (retries exhausted, or a non-retryable error). */
export function afterFailure(
  current: BreakerRecord | null,
  trial: boolean,
  settings: BreakerSettings,
  now: Date,
  key: { pipelineId: string; nodeId: string },
): BreakerRecord {
  const base = current ?? closedBreaker(key.pipelineId, key.nodeId, now);
  const failureCount = base.failureCount + 1;
  if (base.state === "HALF_OPEN" && trial) {
    return {
      ...base,
      state: "OPEN",
      failureCount,
      openedAt: now,
      trialStartedAt: null,
      updatedAt: now,
    };
  }
  if (base.state === "CLOSED" && failureCount >= settings.failureThreshold) {
    return {
      ...base,
      state: "OPEN",
      failureCount,
      openedAt: now,
      trialStartedAt: null,
      updatedAt: now,
    };
  }
  return { ...base, failureCount, updatedAt: now };
}

/** The trial was interrupted (cancel): undecided, so the next call may try again at once. */
export function afterAbandon(
  current: BreakerRecord | null,
  trial: boolean,
  now: Date,
): BreakerRecord | null {
  if (!current || !trial || current.state !== "HALF_OPEN") return null;
  return { ...current, state: "OPEN", trialStartedAt: null, updatedAt: now };
}

/** @throws {BadInputError} when the pipeline has no such node, or the node has no breaker */
export function assertHasBreaker(pipeline: PipelineRecord, nodeId: string): void {
  const node = pipeline.definition.nodes.find((n) => n.id === nodeId);
  if (!node)
    throw new BadInputError(`pipeline "${pipeline.id}" has no node "${nodeId}"`, {
      pipelineId: pipeline.id,
      nodeId,
    });
  if (!BREAKER_NODE_TYPES.has(node.type))
    throw new BadInputError(
      `node "${nodeId}" is a ${node.type}; only ACTION and AGENT nodes have breakers`,
    );
}
