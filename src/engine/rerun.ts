/**
 * Re-running a finished run. The new run executes the same pipeline version with the same
 * trigger data. From failure, the nodes that COMPLETED in the source are not executed again:
 * their stored outputs are reused — but only where every node upstream is reused too, so that
 * no reused output was made from inputs the new run will produce differently (a completed node
 * after a `continueOnFail` failure, or after a condition that errored, runs again). The rest —
 * failed, cancelled, skipped because of them, never started — runs as in any run.
 */
import type { NodeRunRecord, RunRecord } from "../domain/records.ts";
import type { StoredOutput } from "../domain/shared-output.ts";
import type { NodeRunWrite } from "../store/types.ts";
import type { CompiledPipeline } from "./dag.ts";
import { type OutputLimits, RunOutputs } from "./run-outputs.ts";
import { rerunStartEvents } from "./run-recorder.ts";

/** A node a re-run takes from its source, with its output stored again for the new run. */
export interface ReusedNode {
  readonly nodeId: string;
  readonly record: NodeRunRecord;
  readonly stored: StoredOutput;
  /** Whether the NODE_COMPLETED event carries the output (it is small enough). */
  readonly inEvent: boolean;
}

/**
 * The nodes to reuse, in topological order. Each output is encoded again against the ones
 * before it (so references stay references) and counted against the run's limits; a node
 * whose output cannot be kept, or that holds a reference the new run will not have, runs.
 */
export function planReuse(
  pipeline: CompiledPipeline,
  source: readonly NodeRunRecord[],
  outputs: RunOutputs,
): ReusedNode[] {
  const byNode = new Map(source.map((record) => [record.nodeId, record]));
  const reused = new Map<string, ReusedNode>();
  for (const nodeId of pipeline.order) {
    const record = byNode.get(nodeId);
    if (record?.status !== "COMPLETED" || record.output === undefined) continue;
    const inputs = (pipeline.incoming.get(nodeId) ?? []).map((edge) => edge.source);
    if (!inputs.every((id) => reused.has(id))) continue;
    const kept = outputs.keep(nodeId, record.output, inputs);
    if (kept instanceof Error) continue;
    if (!kept.stored.refs.every((ref) => reused.has(ref.nodeId))) continue;
    reused.set(nodeId, { nodeId, record, ...kept });
  }
  return [...reused.values()];
}

/** The node runs a re-run starts with: one COMPLETED row per reused node. */
export function reusedNodeRuns(
  reused: readonly ReusedNode[],
  source: RunRecord,
  at: Date,
): Omit<NodeRunWrite, "runId">[] {
  return reused.map(({ nodeId, stored }) => ({
    nodeId,
    status: "COMPLETED",
    // No call was made in this run.
    attempts: 0,
    output: stored,
    error: null,
    startedAt: at,
    completedAt: at,
    reusedFrom: source.id,
  }));
}

/** The events and node runs a re-run is created with. */
export function rerunStart(
  source: RunRecord,
  pipeline: CompiledPipeline,
  stored: readonly NodeRunRecord[],
  fromFailure: boolean,
  limits?: OutputLimits,
): { events: ReturnType<typeof rerunStartEvents>; nodeRuns: Omit<NodeRunWrite, "runId">[] } {
  const reused = fromFailure ? planReuse(pipeline, stored, new RunOutputs(limits)) : [];
  const now = new Date();
  return {
    events: rerunStartEvents(source, { id: source.id, fromFailure }, reused, now),
    nodeRuns: reusedNodeRuns(reused, source, now),
  };
}
