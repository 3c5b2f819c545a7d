/**
 * Seeded random DAGs of PARALLEL nodes under one TRIGGER, and the same graph as the bare
 * dependency lists the baselines (p-queue, p-graph) execute.
 *
 * - wide: a few levels, many nodes per level; each node joins 1–3 random nodes of the level
 *   above.
 * - deep: long parallel chains; each node follows its chain and, now and then, also a node of
 *   another chain one step up (a cross edge). The cross-edge rate keeps about three joins per
 *   chain: a PARALLEL join passes the map of its inputs on, so an output nests one copy of
 *   every path that reaches it, and path counts grow as (1 + rate)^depth.
 */
import type { PipelineInput } from "../../src/domain/definition.ts";
import { createRandom, randomInt } from "./random.ts";

export type DagShape = "wide" | "deep";
/** Every shape a BenchDag can have; only wide and deep come from generateDag. */
export type AnyShape = DagShape | "star" | "joins";

export interface BenchDag {
  readonly name: string;
  readonly shape: AnyShape;
  /** Node ids, the trigger first, in a topological order. */
  readonly nodes: readonly string[];
  /** [source, target] pairs. */
  readonly edges: readonly (readonly [string, string])[];
  readonly input: PipelineInput;
}

/** Levels under the trigger in the wide shape. */
const WIDE_LEVELS = 5;
/** Expected cross edges into a chain over its whole length, in the deep shape. */
const DEEP_JOINS_PER_CHAIN = 3;

/** Builds the DAG; the same arguments always give the same graph. */
export function generateDag(shape: DagShape, size: number, seed = 20_240_601): BenchDag {
  if (!Number.isInteger(size) || size < 10)
    throw new TypeError(`Expected \`size\` >= 10, got \`${size}\` (${typeof size})`);
  const random = createRandom(seed + size + (shape === "wide" ? 0 : 1));
  const nodes = ["trigger"];
  const edges: [string, string][] = [];
  const rest = size - 1;
  if (shape === "wide") {
    let above = ["trigger"];
    for (let level = 0; level < WIDE_LEVELS; level++) {
      const count = Math.floor(rest / WIDE_LEVELS) + (level < rest % WIDE_LEVELS ? 1 : 0);
      const current: string[] = [];
      for (let i = 0; i < count; i++) {
        const id = `w${level}_${i}`;
        current.push(id);
        const parents = new Set<string>();
        const want = Math.min(above.length, randomInt(random, 1, 3));
        while (parents.size < want) parents.add(above[randomInt(random, 0, above.length - 1)]!);
        for (const parent of parents) edges.push([parent, id]);
      }
      nodes.push(...current);
      above = current;
    }
  } else {
    const chains = size >= 5000 ? 20 : 10;
    const length = Math.ceil(rest / chains);
    const crossRate = DEEP_JOINS_PER_CHAIN / length;
    const byDepth: string[][] = [];
    let made = 0;
    for (let depth = 0; depth < length && made < rest; depth++) {
      const row: string[] = [];
      for (let chain = 0; chain < chains && made < rest; chain++, made++) {
        const id = `c${chain}_${depth}`;
        row.push(id);
        if (depth === 0) {
          edges.push(["trigger", id]);
          continue;
        }
        const above = byDepth[depth - 1]!;
        const own = above[Math.min(chain, above.length - 1)]!;
        edges.push([own, id]);
        if (random() < crossRate && above.length > 1) {
          let other = own;
          while (other === own) other = above[randomInt(random, 0, above.length - 1)]!;
          edges.push([other, id]);
        }
      }
      byDepth.push(row);
      nodes.push(...row);
    }
  }
  const name = `bench-${shape}-${size}`;
  return {
    name,
    shape,
    nodes,
    edges,
    input: {
      name,
      nodes: nodes.map((id) =>
        id === "trigger" ? { id, type: "TRIGGER" } : { id, type: "PARALLEL" },
      ),
      edges: edges.map(([source, target]) => ({ source, target })),
    },
  };
}

/**
 * Bytes of JSON the PARALLEL outputs of one run add up to (each node's output is its sole
 * input, or the map of its inputs at a join), to show how much data the engine serialises.
 */
export function outputBytes(dag: BenchDag): number {
  const incoming = new Map<string, string[]>();
  for (const [source, target] of dag.edges) {
    const list = incoming.get(target) ?? [];
    list.push(source);
    incoming.set(target, list);
  }
  const size = new Map<string, number>([["trigger", 2]]);
  let total = 2;
  for (const id of dag.nodes) {
    if (id === "trigger") continue;
    const parents = incoming.get(id) ?? [];
    const bytes =
      parents.length === 1
        ? size.get(parents[0]!)!
        : 2 + parents.reduce((sum, p) => sum + p.length + 4 + size.get(p)!, 0);
    size.set(id, bytes);
    total += bytes;
  }
  return total;
}

/**
 * The same graph with every node but the trigger of another type, e.g. ACTION nodes that call
 * a registered no-op action, to compare a user's steps with the inline PARALLEL nodes.
 */
export function withNodeType(
  dag: BenchDag,
  type: "ACTION" | "PARALLEL",
  config: Record<string, string> = {},
): BenchDag {
  const name = `${dag.name}-${type.toLowerCase()}`;
  return {
    ...dag,
    name,
    input: {
      ...dag.input,
      name,
      nodes: dag.nodes.map((id) =>
        id === "trigger" ? { id, type: "TRIGGER" } : { id, type, config },
      ),
    },
  };
}

/** A star: the trigger, then `size - 1` nodes that each follow only the trigger. */
export function starDag(size: number): BenchDag {
  if (!Number.isInteger(size) || size < 2)
    throw new TypeError(`Expected \`size\` >= 2, got \`${size}\` (${typeof size})`);
  const nodes = ["trigger", ...Array.from({ length: size - 1 }, (_, i) => `s${i}`)];
  const edges = nodes.slice(1).map((id) => ["trigger", id] as const);
  return dagOf(`bench-star-${size}`, "star", nodes, edges);
}

/**
 * The "joins" shape of issue 9: a trigger, then `layers` layers of `width` PARALLEL nodes,
 * each joining `fanIn` distinct random nodes of the layer before (the first layer follows the
 * trigger). Every join passes the map of its inputs on, so the number of paths into the last
 * layer grows as fanIn^layers: what structural sharing of outputs must keep linear.
 */
export function joinsDag(layers: number, width: number, fanIn = 2, seed = 20_240_609): BenchDag {
  if (!Number.isInteger(layers) || layers < 1)
    throw new TypeError(`Expected \`layers\` >= 1, got \`${layers}\` (${typeof layers})`);
  if (!Number.isInteger(width) || width < fanIn)
    throw new TypeError(`Expected \`width\` >= ${fanIn}, got \`${width}\` (${typeof width})`);
  const random = createRandom(seed + layers * 100_003 + width);
  const nodes = ["trigger"];
  const edges: [string, string][] = [];
  let above = ["trigger"];
  for (let layer = 0; layer < layers; layer++) {
    const current: string[] = [];
    for (let i = 0; i < width; i++) {
      const id = `j${layer}_${i}`;
      current.push(id);
      const parents = new Set<string>();
      const want = Math.min(above.length, fanIn);
      while (parents.size < want) parents.add(above[randomInt(random, 0, above.length - 1)]!);
      for (const parent of parents) edges.push([parent, id]);
    }
    nodes.push(...current);
    above = current;
  }
  return dagOf(`bench-joins-${layers}x${width}`, "joins", nodes, edges);
}

function dagOf(
  name: string,
  shape: BenchDag["shape"],
  nodes: string[],
  edges: (readonly [string, string])[],
): BenchDag {
  return {
    name,
    shape,
    nodes,
    edges,
    input: {
      name,
      nodes: nodes.map((id) =>
        id === "trigger" ? { id, type: "TRIGGER" } : { id, type: "PARALLEL" },
      ),
      edges: edges.map(([source, target]) => ({ source, target })),
    },
  };
}
