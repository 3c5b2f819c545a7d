/**
 * One execution of a node that works outside the process (ACTION, AGENT) or waits (DELAY):
 * breaker admission, attempts with retries and timeouts, and the breaker's bookkeeping. What
 * the run makes of the outcome is RunExecution's business.
 *
 * The common case (a closed breaker with no failures counted, in a fresh view; no per-attempt
 * timeout) costs no async frame and no promise of the engine's: the first attempt is made at
 * once and its outcome reaches `done` through one callback on the handler's own promise. For a
 * step that does little, the three async frames this took before cost as much as the whole
 * rest of the node's bookkeeping. Everything else (reading the breakers, trials, retries,
 * timeouts, and whatever follows a failed first attempt) awaits, in `runGuarded`.
 */
import type { Logger } from "pino";
import {
  BREAKER_NODE_TYPES,
  breakerSettingsOf,
  type NodeDefinition,
  type PipelineDefinition,
  retryPolicyOf,
} from "../domain/definition.ts";
import type { JsonValue } from "../domain/json.ts";
import type { AbortScope } from "./abort-group.ts";
import type { StoreAvailability } from "./availability.ts";
import type { Admission } from "./breaker.ts";
import type { RunBreakers } from "./breaker-guard.ts";
import { admitThroughOutages } from "./node-outages.ts";
import type { NodeContext, NodeHandler } from "./nodes/types.ts";
import {
  type AttemptContext,
  executeWithRetry,
  isPromiseLike,
  type RetryOptions,
  retryAfterFailure,
} from "./retry.ts";

export type NodeOutcome =
  | { readonly kind: "completed"; readonly attempt: number; readonly output: JsonValue }
  | { readonly kind: "failed"; readonly attempt: number; readonly error: unknown }
  /** The run ended (cancel, timeout, another node's failure, hand-over) under the node. */
  | { readonly kind: "aborted" };

/** What a run gives the executions of its nodes: one per run, not one per node. */
export interface NodeHost {
  readonly definition: PipelineDefinition;
  readonly handlers: Readonly<Record<NodeDefinition["type"], NodeHandler>>;
  /** The run's view of its pipeline's breakers. */
  readonly breakers: RunBreakers;
  readonly logger: Logger;
  /** A breaker that cannot be read for an outage waits for the database. */
  readonly availability?: StoreAvailability;
  /** Attempts made before (a run resumed after a crash); numbering goes on from there. */
  attempts(nodeId: string): number;
  /** The handler's context for one attempt; `scope.signal` is read only if the handler asks. */
  context(
    node: NodeDefinition,
    attempt: number,
    scope: { readonly signal: AbortSignal },
  ): NodeContext;
  started(node: NodeDefinition, attempt: number): void;
  retrying(node: NodeDefinition, attempt: number, delayMs: number, error: unknown): void;
}

const ABORTED: NodeOutcome = Object.freeze({ kind: "aborted" });
/** Nodes without a breaker (DELAY) are admitted as through a clean one. */
const UNGUARDED: Admission = Object.freeze({ admitted: true, trial: false, clean: true });

/**
 * Runs the node to an outcome, handed to `done` once (never synchronously); never throws.
 * @param abort the node's share of the run's abort: fires when the run ends
 */
export function runNode(
  host: NodeHost,
  node: NodeDefinition,
  abort: AbortScope,
  done: (outcome: NodeOutcome) => void,
): void {
  const previous = host.attempts(node.id);
  const admission = BREAKER_NODE_TYPES.has(node.type) ? host.breakers.admitNow(node.id) : UNGUARDED;
  if (!(admission?.admitted && admission.clean) || node.timeoutMs || abort.aborted) {
    settle(runGuarded(host, node, abort, previous, admission), done, previous);
    return;
  }
  const attempt = previous + 1;
  let result: unknown;
  try {
    host.started(node, attempt);
    result = host.handlers[node.type](host.context(node, attempt, abort));
  } catch (error) {
    result = Promise.reject(error);
  }
  abort.watch(
    isPromiseLike(result) ? result : Promise.resolve(result),
    (output) =>
      done(abort.aborted ? ABORTED : { kind: "completed", attempt, output: output as JsonValue }),
    (error) => {
      if (abort.aborted) done(ABORTED);
      else settle(runGuarded(host, node, abort, previous, admission, error), done, attempt);
    },
  );
}

function settle(
  outcome: Promise<NodeOutcome>,
  done: (outcome: NodeOutcome) => void,
  attempt: number,
): void {
  // runGuarded catches what the node does: a rejection here is the engine's own bug, and the
  // node fails with it rather than being left running.
  outcome.then(done, (error: unknown) => done({ kind: "failed", attempt, error }));
}

/**
 * Admission (unless given clean), attempts and the breaker's bookkeeping, all awaited.
 * @param firstFailure the error of a first attempt already made (the fast path of runNode)
 */
async function runGuarded(
  host: NodeHost,
  node: NodeDefinition,
  abort: AbortScope,
  previousAttempts: number,
  known: Admission | null,
  ...firstFailure: [] | [unknown]
): Promise<NodeOutcome> {
  const { breakers } = host;
  const guarded = BREAKER_NODE_TYPES.has(node.type);
  const settings = breakerSettingsOf(node, host.definition);
  let admission = known;
  if (!admission) {
    const outcome = await admitThroughOutages(
      { nodeId: node.id, settings, breakers, abort, logger: host.logger },
      host.availability,
    );
    if (outcome.kind !== "admission")
      return outcome.kind === "aborted"
        ? outcome
        : { kind: "failed", attempt: previousAttempts, error: outcome.error };
    admission = outcome.admission;
  }
  if (!admission.admitted)
    return { kind: "failed", attempt: previousAttempts, error: admission.error };
  const trial = admission.trial;
  const clean = admission.clean ?? false;
  const policy = retryPolicyOf(node, host.definition);
  let attempt = firstFailure.length > 0 ? previousAttempts + 1 : previousAttempts;
  const call = (context: AttemptContext) => {
    attempt = context.attempt;
    host.started(node, attempt);
    return host.handlers[node.type](host.context(node, attempt, context));
  };
  const options: RetryOptions = {
    ...policy,
    // A run resumed after a crash still gets one attempt, whatever was used before.
    maxAttempts: Math.max(1, policy.maxAttempts - previousAttempts),
    previousAttempts,
    timeoutMs: node.timeoutMs ?? null,
    onRetry: ({ attempt: failed, delayMs, error }) => {
      if (!abort.aborted) host.retrying(node, failed, delayMs, error);
    },
  };
  try {
    const output = (await (firstFailure.length > 0
      ? retryAfterFailure(call, options, abort, firstFailure[0])
      : executeWithRetry(call, options, abort))) as JsonValue;
    if (abort.aborted) {
      await breakers.abandoned(node.id, trial);
      return ABORTED;
    }
    // A clean breaker has nothing to reset: no write on the common path. The node has
    // succeeded whatever becomes of that write (the database may be away): a lost reset only
    // leaves a failure count that the next success clears.
    if (guarded && (trial || !clean))
      await breakers.succeeded(node.id, trial).catch((err: unknown) => {
        host.logger.warn({ err, nodeId: node.id }, "could not record a breaker success");
      });
    return { kind: "completed", attempt, output };
  } catch (error) {
    if (abort.aborted) {
      await breakers.abandoned(node.id, trial).catch(() => {});
      return ABORTED;
    }
    if (guarded) {
      // Awaited, so that a run started right after this one fails sees the breaker's count.
      const breaker = await breakers.failed(node.id, trial, settings).catch((err: unknown) => {
        host.logger.error({ err, nodeId: node.id }, "could not record a breaker failure");
        return null;
      });
      if (
        breaker?.state === "OPEN" &&
        breaker.openedAt?.getTime() === breaker.updatedAt.getTime()
      ) {
        host.logger.warn(
          { nodeId: node.id, failures: breaker.failureCount },
          "circuit breaker opened",
        );
      }
    }
    return { kind: "failed", attempt, error };
  }
}
