/**
 * Places a pipeline's nodes left to right. Up to DAGRE_LIMIT nodes dagre lays them out (edge
 * crossings reduced, routed edges); above it, dagre's ordering takes seconds and recurses as
 * deep as the longest chain (a 2,000-node chain overflows the stack), so a layered layout in
 * linear time is used: rank = longest path from a root, order within a rank by the mean order
 * of the predecessors (one sweep), straight edges.
 */
import { layout as dagreLayout, graphlib } from "@dagrejs/dagre";

export const NODE_WIDTH = 150;
export const NODE_HEIGHT = 40;
const DAGRE_LIMIT = 300;
const RANK_GAP = 60;
const ROW_GAP = 16;

export interface Point {
  readonly x: number;
  readonly y: number;
}

export interface LayoutEdge {
  readonly source: string;
  readonly target: string;
  readonly branch: string | null;
}

export interface Layout {
  /** Centre of each node. */
  readonly nodes: Map<string, Point>;
  readonly edges: readonly { readonly edge: LayoutEdge; readonly points: readonly Point[] }[];
  readonly width: number;
  readonly height: number;
  readonly engine: "dagre" | "layered";
}

/** Lays out the nodes; edges naming unknown nodes are left out. */
export function layoutGraph(ids: readonly string[], allEdges: readonly LayoutEdge[]): Layout {
  const known = new Set(ids);
  const edges = allEdges.filter(
    (e) => known.has(e.source) && known.has(e.target) && e.source !== e.target,
  );
  return ids.length <= DAGRE_LIMIT ? withDagre(ids, edges) : layered(ids, edges);
}

function withDagre(ids: readonly string[], edges: readonly LayoutEdge[]): Layout {
  const graph = new graphlib.Graph({ multigraph: true });
  graph.setGraph({ rankdir: "LR", nodesep: ROW_GAP, ranksep: RANK_GAP, marginx: 12, marginy: 12 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const id of ids) graph.setNode(id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  edges.forEach((edge, i) => {
    graph.setEdge(edge.source, edge.target, {}, String(i));
  });
  dagreLayout(graph);
  const nodes = new Map<string, Point>();
  for (const id of ids) {
    const placed = graph.node(id) as { x: number; y: number };
    nodes.set(id, { x: placed.x, y: placed.y });
  }
  const routed = edges.map((edge, i) => {
    const label = graph.edge(edge.source, edge.target, String(i)) as { points?: Point[] };
    return { edge, points: label.points ?? [nodes.get(edge.source)!, nodes.get(edge.target)!] };
  });
  const size = graph.graph() as { width?: number; height?: number };
  return {
    nodes,
    edges: routed,
    width: size.width ?? 0,
    height: size.height ?? 0,
    engine: "dagre",
  };
}

function layered(ids: readonly string[], edges: readonly LayoutEdge[]): Layout {
  const incoming = new Map<string, string[]>(ids.map((id) => [id, []]));
  const outgoing = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const edge of edges) {
    incoming.get(edge.target)!.push(edge.source);
    outgoing.get(edge.source)!.push(edge.target);
  }
  // Kahn's order; nodes on a cycle (an invalid pipeline) come last, on the rank after.
  const waiting = new Map(ids.map((id) => [id, incoming.get(id)!.length]));
  const order: string[] = ids.filter((id) => waiting.get(id) === 0);
  for (let i = 0; i < order.length; i++)
    for (const next of outgoing.get(order[i]!)!) {
      const left = waiting.get(next)! - 1;
      waiting.set(next, left);
      if (left === 0) order.push(next);
    }
  const rank = new Map<string, number>();
  for (const id of order)
    rank.set(id, Math.max(-1, ...incoming.get(id)!.map((p) => rank.get(p) ?? -1)) + 1);
  const maxRank = Math.max(0, ...rank.values());
  for (const id of ids) if (!rank.has(id)) rank.set(id, maxRank + 1);
  const ranks: string[][] = [];
  const ordered = new Set(order);
  for (const id of [...order, ...ids.filter((id) => !ordered.has(id))]) {
    const r = rank.get(id)!;
    const row = ranks[r] ?? [];
    ranks[r] = row;
    row.push(id);
  }
  const position = new Map<string, number>();
  for (const row of ranks) {
    if (!row) continue;
    const mean = (id: string) => {
      const placed = incoming.get(id)!.filter((p) => position.has(p));
      return placed.length === 0
        ? Number.POSITIVE_INFINITY
        : placed.reduce((sum, p) => sum + position.get(p)!, 0) / placed.length;
    };
    const keyed = row.map((id, i) => ({ id, key: mean(id), i }));
    keyed.sort((a, b) => a.key - b.key || a.i - b.i);
    keyed.forEach(({ id }, i) => {
      position.set(id, i);
    });
  }
  const nodes = new Map<string, Point>();
  for (const id of ids)
    nodes.set(id, {
      x: 12 + NODE_WIDTH / 2 + rank.get(id)! * (NODE_WIDTH + RANK_GAP),
      y: 12 + NODE_HEIGHT / 2 + position.get(id)! * (NODE_HEIGHT + ROW_GAP),
    });
  const routed = edges.map((edge) => {
    const from = nodes.get(edge.source)!;
    const to = nodes.get(edge.target)!;
    return {
      edge,
      points: [
        { x: from.x + NODE_WIDTH / 2, y: from.y },
        { x: to.x - NODE_WIDTH / 2, y: to.y },
      ],
    };
  });
  const rows = Math.max(1, ...ranks.map((r) => r?.length ?? 0));
  return {
    nodes,
    edges: routed,
    width: 24 + (ranks.length || 1) * (NODE_WIDTH + RANK_GAP) - RANK_GAP,
    height: 24 + rows * (NODE_HEIGHT + ROW_GAP) - ROW_GAP,
    engine: "layered",
  };
}
