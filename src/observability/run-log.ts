/**
 * One log line when a run starts and one when it ends, each with the run's id (and the id of
 * the HTTP request that started it, through the logger's mixin, when one did).
 */
import type { Logger } from "pino";
import type { RunEventData } from "../domain/events.ts";
import type { RunEventRecord } from "../domain/records.ts";
import { TERMINAL_EVENT_TYPES } from "../domain/status.ts";
import type { EngineHooks } from "../engine/hooks.ts";

/** The observer that writes the lines. */
export function createRunLogHooks(logger: Logger): EngineHooks {
  return {
    onEvent(event: RunEventRecord) {
      if (event.type === "RUN_STARTED") {
        const data = event.data as RunEventData["RUN_STARTED"];
        logger.info(
          {
            runId: event.runId,
            pipelineId: data.pipelineId,
            pipelineVersion: data.pipelineVersion,
            nodes: data.nodeCount,
          },
          "run started",
        );
        return;
      }
      if (!TERMINAL_EVENT_TYPES.has(event.type)) return;
      const status = event.type.slice("RUN_".length);
      const data = (event.data ?? {}) as Record<string, unknown>;
      const fields = { runId: event.runId, status, ...data };
      if (status === "COMPLETED" || status === "CANCELLED")
        logger.info(fields, `run ${status.toLowerCase()}`);
      else logger.warn(fields, `run ${status === "FAILED" ? "failed" : "timed out"}`);
    },
  };
}
