/**
 * Rows to records and back. JSON columns are text on both databases; dates arrive as `Date`
 * (PostgreSQL, Prisma) or ISO text (SQLite through the SQL layer); booleans as 0/1 on SQLite.
 */

import { LRUCache } from "lru-cache";
import type { PipelineDefinition } from "../domain/definition.ts";
import type { JsonValue } from "../domain/json.ts";
import type {
  BreakerRecord,
  NodeRunRecord,
  PipelineRecord,
  PipelineVersionRecord,
  RunEventRecord,
  RunRecord,
} from "../domain/records.ts";
import { OutputDecoder, parseRefs, type StoredRow } from "../domain/shared-output.ts";
import type { CircuitState, NodeRunStatus, RunEventType, RunStatus } from "../domain/status.ts";
import type { NodeRunWrite } from "./types.ts";

type Row = Record<string, unknown>;

/**
 * A date read from SQLite's text, which keeps that text: reads of many node runs format their
 * dates back to ISO strings, and this makes that a lookup.
 */
class StoredDate extends Date {
  readonly #iso: string;
  constructor(iso: string) {
    super(iso);
    this.#iso = iso;
  }
  override toISOString(): string {
    return this.#iso;
  }
}

const SQLITE_TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$/;

export function toDate(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value;
  const text = String(value);
  return SQLITE_TIMESTAMP.test(text) ? new StoredDate(`${text.slice(0, -6)}Z`) : new Date(text);
}

const toNumber = (value: unknown): number =>
  typeof value === "bigint" ? Number(value) : Number(value);

export function parseJson(text: unknown): JsonValue | undefined {
  if (text === null || text === undefined) return undefined;
  return JSON.parse(String(text)) as JsonValue;
}

export const stringifyJson = (value: JsonValue | undefined): string | null =>
  value === undefined ? null : JSON.stringify(value);

/** The columns of a pipeline row that hold its definition. */
export function pipelineColumns(definition: PipelineDefinition) {
  return {
    name: definition.name,
    nodes: JSON.stringify(definition.nodes),
    edges: JSON.stringify(definition.edges),
    maxRetriesPerNode: definition.maxRetriesPerNode,
    timeoutSeconds: definition.timeoutSeconds,
    maxConcurrency: definition.maxConcurrency,
    breakerFailureThreshold: definition.breaker.failureThreshold,
    breakerRecoveryTimeoutMs: definition.breaker.recoveryTimeoutMs,
  };
}

/** The definition held by the columns of `pipelineColumns` (a pipeline or a version row). */
function definitionFromRow(row: Row): PipelineDefinition {
  return {
    name: String(row.name),
    nodes: JSON.parse(String(row.nodes)),
    edges: JSON.parse(String(row.edges)),
    maxRetriesPerNode: toNumber(row.maxRetriesPerNode),
    timeoutSeconds: toNumber(row.timeoutSeconds),
    maxConcurrency: row.maxConcurrency === null ? null : toNumber(row.maxConcurrency),
    breaker: {
      failureThreshold: toNumber(row.breakerFailureThreshold),
      recoveryTimeoutMs: toNumber(row.breakerRecoveryTimeoutMs),
    },
  };
}

export function versionFromRow(row: Row): PipelineVersionRecord {
  return {
    pipelineId: String(row.pipelineId),
    version: toNumber(row.version),
    definition: definitionFromRow(row),
    createdAt: toDate(row.createdAt)!,
  };
}

export function pipelineFromRow(row: Row): PipelineRecord {
  return {
    id: String(row.id),
    definition: definitionFromRow(row),
    runCount: toNumber(row.runCount),
    successCount: toNumber(row.successCount),
    errorCount: toNumber(row.errorCount),
    version: toNumber(row.version),
    createdAt: toDate(row.createdAt)!,
    updatedAt: toDate(row.updatedAt)!,
  };
}

/**
 * Parsed run definitions by pipeline and version. A version's definition never changes, and
 * the runs of a list mostly share a few versions: each is parsed once, not once per run.
 */
const definitions = new LRUCache<string, PipelineDefinition>({ max: 256 });

export const definitionKey = (pipelineId: unknown, version: unknown): string =>
  `${pipelineId}@${version}`;

/** The parsed definition of a pipeline version, if cached. */
export const peekDefinition = (key: string): PipelineDefinition | undefined => definitions.get(key);

export function cachedDefinition(key: string, text: string): PipelineDefinition {
  let definition = definitions.get(key);
  if (!definition) {
    definition = JSON.parse(text) as PipelineDefinition;
    definitions.set(key, definition);
  }
  return definition;
}

/**
 * A run record. Its definition is shared between runs of the same pipeline version: given
 * (read without the column), or parsed from the row on first use.
 */
export function runFromRow(row: Row, definition?: PipelineDefinition): RunRecord {
  const definitionText = row.definition;
  const key = definitionKey(row.pipelineId, row.pipelineVersion);
  let parsed = definition;
  return {
    id: String(row.id),
    pipelineId: String(row.pipelineId),
    pipelineVersion: toNumber(row.pipelineVersion),
    status: String(row.status) as RunStatus,
    triggerData: parseJson(row.triggerData) ?? null,
    error: row.error === null || row.error === undefined ? null : String(row.error),
    get definition() {
      parsed ??= cachedDefinition(key, String(definitionText));
      return parsed;
    },
    createdAt: toDate(row.createdAt)!,
    startedAt: toDate(row.startedAt),
    completedAt: toDate(row.completedAt),
    deadlineAt: toDate(row.deadlineAt),
    ownerId: row.ownerId === null || row.ownerId === undefined ? null : String(row.ownerId),
    leaseExpiresAt: toDate(row.leaseExpiresAt),
    cancelRequested: Boolean(row.cancelRequested),
    rerunOf: row.rerunOf === null || row.rerunOf === undefined ? null : String(row.rerunOf),
  };
}

/**
 * Node runs from their rows, grouped by run. Outputs are decoded on first use (most reads of
 * node runs want their status) and share the outputs they reference (see shared-output.ts):
 * a row holds `output` (JSON text, null where a reference sits) and `outputRefs`.
 */
export function nodeRunsFromRows(rows: readonly Row[]): NodeRunRecord[] {
  const byRun = new Map<string, Map<string, StoredRow>>();
  for (const row of rows) {
    const runId = String(row.runId);
    let stored = byRun.get(runId);
    if (!stored) {
      stored = new Map();
      byRun.set(runId, stored);
    }
    stored.set(String(row.nodeId), {
      json: row.output === null || row.output === undefined ? null : String(row.output),
      refs: parseRefs(row.outputRefs),
    });
  }
  const decoders = new Map([...byRun].map(([runId, stored]) => [runId, new OutputDecoder(stored)]));
  return rows.map((row) => {
    const runId = String(row.runId);
    const nodeId = String(row.nodeId);
    const decoder = decoders.get(runId)!;
    const stored = byRun.get(runId)!.get(nodeId)!;
    return {
      runId,
      nodeId,
      status: String(row.status) as NodeRunStatus,
      attempts: toNumber(row.attempts),
      get output() {
        return decoder.value(nodeId);
      },
      outputRefs: stored.refs,
      get outputBytes() {
        return decoder.bytes(nodeId);
      },
      outputStoredBytes: stored.json === null ? 0 : Buffer.byteLength(stored.json),
      error: row.error === null || row.error === undefined ? null : String(row.error),
      startedAt: toDate(row.startedAt),
      completedAt: toDate(row.completedAt),
      reusedFrom:
        row.reusedFrom === null || row.reusedFrom === undefined ? null : String(row.reusedFrom),
    };
  });
}

/** The columns of a node run row. */
export function nodeRunColumns(nodeRun: NodeRunWrite) {
  return {
    ...nodeRun,
    output: nodeRun.output?.json ?? null,
    outputRefs:
      nodeRun.output && nodeRun.output.refs.length > 0 ? JSON.stringify(nodeRun.output.refs) : null,
  };
}

export function eventFromRow(row: Row): RunEventRecord {
  return {
    runId: String(row.runId),
    seq: toNumber(row.seq),
    type: String(row.type) as RunEventType,
    nodeId: row.nodeId === null ? null : String(row.nodeId),
    attempt: row.attempt === null ? null : toNumber(row.attempt),
    at: toDate(row.at)!,
    data: (parseJson(row.data) ?? null) as RunEventRecord["data"],
  };
}

export function breakerFromRow(row: Row): BreakerRecord {
  return {
    pipelineId: String(row.pipelineId),
    nodeId: String(row.nodeId),
    state: String(row.state) as CircuitState,
    failureCount: toNumber(row.failureCount),
    openedAt: toDate(row.openedAt),
    trialStartedAt: toDate(row.trialStartedAt),
    updatedAt: toDate(row.updatedAt)!,
  };
}
