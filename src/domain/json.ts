/**
 * JSON values and the one walk that bounds them: client input (node configs, trigger data)
 * and node outputs are both checked here before anything else touches them.
 */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface JsonBounds {
  /** Deepest nesting; a scalar is depth 1. */
  readonly maxDepth: number;
  /** Values in all (scalars, arrays and objects), counted along every path. */
  readonly maxValues: number;
  /** Bytes of the value as UTF-8 JSON. */
  readonly maxBytes: number;
}

export interface JsonProblem {
  readonly kind: "depth" | "values" | "bytes";
  /** Reads after the value's name: `config of node "x" ${message}`. */
  readonly message: string;
}

/**
 * The first bound a value breaks, or null. Walked without recursion (a deeply nested value
 * must not overflow the stack of whatever touches it next) and with a budget of values, so
 * that an object shared along many paths cannot make the walk itself explode.
 */
export function jsonProblem(value: unknown, bounds: JsonBounds): JsonProblem | null {
  const stack: [unknown, number][] = [[value, 1]];
  let values = 0;
  let stringChars = 0;
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (++values > bounds.maxValues)
      return { kind: "values", message: `has more than ${bounds.maxValues} values` };
    if (typeof current === "string") stringChars += current.length;
    if (typeof current !== "object" || current === null) continue;
    if (depth > bounds.maxDepth)
      return { kind: "depth", message: `is nested deeper than ${bounds.maxDepth} levels` };
    for (const child of Array.isArray(current) ? current : Object.values(current))
      stack.push([child, depth + 1]);
  }
  // Serialising is the costly part: skipped when the value is small enough on any reading
  // (a UTF-16 unit is at most 3 UTF-8 bytes once escaped, a scalar or bracket at most 24).
  if (stringChars * 6 + values * 24 <= bounds.maxBytes) return null;
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? "");
  return bytes > bounds.maxBytes
    ? { kind: "bytes", message: `is ${bytes} bytes of JSON; the limit is ${bounds.maxBytes}` }
    : null;
}

type Container = Record<string, JsonValue> | JsonValue[];

const isContainer = (value: unknown): value is Container =>
  typeof value === "object" && value !== null;

export function scalarBytes(value: JsonValue): number {
  return typeof value === "string"
    ? Buffer.byteLength(JSON.stringify(value))
    : (JSON.stringify(value) ?? "null").length;
}

/** Bytes of an object key in JSON, with its colon. */
export const keyBytes = (key: string) => Buffer.byteLength(JSON.stringify(key)) + 1;

/**
 * UTF-8 bytes of a value's JSON, shared parts counted every time they appear (as JSON repeats
 * them), computed once per distinct object and without recursion: linear in the distinct
 * data even when the JSON would be exponential.
 */
export function jsonBytes(root: JsonValue, memo = new Map<object, number>()): number {
  if (!isContainer(root)) return scalarBytes(root);
  const stack: [Container, boolean][] = [[root, false]];
  while (stack.length > 0) {
    const [value, childrenDone] = stack.pop()!;
    if (memo.has(value)) continue;
    const entries = Array.isArray(value)
      ? value.map((v) => ["", v] as const)
      : Object.entries(value);
    if (!childrenDone) {
      stack.push([value, true]);
      for (const [, child] of entries)
        if (isContainer(child) && !memo.has(child)) stack.push([child, false]);
      continue;
    }
    let total = 2 + Math.max(0, entries.length - 1);
    for (const [key, child] of entries) {
      if (!Array.isArray(value)) total += keyBytes(key);
      // A child still missing is on the current path: only a cycle, which JSON cannot hold.
      total += isContainer(child) ? (memo.get(child) ?? 4) : scalarBytes(child);
    }
    memo.set(value, total);
  }
  return memo.get(root)!;
}
