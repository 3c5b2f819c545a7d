/**
 * Graph walks over pipeline edges: topological order, cycle finding, reachability and
 * ancestors. All iterative, so that a 10,000-node chain cannot overflow the stack.
 */
import type { EdgeDefinition } from "../domain/definition.ts";

/**
 * Kahn's algorithm over the given adjacency, breadth first: the nodes without predecessors in
 * `ids` order, then, as each node is placed, the nodes it frees, in `ids` order (ties keep
 * definition order). Returns the order and the nodes left over, which are exactly those on or
 * behind a cycle.
 */
export function topologicalOrder(
  ids: readonly string[],
  outgoing: ReadonlyMap<string, readonly EdgeDefinition[]>,
): { order: string[]; remaining: string[] } {
  const position = new Map(ids.map((id, i) => [id, i]));
  const indegree = new Map<string, number>(ids.map((id) => [id, 0]));
  for (const id of ids) {
    for (const edge of outgoing.get(id) ?? []) {
      indegree.set(edge.target, (indegree.get(edge.target) ?? 0) + 1);
    }
  }
  const queue = ids.filter((id) => indegree.get(id) === 0);
  const order: string[] = [];
  for (let head = 0; head < queue.length; head++) {
    const id = queue[head]!;
    order.push(id);
    const freed: string[] = [];
    for (const edge of outgoing.get(id) ?? []) {
      const left = indegree.get(edge.target)! - 1;
      indegree.set(edge.target, left);
      if (left === 0) freed.push(edge.target);
    }
    if (freed.length > 1) freed.sort((a, b) => position.get(a)! - position.get(b)!);
    queue.push(...freed);
  }
  const placed = new Set(order);
  return { order, remaining: ids.filter((id) => !placed.has(id)) };
}

/**
 * Finds the cycles among `candidates` (the nodes Kahn's algorithm could not place): one per
 * strongly connected component (Tarjan), listed in edge order and closed on its first node.
 * Iterative, so a 10,000-node chain cannot overflow the stack.
 */
export function findCycles(
  candidates: readonly string[],
  outgoing: ReadonlyMap<string, readonly EdgeDefinition[]>,
): string[][] {
  const inSet = new Set(candidates);
  const successors = (id: string) =>
    (outgoing.get(id) ?? []).map((edge) => edge.target).filter((target) => inSet.has(target));
  const index = new Map<string, number>();
  const lowlink = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;
  for (const root of candidates) {
    if (index.has(root)) continue;
    const work: { id: string; next: string[]; at: number }[] = [];
    const open = (id: string) => {
      index.set(id, counter);
      lowlink.set(id, counter);
      counter++;
      stack.push(id);
      onStack.add(id);
      work.push({ id, next: successors(id), at: 0 });
    };
    open(root);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      if (frame.at < frame.next.length) {
        const target = frame.next[frame.at++]!;
        if (!index.has(target)) open(target);
        else if (onStack.has(target)) {
          lowlink.set(frame.id, Math.min(lowlink.get(frame.id)!, index.get(target)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) lowlink.set(parent.id, Math.min(lowlink.get(parent.id)!, lowlink.get(frame.id)!));
      if (lowlink.get(frame.id) === index.get(frame.id)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.id);
        if (component.length > 1) components.push(component);
      }
    }
  }
  // In a strongly connected component every node has a successor inside it, so walking
  // forward from its earliest node must come back to a node already on the walk.
  const order = new Map(candidates.map((id, i) => [id, i]));
  return components
    .map((component) => {
      const members = new Set(component);
      const start = component.reduce((a, b) => (order.get(a)! <= order.get(b)! ? a : b));
      const walk: string[] = [];
      const seen = new Map<string, number>();
      let current = start;
      while (!seen.has(current)) {
        seen.set(current, walk.length);
        walk.push(current);
        current = successors(current).find((target) => members.has(target))!;
      }
      const cycle = walk.slice(seen.get(current));
      return [...cycle, cycle[0]!];
    })
    .sort((a, b) => order.get(a[0]!)! - order.get(b[0]!)!);
}

/** Nodes reachable from `roots` (the roots included), following `outgoing`. */
export function reachableFrom(
  roots: readonly string[],
  outgoing: ReadonlyMap<string, readonly EdgeDefinition[]>,
): Set<string> {
  const reached = new Set<string>();
  const stack = [...roots];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (reached.has(id)) continue;
    reached.add(id);
    for (const edge of outgoing.get(id) ?? []) stack.push(edge.target);
  }
  return reached;
}

/** Nodes upstream of `nodeId` (it excluded), following `incoming` backwards. */
export function ancestorsOf(
  nodeId: string,
  incoming: ReadonlyMap<string, readonly EdgeDefinition[]>,
): Set<string> {
  const found = new Set<string>();
  const stack = [nodeId];
  while (stack.length > 0) {
    for (const edge of incoming.get(stack.pop()!) ?? []) {
      if (!found.has(edge.source)) {
        found.add(edge.source);
        stack.push(edge.source);
      }
    }
  }
  return found;
}

const ancestorSets = new WeakMap<
  ReadonlyMap<string, readonly EdgeDefinition[]>,
  Map<string, ReadonlySet<string>>
>();

/** ancestorsOf, computed once per node of a compiled graph (shared by all its runs). */
export function cachedAncestorsOf(
  nodeId: string,
  incoming: ReadonlyMap<string, readonly EdgeDefinition[]>,
): ReadonlySet<string> {
  let cache = ancestorSets.get(incoming);
  if (!cache) {
    cache = new Map();
    ancestorSets.set(incoming, cache);
  }
  let found = cache.get(nodeId);
  if (!found) {
    found = ancestorsOf(nodeId, incoming);
    cache.set(nodeId, found);
  }
  return found;
}
