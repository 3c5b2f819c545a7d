/**
 * Where a run stands in its graph: which nodes are settled, which edges are live, which nodes
 * are ready. Pure and synchronous, so scheduling and skip propagation are tested without
 * timers or I/O.
 *
 * An edge is live when its source completed (or failed with continueOnFail) and, out of a
 * CONDITION, its branch is the one the condition took. A node whose incoming edges are all
 * settled runs if one of them is live, and is SKIPPED otherwise, which kills its own edges.
 */

import type { NodeDefinition } from "../domain/definition.ts";
import type { JsonValue } from "../domain/json.ts";
import type { NodeRunRecord } from "../domain/records.ts";
import type { CompiledPipeline } from "./dag.ts";

export type Settlement =
  /** Ran and produced `output`; for a CONDITION, `branch` is the outcome. */
  | { readonly kind: "completed"; readonly output: JsonValue; readonly branch?: boolean }
  | { readonly kind: "skipped" };

export interface Progress {
  /** Nodes that became ready, in topological order. */
  readonly ready: string[];
  /** Nodes that became SKIPPED (transitively), in topological order. */
  readonly skipped: string[];
}

/**
 * What a stored node run settles when a run is resumed: `undefined` for a node to run again,
 * "failed" for a failure that should have ended the run.
 */
export function settlementOf(
  record: NodeRunRecord,
  node: NodeDefinition,
): Settlement | "failed" | undefined {
  const output = (record.output ?? null) as JsonValue;
  switch (record.status) {
    case "COMPLETED":
      return node.type === "CONDITION"
        ? {
            kind: "completed",
            output,
            branch: Boolean((output as { result?: unknown } | null)?.result),
          }
        : { kind: "completed", output };
    case "SKIPPED":
      return { kind: "skipped" };
    case "FAILED":
      if (node.type === "CONDITION") return { kind: "completed", output, branch: false };
      return node.continueOnFail ? { kind: "completed", output } : "failed";
    default:
      return undefined;
  }
}

export class RunState {
  readonly #pipeline: CompiledPipeline;
  readonly #outputs = new Map<string, JsonValue>();
  readonly #branches = new Map<string, boolean>();
  readonly #settled = new Set<string>();
  readonly #skipped = new Set<string>();
  /** Incoming edges not settled yet, per node. */
  readonly #waiting = new Map<string, number>();
  /** Live incoming edges, per node. */
  readonly #live = new Map<string, number>();
  readonly #position: Map<string, number>;

  constructor(pipeline: CompiledPipeline) {
    this.#pipeline = pipeline;
    this.#position = new Map(pipeline.order.map((id, i) => [id, i]));
    for (const id of pipeline.order) {
      this.#waiting.set(id, pipeline.incoming.get(id)?.length ?? 0);
      this.#live.set(id, 0);
    }
  }

  /** Nodes with no incoming edge (the triggers): ready at the start. */
  roots(): string[] {
    return this.#pipeline.order.filter(
      (id) => (this.#pipeline.incoming.get(id)?.length ?? 0) === 0 && !this.#settled.has(id),
    );
  }

  isSettled(nodeId: string): boolean {
    return this.#settled.has(nodeId);
  }

  /** All nodes settled: the run has nothing left to do. */
  isComplete(): boolean {
    return this.#settled.size === this.#pipeline.order.length;
  }

  get settledCount(): number {
    return this.#settled.size;
  }

  /** Outputs of the live predecessors of a node, by id. */
  inputsOf(nodeId: string): Record<string, JsonValue> {
    const inputs: Record<string, JsonValue> = {};
    for (const edge of this.#pipeline.incoming.get(nodeId) ?? []) {
      if (this.#isLive(edge.source, edge.branch))
        inputs[edge.source] = this.#outputs.get(edge.source)!;
    }
    return inputs;
  }

  #isLive(source: string, branch: "TRUE" | "FALSE" | null | undefined): boolean {
    if (!this.#settled.has(source) || this.#skipped.has(source)) return false;
    if (!this.#branches.has(source)) return true;
    return (branch ?? "TRUE") === (this.#branches.get(source) ? "TRUE" : "FALSE");
  }

  /**
   * Records a node's outcome and returns what it unblocked. Settling a node twice is a bug
   * in the caller and throws.
   */
  settle(nodeId: string, settlement: Settlement): Progress {
    const progress: Progress = { ready: [], skipped: [] };
    this.#settle(nodeId, settlement, progress);
    const byPosition = (a: string, b: string) => this.#position.get(a)! - this.#position.get(b)!;
    progress.ready.sort(byPosition);
    progress.skipped.sort(byPosition);
    return progress;
  }

  /**
   * Rebuilds the state of a run resumed after a crash from its stored outcomes. Returns the
   * nodes to run now and the skips the stored rows did not record yet.
   */
  restore(stored: ReadonlyMap<string, Settlement>): Progress {
    const ready = new Set<string>();
    const skipped: string[] = [];
    for (const id of this.#pipeline.order) {
      const settlement = stored.get(id);
      // A stored skip is re-derived when its predecessors settle; do not settle it twice.
      if (!settlement || this.#settled.has(id)) continue;
      const progress = this.settle(id, settlement);
      for (const next of progress.ready) ready.add(next);
      for (const next of progress.skipped) if (!stored.has(next)) skipped.push(next);
    }
    for (const root of this.roots()) ready.add(root);
    const byPosition = (a: string, b: string) => this.#position.get(a)! - this.#position.get(b)!;
    return {
      ready: [...ready].filter((id) => !this.#settled.has(id)).sort(byPosition),
      skipped: skipped.sort(byPosition),
    };
  }

  #settle(nodeId: string, settlement: Settlement, progress: Progress): void {
    // Iterative: skips can cascade down a 10,000-node chain.
    const stack: [string, Settlement][] = [[nodeId, settlement]];
    while (stack.length > 0) {
      const [id, outcome] = stack.pop()!;
      if (this.#settled.has(id)) throw new Error(`node "${id}" settled twice`);
      this.#settled.add(id);
      if (outcome.kind === "skipped") this.#skipped.add(id);
      else {
        this.#outputs.set(id, outcome.output);
        if (outcome.branch !== undefined) this.#branches.set(id, outcome.branch);
      }
      for (const edge of this.#pipeline.outgoing.get(id) ?? []) {
        const target = edge.target;
        if (this.#isLive(id, edge.branch)) this.#live.set(target, this.#live.get(target)! + 1);
        const waiting = this.#waiting.get(target)! - 1;
        this.#waiting.set(target, waiting);
        if (waiting > 0 || this.#settled.has(target)) continue;
        if (this.#live.get(target)! > 0) progress.ready.push(target);
        else {
          progress.skipped.push(target);
          stack.push([target, { kind: "skipped" }]);
        }
      }
    }
  }
}
