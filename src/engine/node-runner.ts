/**
 * One execution of a node that works outside the process (ACTION, AGENT) or waits (DELAY):
 * breaker admission, attempts with retries and timeouts, and the breaker's bookkeeping. What
 * the run makes of the outcome is RunExecution's business.
 *
 * The common case costs one async frame and the handler's own promise: a closed breaker in a
 * fresh view admits without waiting, and a first attempt without a timeout is made directly
 * (see executeWithRetry). Everything else (reading the breakers, trials, retries) awaits.
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
import type { NodeHandler } from "./nodes/types.ts";
import { type AttemptContext, executeWithRetry } from "./retry.ts";

export type NodeOutcome =
  | { readonly kind: "completed"; readonly attempt: number; readonly output: JsonValue }
  | { readonly kind: "failed"; readonly attempt: number; readonly error: unknown }
  /** The run ended (cancel, timeout, another node's failure, hand-over) under the node. */
  | { readonly kind: "aborted" };

export interface NodeRun {
  readonly definition: PipelineDefinition;
  readonly node: NodeDefinition;
  readonly handler: NodeHandler;
  /** Attempts made before (a run resumed after a crash); numbering goes on from there. */
  readonly previousAttempts: number;
  /** The node's share of the run's abort: fires when the run ends. */
  readonly abort: AbortScope;
  /** The run's view of its pipeline's breakers. */
  readonly breakers: RunBreakers;
  readonly logger: Logger;
  /** The handler's context for one attempt, whose signal is the attempt's. */
  readonly contextFor: (attempt: AttemptContext) => Parameters<NodeHandler>[0];
  readonly onStarted: (attempt: number) => void;
  readonly onRetrying: (attempt: number, delayMs: number, error: unknown) => void;
}

/**
 * Runs the node to an outcome; never throws.
 * @param availability a breaker that cannot be read for an outage waits for the database
 */
export async function runNode(
  run: NodeRun,
  availability?: StoreAvailability,
): Promise<NodeOutcome> {
  const { node, breakers, abort } = run;
  const guarded = BREAKER_NODE_TYPES.has(node.type);
  const settings = breakerSettingsOf(node, run.definition);
  let trial = false;
  let clean = true;
  if (guarded) {
    let admission: Admission | null = breakers.admitNow(node.id);
    if (!admission) {
      const outcome = await admitThroughOutages(
        { nodeId: node.id, settings, breakers, abort, logger: run.logger },
        availability,
      );
      if (outcome.kind !== "admission")
        return outcome.kind === "aborted"
          ? outcome
          : { kind: "failed", attempt: run.previousAttempts, error: outcome.error };
      admission = outcome.admission;
    }
    if (!admission.admitted)
      return { kind: "failed", attempt: run.previousAttempts, error: admission.error };
    trial = admission.trial;
    clean = admission.clean ?? false;
  }
  const policy = retryPolicyOf(node, run.definition);
  let attempt = run.previousAttempts;
  try {
    const output = (await executeWithRetry(
      (context) => {
        attempt = context.attempt;
        run.onStarted(attempt);
        return run.handler(run.contextFor(context));
      },
      {
        ...policy,
        // A run resumed after a crash still gets one attempt, whatever was used before.
        maxAttempts: Math.max(1, policy.maxAttempts - run.previousAttempts),
        previousAttempts: run.previousAttempts,
        timeoutMs: node.timeoutMs ?? null,
        onRetry: ({ attempt: failed, delayMs, error }) => {
          if (!abort.aborted) run.onRetrying(failed, delayMs, error);
        },
      },
      abort,
    )) as JsonValue;
    if (abort.aborted) {
      await breakers.abandoned(node.id, trial);
      return { kind: "aborted" };
    }
    // A clean breaker has nothing to reset: no write on the common path. The node has
    // succeeded whatever becomes of that write (the database may be away): a lost reset only
    // leaves a failure count that the next success clears.
    if (guarded && (trial || !clean))
      await breakers.succeeded(node.id, trial).catch((err: unknown) => {
        run.logger.warn({ err, nodeId: node.id }, "could not record a breaker success");
      });
    return { kind: "completed", attempt, output };
  } catch (error) {
    if (abort.aborted) {
      await breakers.abandoned(node.id, trial).catch(() => {});
      return { kind: "aborted" };
    }
    if (guarded) {
      // Awaited, so that a run started right after this one fails sees the breaker's count.
      const breaker = await breakers.failed(node.id, trial, settings).catch((err: unknown) => {
        run.logger.error({ err, nodeId: node.id }, "could not record a breaker failure");
        return null;
      });
      if (
        breaker?.state === "OPEN" &&
        breaker.openedAt?.getTime() === breaker.updatedAt.getTime()
      ) {
        run.logger.warn(
          { nodeId: node.id, failures: breaker.failureCount },
          "circuit breaker opened",
        );
      }
    }
    return { kind: "failed", attempt, error };
  }
}
