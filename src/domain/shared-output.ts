/**
 * Node outputs stored once. A join passes its inputs on (`{a: outputOfA, b: outputOfB}`), so
 * an output may hold other nodes' outputs, and down a chain of joins one copy per path: a
 * 20-layer graph of 2-way joins nests about a million copies of the trigger data. The engine
 * keeps such an output as references to the outputs it holds, the store writes it that way,
 * and readers get the value back with the same sharing — never the copies.
 *
 * Stored form: the output's JSON with `null` where another node's output sits, and the list
 * of those places (`refs`: path → node id). Everything here is linear in the distinct data:
 * encoding stops at a referenced output, decoding assigns references, and sizes are summed
 * from the sizes of what is referenced.
 */
import { type JsonValue, scalarBytes } from "./json.ts";

/** Where an output holds another node's output: the path of keys and indexes, and the node. */
export interface OutputRef {
  readonly path: readonly (string | number)[];
  readonly nodeId: string;
}

/** An output as it is written. */
export interface StoredOutput {
  /** JSON of the output, `null` at each ref's path. */
  readonly json: string;
  readonly refs: readonly OutputRef[];
  /** Bytes of the output's JSON with every reference expanded (what the seed's copy would be). */
  readonly expandedBytes: number;
}

/** What `encodeOutput` needs to know of the outputs recorded before. */
export interface KnownOutputs {
  /**
   * The node whose output is this very object (or long string), if any. `key` is the value's
   * key in an output's top level (absent: the output itself).
   */
  nodeOf(value: unknown, key?: string | number): string | undefined;
  /** Expanded bytes of that node's output. */
  bytesOf(nodeId: string): number;
}

export interface EncodeBounds {
  /** Deepest nesting of the stored form. */
  readonly maxDepth: number;
  /** Values walked (the stored form's own values, not what its references hold). */
  readonly maxValues: number;
}

export type EncodeOutcome =
  | { readonly ok: true; readonly stored: StoredOutput }
  | { readonly ok: false; readonly problem: string };

const NULL_BYTES = 4;

/**
 * The stored form of an output: a shallow rebuild of its own (new) data, with `null` where it
 * holds a known output. Iterative, so that depth cannot overflow the stack.
 */
export function encodeOutput(
  output: JsonValue,
  known: KnownOutputs,
  bounds: EncodeBounds,
): EncodeOutcome {
  const refs: OutputRef[] = [];
  let referencedBytes = 0;
  const rootRef = known.nodeOf(output);
  if (rootRef !== undefined) {
    refs.push({ path: [], nodeId: rootRef });
    return {
      ok: true,
      stored: { json: "null", refs, expandedBytes: known.bytesOf(rootRef) },
    };
  }
  if (typeof output !== "object" || output === null) {
    const json = JSON.stringify(output) ?? "null";
    return { ok: true, stored: { json, refs, expandedBytes: scalarBytes(output) } };
  }
  const root: Record<string, unknown> | unknown[] = Array.isArray(output) ? [] : {};
  type Frame = {
    source: Record<string, JsonValue> | JsonValue[];
    copy: Record<string, unknown> | unknown[];
    path: (string | number)[];
  };
  const stack: Frame[] = [{ source: output, copy: root, path: [] }];
  let values = 1;
  while (stack.length > 0) {
    const { source, copy, path } = stack.pop()!;
    if (path.length >= bounds.maxDepth)
      return { ok: false, problem: `is nested deeper than ${bounds.maxDepth} levels` };
    const entries: [string | number, JsonValue][] = Array.isArray(source)
      ? source.map((item, i) => [i, item])
      : Object.entries(source);
    for (const [key, child] of entries) {
      if (++values > bounds.maxValues)
        return { ok: false, problem: `has more than ${bounds.maxValues} values` };
      const ref = known.nodeOf(child, path.length === 0 ? key : -1);
      let value: unknown = child;
      if (ref !== undefined) {
        refs.push({ path: [...path, key], nodeId: ref });
        referencedBytes += known.bytesOf(ref) - NULL_BYTES;
        value = null;
      } else if (typeof child === "object" && child !== null) {
        value = Array.isArray(child) ? [] : {};
        stack.push({
          source: child,
          copy: value as Frame["copy"],
          path: [...path, key],
        });
      }
      if (Array.isArray(copy)) copy[key as number] = value;
      else copy[key as string] = value;
    }
  }
  const json = JSON.stringify(root);
  return {
    ok: true,
    stored: { json, refs, expandedBytes: Buffer.byteLength(json) + referencedBytes },
  };
}

/** A stored output as it was read: its JSON text and its refs. */
export interface StoredRow {
  readonly json: string | null;
  readonly refs: readonly OutputRef[];
}

/**
 * Decodes the outputs of one run's node runs, each on first use, sharing every referenced
 * output among the values that hold it (as the engine held them).
 */
export class OutputDecoder {
  readonly #rows: ReadonlyMap<string, StoredRow>;
  readonly #values = new Map<string, JsonValue | undefined>();
  readonly #bytes = new Map<string, number | null>();
  readonly #decoding = new Set<string>();

  constructor(rows: ReadonlyMap<string, StoredRow>) {
    this.#rows = rows;
  }

  /** The output of a node, `undefined` when it has none. */
  value(nodeId: string): JsonValue | undefined {
    if (this.#values.has(nodeId)) return this.#values.get(nodeId);
    const row = this.#rows.get(nodeId);
    if (!row || row.json === null) return undefined;
    // A reference loop cannot be written by the engine (refs point upstream); read it as null.
    if (this.#decoding.has(nodeId)) return null;
    this.#decoding.add(nodeId);
    let value = JSON.parse(row.json) as JsonValue;
    for (const ref of row.refs) {
      const target = this.value(ref.nodeId) ?? null;
      if (ref.path.length === 0) value = target;
      else setAt(value, ref.path, target);
    }
    this.#decoding.delete(nodeId);
    this.#values.set(nodeId, value);
    return value;
  }

  /** Bytes of the node's output JSON with references expanded; null when it has none. */
  bytes(nodeId: string): number | null {
    if (this.#bytes.has(nodeId)) return this.#bytes.get(nodeId)!;
    const row = this.#rows.get(nodeId);
    if (!row || row.json === null) return null;
    this.#bytes.set(nodeId, 0);
    let total = Buffer.byteLength(row.json);
    for (const ref of row.refs) total += (this.bytes(ref.nodeId) ?? NULL_BYTES) - NULL_BYTES;
    this.#bytes.set(nodeId, total);
    return total;
  }
}

function setAt(root: JsonValue, path: readonly (string | number)[], value: JsonValue): void {
  let holder = root as Record<string | number, JsonValue>;
  for (const key of path.slice(0, -1)) {
    const next = holder?.[key];
    if (typeof next !== "object" || next === null) return;
    holder = next as Record<string | number, JsonValue>;
  }
  if (typeof holder === "object" && holder !== null) holder[path.at(-1)!] = value;
}

/** Parses a stored refs column (null: none). */
export function parseRefs(text: unknown): readonly OutputRef[] {
  if (text === null || text === undefined) return [];
  return JSON.parse(String(text)) as OutputRef[];
}
