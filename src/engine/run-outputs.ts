/**
 * The outputs of one run, kept once: each new output is encoded against the outputs recorded
 * before it (see domain/shared-output.ts), so that a join stores references, not copies, and
 * the bytes a run stores stay linear in its distinct data. The limits are checked on what is
 * stored: one output's own data, and the run's total.
 */
import type { JsonValue } from "../domain/json.ts";
import type { NodeRunRecord } from "../domain/records.ts";
import { encodeOutput, type KnownOutputs, type StoredOutput } from "../domain/shared-output.ts";
import { PermanentError } from "./errors.ts";

export interface OutputLimits {
  /** Largest stored form of one output (its own data), in bytes. @default 10 MiB */
  readonly maxOutputBytes?: number;
  /** Output bytes one run may store in all (node runs and event copies). @default 64 MiB */
  readonly maxRunOutputBytes?: number;
}

/** Outputs up to this size travel in NODE_COMPLETED events; larger ones do not. */
export const MAX_EVENT_OUTPUT_BYTES = 16 * 1024;
/**
 * The same for an output that holds other nodes' outputs: what it holds was in their own
 * events already, and its JSON repeats it (down a chain of joins, doubling at each join).
 */
export const MAX_EVENT_SHARED_OUTPUT_BYTES = 1024;
/** Strings at least this long are recognised by value when passed on (they have no identity). */
const SHARED_STRING_LENGTH = 1024;
const BOUNDS = { maxDepth: 128, maxValues: 1_000_000 } as const;

export class RunOutputs implements KnownOutputs {
  readonly #maxOutputBytes: number;
  readonly #maxRunOutputBytes: number;
  /** Output value (an object, or a long string) → the node that produced it first. */
  readonly #nodes = new Map<unknown, string>();
  readonly #bytes = new Map<string, number>();
  readonly #byNode = new Map<string, JsonValue>();
  #stored = 0;
  /** The node ids an output being encoded prefers to refer to (its direct inputs). */
  #preferred: readonly string[] = [];

  constructor(limits: OutputLimits = {}, stored: readonly NodeRunRecord[] = []) {
    this.#maxOutputBytes = limits.maxOutputBytes ?? 10 * 1024 * 1024;
    this.#maxRunOutputBytes = limits.maxRunOutputBytes ?? 64 * 1024 * 1024;
    for (const record of stored) {
      if (record.output === undefined) continue;
      this.#remember(record.nodeId, record.output, record.outputBytes ?? 0);
      this.#stored += record.outputStoredBytes;
    }
  }

  /** Output bytes this run has stored so far. */
  get storedBytes(): number {
    return this.#stored;
  }

  nodeOf(value: unknown, key?: string | number): string | undefined {
    if (typeof value === "object" ? value === null : !isLongString(value)) return undefined;
    // Several nodes may hold the very same value (a pass-through passes it on as it is): a
    // join's entry names the input it came from, and the top of an output its own input.
    if (typeof key === "string" && this.#byNode.get(key) === value) return key;
    if (key === undefined)
      for (const id of this.#preferred) if (this.#byNode.get(id) === value) return id;
    return this.#nodes.get(value);
  }

  bytesOf(nodeId: string): number {
    return this.#bytes.get(nodeId) ?? 0;
  }

  /**
   * Encodes a node's output and counts it, or explains why it cannot be kept (nothing is
   * counted then): OUTPUT_TOO_LARGE, or RUN_OUTPUT_LIMIT once the run's total would pass.
   * @param inputs the node's direct inputs, which references prefer to name
   */
  keep(
    nodeId: string,
    output: JsonValue,
    inputs: readonly string[] = [],
  ): { stored: StoredOutput; inEvent: boolean } | PermanentError {
    this.#preferred = inputs;
    const encoded = encodeOutput(output, this, BOUNDS);
    this.#preferred = [];
    if (!encoded.ok)
      return new PermanentError(
        `output of node "${nodeId}" ${encoded.problem}`,
        "OUTPUT_TOO_LARGE",
      );
    const { stored } = encoded;
    const own = Buffer.byteLength(stored.json);
    if (own > this.#maxOutputBytes)
      return new PermanentError(
        `output of node "${nodeId}" is ${own} bytes of JSON; the limit is ${this.#maxOutputBytes}`,
        "OUTPUT_TOO_LARGE",
      );
    const inEvent =
      stored.expandedBytes <=
      (stored.refs.length > 0 ? MAX_EVENT_SHARED_OUTPUT_BYTES : MAX_EVENT_OUTPUT_BYTES);
    const adds = own + (inEvent ? stored.expandedBytes : 0);
    if (this.#stored + adds > this.#maxRunOutputBytes)
      return new PermanentError(
        `output of node "${nodeId}" would take the run's stored outputs to ${this.#stored + adds} bytes; the limit is ${this.#maxRunOutputBytes} (MAX_RUN_OUTPUT_BYTES)`,
        "RUN_OUTPUT_LIMIT",
      );
    this.#stored += adds;
    this.#remember(nodeId, output, stored.expandedBytes);
    return { stored, inEvent };
  }

  #remember(nodeId: string, output: JsonValue, bytes: number): void {
    this.#bytes.set(nodeId, bytes);
    this.#byNode.set(nodeId, output);
    const shareable = typeof output === "object" ? output !== null : isLongString(output);
    if (shareable && !this.#nodes.has(output)) this.#nodes.set(output, nodeId);
  }
}

function isLongString(value: unknown): value is string {
  return typeof value === "string" && value.length >= SHARED_STRING_LENGTH;
}
