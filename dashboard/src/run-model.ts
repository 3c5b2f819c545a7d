/**
 * A run as the page shows it, folded from its events: each node's status and attempts (with
 * the backoff waits between them), and the edges that are dead (an untaken branch, or out of
 * or into a skipped node). Events are applied in seq order, each once.
 */
import { type NodeRunStatus, TERMINAL_EVENT_TYPES } from "../../src/domain/status.ts";
import type { RunEvent } from "./live.ts";

/** The server's own vocabulary: the bundle carries it, so page and server cannot drift. */
export type NodeStatus = NodeRunStatus;
const TERMINAL_RUN_EVENTS: ReadonlySet<string> = TERMINAL_EVENT_TYPES;

/** One call of a node's handler, and the wait after it when it was retried. */
export interface AttemptSpan {
  readonly attempt: number;
  readonly start: number;
  end?: number;
  outcome: "running" | "retried" | "completed" | "failed" | "cancelled";
  /** The backoff wait after a retried attempt: it ends at `waitEnd`. */
  waitEnd?: number;
}

export interface NodeView {
  readonly id: string;
  readonly type: string;
  readonly name: string | null;
  status: NodeStatus;
  attempts: AttemptSpan[];
  error?: string;
  reusedFrom?: string;
  /** The CONDITION's outcome, when it completed. */
  branch?: boolean;
}

export interface EdgeView {
  readonly source: string;
  readonly target: string;
  readonly branch: string | null;
}

const DEFAULT_STATUS: Record<string, NodeStatus> = {
  NODE_STARTED: "RUNNING",
  NODE_RETRYING: "RETRYING",
  NODE_COMPLETED: "COMPLETED",
  NODE_FAILED: "FAILED",
  NODE_SKIPPED: "SKIPPED",
};

export class RunModel {
  readonly nodes = new Map<string, NodeView>();
  readonly events: RunEvent[] = [];
  readonly edges: readonly EdgeView[];
  runStatus: string;
  /** The first node whose NODE_FAILED arrived (the panel opens on it). */
  firstFailed: string | undefined;
  startedAt: number | undefined;
  endedAt: number | undefined;

  constructor(
    nodes: readonly { nodeId: string; type: string; name: string | null }[],
    edges: readonly EdgeView[],
    runStatus: string,
  ) {
    for (const node of nodes)
      this.nodes.set(node.nodeId, {
        id: node.nodeId,
        type: node.type,
        name: node.name,
        status: "PENDING",
        attempts: [],
      });
    this.edges = edges.filter((e) => this.nodes.has(e.source) && this.nodes.has(e.target));
    this.runStatus = runStatus;
  }

  get lastSeq(): number {
    return this.events.at(-1)?.seq ?? 0;
  }

  /** Applies one event; returns the id of the node it changed, if any. */
  apply(event: RunEvent): string | undefined {
    if (event.seq <= this.lastSeq) return undefined;
    this.events.push(event);
    const at = Date.parse(event.at);
    if (event.type === "RUN_STARTED") {
      this.startedAt = at;
      this.runStatus = "RUNNING";
      return undefined;
    }
    if (TERMINAL_RUN_EVENTS.has(event.type)) {
      this.endedAt = at;
      this.runStatus = event.type.slice("RUN_".length);
      // Whatever had not ended is cancelled with the run (the API says the same of it).
      for (const node of this.nodes.values()) {
        if (["PENDING", "RUNNING", "RETRYING"].includes(node.status)) node.status = "CANCELLED";
        const last = node.attempts.at(-1);
        if (last && last.end === undefined) {
          last.end = at;
          last.outcome = "cancelled";
        }
        if (last?.waitEnd !== undefined && last.waitEnd > at) last.waitEnd = at;
      }
      return undefined;
    }
    const node = event.nodeId ? this.nodes.get(event.nodeId) : undefined;
    if (!node) return undefined;
    const status = DEFAULT_STATUS[event.type];
    if (status) node.status = status;
    const last = node.attempts.at(-1);
    const data = event.data ?? {};
    switch (event.type) {
      case "NODE_STARTED":
        if (last?.waitEnd !== undefined) last.waitEnd = Math.min(last.waitEnd, at);
        node.attempts.push({
          attempt: event.attempt ?? node.attempts.length + 1,
          start: at,
          outcome: "running",
        });
        node.error = undefined;
        break;
      case "NODE_RETRYING":
        if (last) {
          last.end = at;
          last.outcome = "retried";
          last.waitEnd = at + Number(data.delayMs ?? 0);
        }
        node.error = String(data.error ?? "");
        break;
      case "NODE_COMPLETED":
        if (last && last.end === undefined) {
          last.end = at;
          last.outcome = "completed";
        }
        if (typeof data.reusedFrom === "string") node.reusedFrom = data.reusedFrom;
        if (node.type === "CONDITION" && "output" in data)
          node.branch = Boolean((data.output as { result?: unknown } | null)?.result);
        break;
      case "NODE_FAILED":
        if (last && last.end === undefined) {
          last.end = at;
          last.outcome = "failed";
        }
        node.error = String(data.error ?? "");
        if (node.type === "CONDITION") node.branch = false;
        this.firstFailed ??= node.id;
        break;
    }
    return node.id;
  }

  /** Sets the statuses the API reports (after the run ended, the store has the last word). */
  settle(nodeRuns: readonly { nodeId: string; status: string; error: string | null }[]): void {
    for (const run of nodeRuns) {
      const node = this.nodes.get(run.nodeId);
      if (!node) continue;
      node.status = run.status as NodeStatus;
      if (run.error) node.error = run.error;
    }
  }

  /** An edge is dead when it leaves or enters a skipped node or is a branch not taken. */
  isDead(edge: EdgeView): boolean {
    const source = this.nodes.get(edge.source)!;
    const target = this.nodes.get(edge.target)!;
    if (source.status === "SKIPPED" || target.status === "SKIPPED") return true;
    if (source.type !== "CONDITION" || source.branch === undefined) return false;
    return (edge.branch ?? "TRUE") !== (source.branch ? "TRUE" : "FALSE");
  }
}
