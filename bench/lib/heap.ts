/**
 * Heap snapshots (v8.writeHeapSnapshot) aggregated by what holds the memory: self size per
 * constructor (objects, closures, arrays, strings…), and the difference between two snapshots.
 */
import { readFileSync } from "node:fs";

interface RawSnapshot {
  readonly snapshot: {
    readonly meta: {
      readonly node_fields: readonly string[];
      readonly node_types: readonly [readonly string[], ...unknown[]];
    };
  };
  readonly nodes: readonly number[];
  readonly strings: readonly string[];
}

/** Self bytes by `type:name` (e.g. `object:RunExecution`, `closure:onAbort`, `string`). */
export function heapByConstructor(file: string): Map<string, { bytes: number; count: number }> {
  const raw = JSON.parse(readFileSync(file, "utf8")) as RawSnapshot;
  const fields = raw.snapshot.meta.node_fields;
  const types = raw.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const totals = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < raw.nodes.length; i += width) {
    const type = types[raw.nodes[i + typeAt]!]!;
    const name = raw.strings[raw.nodes[i + nameAt]!]!;
    // Strings and numbers are grouped by type; their "name" is their value.
    const key = ["string", "concatenated string", "sliced string", "number"].includes(type)
      ? type
      : `${type}:${name.length > 60 ? `${name.slice(0, 57)}…` : name}`;
    const entry = totals.get(key) ?? { bytes: 0, count: 0 };
    entry.bytes += raw.nodes[i + sizeAt]!;
    entry.count++;
    totals.set(key, entry);
  }
  return totals;
}

/** What grew between two snapshots, largest first. */
export function heapGrowth(
  before: Map<string, { bytes: number; count: number }>,
  after: Map<string, { bytes: number; count: number }>,
): { key: string; bytes: number; count: number }[] {
  return [...after]
    .map(([key, { bytes, count }]) => ({
      key,
      bytes: bytes - (before.get(key)?.bytes ?? 0),
      count: count - (before.get(key)?.count ?? 0),
    }))
    .filter((entry) => entry.bytes > 0)
    .sort((a, b) => b.bytes - a.bytes);
}
