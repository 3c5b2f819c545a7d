/**
 * A node execution through a database outage. The store is read and written around the
 * handler's calls (the breaker's admission before the first attempt); when such a read fails
 * because the database is unavailable, the node has not been called yet: it waits for the
 * database's return and goes on from there. The failure is not one of the node's attempts and
 * never counts towards its breaker. Anything else that escapes runNode is the node's failure.
 *
 * Invariant: every node handed here ends completed, failed or aborted (the run ended under it):
 * never left RUNNING while the run's lease is renewed.
 */
import type { StoreAvailability } from "./availability.ts";
import { type NodeOutcome, type NodeRun, runNode } from "./node-runner.ts";

export async function runNodeThroughOutages(
  run: NodeRun,
  availability: StoreAvailability | undefined,
): Promise<NodeOutcome> {
  // Bounded by the run's abort: the run's end (cancel, timeout, hand-over) stops the wait.
  for (;;) {
    try {
      return await runNode(run);
    } catch (error) {
      if (run.abort.aborted) return { kind: "aborted" };
      if (!availability || availability.closed || !availability.report(error))
        return { kind: "failed", attempt: run.previousAttempts, error };
      run.logger.info(
        { nodeId: run.node.id },
        "node waits for the database (its breaker could not be read)",
      );
      // Raced with the run's end, without a listener of its own (see AbortGroup).
      await run.abort.race(availability.whenAvailable()).catch(() => {});
      if (run.abort.aborted) return { kind: "aborted" };
    }
  }
}
