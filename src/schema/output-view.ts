/**
 * A node's output as the API shows it: the value the seed defines, whole when its JSON fits a
 * budget, otherwise cut. An output that holds other outputs (a join) is shared in memory but
 * its JSON repeats every shared part: down a chain of joins it can reach gigabytes from a
 * few kilobytes of data. The cut keeps the value's shape from the top, includes every part
 * that still fits, and puts `{"$truncated": {"bytes": N}}` where a part (N bytes of JSON)
 * does not. Sizes are computed once per distinct object, so the cost follows the distinct
 * data, not the repeated JSON.
 */
import { type JsonValue, jsonBytes, keyBytes, scalarBytes } from "../domain/json.ts";

/** Largest output JSON returned as it is by default; larger ones are cut to this size. */
export const OUTPUT_VIEW_BYTES = 64 * 1024;
/** The most a client may ask for. */
export const MAX_OUTPUT_VIEW_BYTES = 16 * 1024 * 1024;
/** Kept free for the markers of the last parts cut. */
const MARKER_RESERVE = 4096;
/** Below this many bytes left, a part that does not fit is not opened any further. */
const OPEN_BELOW = 256;
const MAX_VIEW_DEPTH = 64;

type Container = Record<string, JsonValue> | JsonValue[];

const isContainer = (value: unknown): value is Container =>
  typeof value === "object" && value !== null;

export interface OutputView {
  readonly value: JsonValue;
  /** JSON bytes of the whole value. */
  readonly bytes: number;
  readonly truncated: boolean;
}

/** The output within `budget` bytes of JSON (see the module comment). */
export function viewOutput(output: JsonValue, budget = OUTPUT_VIEW_BYTES): OutputView {
  const memo = new Map<object, number>();
  const bytes = jsonBytes(output, memo);
  if (bytes <= budget || !isContainer(output)) return { value: output, bytes, truncated: false };
  let left = budget - 2 - Math.min(MARKER_RESERVE, budget / 8);
  const marker = (size: number): JsonValue => ({ $truncated: { bytes: size } });
  const copyOf = (value: Container): Container => (Array.isArray(value) ? [] : {});
  const root = copyOf(output);
  const stack: [Container, Container, number][] = [[output, root, 0]];
  while (stack.length > 0) {
    const [source, copy, depth] = stack.pop()!;
    const entries: [string | number, JsonValue][] = Array.isArray(source)
      ? source.map((v, i) => [i, v])
      : Object.entries(source);
    for (const [key, child] of entries) {
      // The entry's own JSON: its key (in an object) and the comma before it.
      left -= (typeof key === "string" ? keyBytes(key) : 0) + 1;
      const size = isContainer(child) ? memo.get(child)! : scalarBytes(child);
      let value: JsonValue;
      if (size <= left) {
        value = child;
        left -= size;
      } else if (isContainer(child) && left >= OPEN_BELOW && depth < MAX_VIEW_DEPTH) {
        value = copyOf(child);
        left -= 2;
        stack.push([child, value, depth + 1]);
      } else {
        value = marker(size);
        left -= Buffer.byteLength(JSON.stringify(value));
      }
      if (Array.isArray(copy)) copy[key as number] = value;
      else copy[key as string] = value;
    }
  }
  return { value: root, bytes, truncated: true };
}
