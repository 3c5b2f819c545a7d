/**
 * Observers of the engine: metrics, tracing and logs plug in here, so that the engine itself
 * only says what happens. An observer cannot change a run, and one that throws is logged and
 * otherwise ignored: a broken exporter must never stop a pipeline.
 */
import type { Logger } from "pino";
import type { RunEventRecord, RunRecord } from "../domain/records.ts";
import type { ExecutionOutcome } from "./run-execution.ts";

/** One commit of the run writer. */
export interface CommitInfo {
  readonly durationMs: number;
  readonly events: number;
  /** False when the commit failed (it is retried, or given up). */
  readonly ok: boolean;
}

export interface EngineHooks {
  /** A run begins executing here: started fresh, taken from the queue, or resumed. */
  readonly onRunExecuting?: (run: RunRecord, resumed: boolean) => void;
  /**
   * Each run event as it is emitted here, in `seq` order per run, before it is stored. Events
   * of a run refused at start (an invalid pipeline) come without an `onRunExecuting`.
   */
  readonly onEvent?: (event: RunEventRecord) => void;
  /** The run stopped executing here: its final status, or ABANDONED when handed over. */
  readonly onRunDone?: (runId: string, outcome: ExecutionOutcome) => void;
  readonly onCommit?: (info: CommitInfo) => void;
  /**
   * Headers to send with the outgoing calls of one node attempt (the `http` action, agents):
   * the W3C trace context, when tracing is on.
   */
  readonly outgoingHeaders?: (
    runId: string,
    nodeId: string,
    attempt: number,
  ) => Readonly<Record<string, string>> | undefined;
}

type Listener = Exclude<keyof EngineHooks, "outgoingHeaders">;
const LISTENERS: readonly Listener[] = ["onRunExecuting", "onEvent", "onRunDone", "onCommit"];

/**
 * One set of hooks that calls each of `all` in turn, each call guarded: an observer's error is
 * logged (once per hook and observer, so that a broken one cannot flood the log) and dropped.
 */
export function combineHooks(logger: Logger, all: readonly EngineHooks[]): EngineHooks {
  const reported = new Set<string>();
  const guard = <A extends unknown[], R>(
    name: string,
    index: number,
    call: (...args: A) => R,
  ): ((...args: A) => R | undefined) => {
    return (...args) => {
      try {
        return call(...args);
      } catch (error) {
        const key = `${index}:${name}`;
        if (!reported.has(key)) {
          reported.add(key);
          logger.error({ err: error, hook: name }, "an engine observer failed; ignoring it");
        }
        return undefined;
      }
    };
  };
  const combined: Record<string, unknown> = {};
  for (const name of LISTENERS) {
    const calls = all.flatMap((hooks, index) => {
      const hook = hooks[name] as ((...args: unknown[]) => void) | undefined;
      return hook ? [guard(name, index, hook)] : [];
    });
    if (calls.length > 0)
      combined[name] = (...args: unknown[]) => {
        for (const call of calls) call(...args);
      };
  }
  const headers = all.flatMap((hooks, index) =>
    hooks.outgoingHeaders ? [guard("outgoingHeaders", index, hooks.outgoingHeaders)] : [],
  );
  if (headers.length > 0)
    combined.outgoingHeaders = (runId: string, nodeId: string, attempt: number) => {
      let merged: Record<string, string> | undefined;
      for (const call of headers) {
        const found = call(runId, nodeId, attempt);
        if (found) merged = { ...merged, ...found };
      }
      return merged;
    };
  return combined as EngineHooks;
}
