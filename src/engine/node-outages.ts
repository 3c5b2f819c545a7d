/**
 * A node's breaker admission through a database outage. The store is read before the node's
 * first attempt (the breaker's admission, when the run's view of its breakers is stale or the
 * breaker is not closed); when that read fails because the database is unavailable, the node
 * has not been called yet: it waits for the database's return and asks again. The failure is
 * not one of the node's attempts and never counts towards its breaker. Any other error is the
 * node's failure.
 *
 * Invariant: every node handed here ends admitted, refused or aborted (the run ended under it):
 * never left RUNNING while the run's lease is renewed.
 */
import type { AbortScope } from "./abort-group.ts";
import type { StoreAvailability } from "./availability.ts";
import type { Admission, BreakerSettings } from "./breaker.ts";
import type { RunBreakers } from "./breaker-guard.ts";

export type AdmissionOutcome =
  | { readonly kind: "admission"; readonly admission: Admission }
  | { readonly kind: "aborted" }
  | { readonly kind: "failed"; readonly error: unknown };

export interface AdmissionRequest {
  readonly nodeId: string;
  readonly settings: BreakerSettings;
  readonly breakers: RunBreakers;
  readonly abort: AbortScope;
  readonly logger: { info(fields: object, message: string): void };
}

export async function admitThroughOutages(
  request: AdmissionRequest,
  availability: StoreAvailability | undefined,
): Promise<AdmissionOutcome> {
  const { nodeId, settings, breakers, abort } = request;
  // Bounded by the run's abort: the run's end (cancel, timeout, hand-over) stops the wait.
  for (;;) {
    try {
      const admission = await breakers.admit(nodeId, settings);
      return abort.aborted ? { kind: "aborted" } : { kind: "admission", admission };
    } catch (error) {
      if (abort.aborted) return { kind: "aborted" };
      if (!availability || availability.closed || !availability.report(error))
        return { kind: "failed", error };
      request.logger.info(
        { nodeId },
        "node waits for the database (its breaker could not be read)",
      );
      // Raced with the run's end, without a listener of its own (see AbortGroup).
      await abort.race(availability.whenAvailable()).catch(() => {});
      if (abort.aborted) return { kind: "aborted" };
    }
  }
}
