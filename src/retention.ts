/**
 * Retention: finished runs older than RUN_RETENTION, and those beyond the newest
 * MAX_RETAINED_RUNS, are deleted in the background with their node runs and events, in
 * batches, every RETENTION_INTERVAL_MS. Active runs are never deleted. Every instance may run
 * it: deleting what another instance already deleted deletes nothing.
 */
import type { Logger } from "pino";
import type { SecurityConfig } from "./config.ts";
import type { Store } from "./store/types.ts";

/** Runs deleted per statement; a pass loops over batches up to PASS_LIMIT. */
const BATCH = 500;
const PASS_LIMIT = 200;

export interface Retention {
  /** One pass now (what the timer does); resolves with the runs deleted. */
  runOnce(): Promise<number>;
  stop(): void;
  /** Resolves when no pass is under way. */
  idle(): Promise<void>;
}

export function startRetention(
  store: Store,
  settings: Pick<SecurityConfig, "runRetentionMs" | "maxRetainedRuns" | "retentionIntervalMs">,
  logger: Logger,
): Retention {
  const { runRetentionMs, maxRetainedRuns, retentionIntervalMs } = settings;
  let running: Promise<number> | undefined;
  const pass = async (): Promise<number> => {
    let total = 0;
    for (let batch = 0; batch < PASS_LIMIT; batch++) {
      const deleted = await store.admin.pruneRuns({
        completedBefore:
          runRetentionMs !== undefined ? new Date(Date.now() - runRetentionMs) : undefined,
        keepNewest: maxRetainedRuns,
        limit: BATCH,
      });
      total += deleted;
      if (deleted < BATCH) break;
    }
    if (total > 0) logger.info({ deleted: total }, `retention deleted ${total} finished runs`);
    return total;
  };
  const runOnce = () => {
    running ??= pass().finally(() => {
      running = undefined;
    });
    return running;
  };
  const enabled = runRetentionMs !== undefined || maxRetainedRuns !== undefined;
  const timer = enabled
    ? setInterval(
        () =>
          void runOnce().catch((error: unknown) =>
            logger.warn({ err: error }, "retention pass failed; trying again next interval"),
          ),
        retentionIntervalMs,
      )
    : undefined;
  timer?.unref();
  return {
    runOnce,
    stop: () => clearInterval(timer),
    idle: async () => {
      await running?.catch(() => {});
    },
  };
}
