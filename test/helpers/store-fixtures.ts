/**
 * Fixtures of the Store contract (src/store/types.ts) tests, test/store-*.test.ts: the providers
 * to run on, fixed instants, a full pipeline definition, record builders, and shortcuts on a
 * suite's fresh store. The dates that decide an outcome (leases, events) are explicit, so no
 * test waits on the clock.
 */

import { afterEach, beforeEach } from "vitest";
import type { PipelineDefinition } from "../../src/domain/definition.ts";
import type { JsonValue } from "../../src/domain/json.ts";
import type {
  BreakerRecord,
  NodeRunRecord,
  NodeRunState,
  PipelineRecord,
  RunEventRecord,
  RunRecord,
} from "../../src/domain/records.ts";
import type { StoredOutput } from "../../src/domain/shared-output.ts";
import type { RunEventType } from "../../src/domain/status.ts";
import type { LeaseArgs, NewRun, NodeRunWrite, Store, WriteBatch } from "../../src/store/types.ts";
import { availableProviders, describeProviders, freshStore, type Provider } from "./databases.ts";

/** The providers to run a suite on (with describeStore or describeProviders: see databases.ts). */
export const providers = await availableProviders();
/** The providers with a database, migrations and transactions. */
export const sqlProviders = providers.filter(
  (provider): provider is "sqlite" | "postgresql" => provider !== "memory",
);

/** A well-formed UUIDv7 that no store ever hands out. */
export const MISSING_ID = "00000000-0000-7000-8000-000000000000";
/** The instant every test's explicit dates count from. */
const T0 = Date.parse("2026-01-01T00:00:00.000Z");
/** A fixed instant `seconds` after T0. */
export const at = (seconds: number): Date => new Date(T0 + seconds * 1000);
/** A lease for `ownerId`, taken at `now` and held until `until` (seconds after T0). */
export const lease = (ownerId: string, now: number, until: number): LeaseArgs => ({
  ownerId,
  now: at(now),
  leaseUntil: at(until),
});

/** A pipeline definition that uses every field, with non-ASCII text in it. */
export function definition(name: string): PipelineDefinition {
  return {
    name,
    nodes: [
      { id: "start", type: "TRIGGER", config: {} },
      {
        id: "fetch",
        type: "ACTION",
        name: "Fetch ✓",
        config: { action: "http", url: "http://127.0.0.1:9/x", headers: { accept: "*/*" } },
        retry: { maxAttempts: 4, initialDelayMs: 100, maxDelayMs: 2000, jitter: true },
        timeoutMs: 5000,
        continueOnFail: true,
        breaker: { failureThreshold: 2, recoveryTimeoutMs: 500 },
      },
      { id: "ok", type: "CONDITION", config: { expression: "inputs.fetch.status == 200" } },
      { id: "alert", type: "ACTION", config: { action: "log", message: "échec «fetch» 🚨" } },
    ],
    edges: [
      { source: "start", target: "fetch" },
      { source: "fetch", target: "ok" },
      { source: "ok", target: "alert", branch: "FALSE" },
    ],
    maxRetriesPerNode: 4,
    timeoutSeconds: 120,
    maxConcurrency: 3,
    breaker: { failureThreshold: 7, recoveryTimeoutMs: 1234 },
  };
}

/** A definition with every field different from definition()'s, to replace it with. */
export const smallDefinition: PipelineDefinition = {
  name: "renamed",
  nodes: [{ id: "only", type: "TRIGGER", config: { note: null } }],
  edges: [],
  maxRetriesPerNode: 1,
  timeoutSeconds: 60,
  maxConcurrency: null,
  breaker: { failureThreshold: 1, recoveryTimeoutMs: 10 },
};

/** An event as createRun takes it, before it belongs to a run. */
export type NewEvent = Omit<RunEventRecord, "runId">;
/** An event numbered `seq`, at `seq` seconds after T0. */
export const event = (
  seq: number,
  type: RunEventType,
  fields: Partial<NewEvent> = {},
): NewEvent => ({
  seq,
  type,
  nodeId: null,
  attempt: null,
  at: at(seq),
  data: null,
  ...fields,
});

/** A QUEUED run of the current version of `pipeline`. */
export const newRun = (pipeline: PipelineRecord, fields: Partial<NewRun> = {}): NewRun => ({
  pipelineId: pipeline.id,
  pipelineVersion: pipeline.version,
  status: "QUEUED",
  triggerData: null,
  error: null,
  definition: pipeline.definition,
  startedAt: null,
  completedAt: null,
  ...fields,
});

/** A plain output (no references) in stored form. */
export function storedOutput(value: JsonValue | undefined): StoredOutput | null {
  if (value === undefined) return null;
  const json = JSON.stringify(value);
  return { json, refs: [], expandedBytes: Buffer.byteLength(json) };
}

/** A node run that COMPLETED in its first attempt, as the engine writes it. */
export const nodeRun = (
  runId: string,
  nodeId: string,
  { output, ...fields }: Partial<NodeRunState> & { output?: JsonValue } = {},
): NodeRunWrite => ({
  runId,
  nodeId,
  status: "COMPLETED",
  attempts: 1,
  error: null,
  startedAt: at(1),
  completedAt: at(2),
  reusedFrom: null,
  ...fields,
  output: storedOutput(output),
});

/** The node run a store reads back for one written without references. */
export function asRead({ output, ...state }: NodeRunWrite): NodeRunRecord {
  return {
    ...state,
    output: output ? (JSON.parse(output.json) as JsonValue) : undefined,
    outputRefs: output?.refs ?? [],
    outputBytes: output ? output.expandedBytes : null,
    outputStoredBytes: output ? Buffer.byteLength(output.json) : 0,
  };
}

/** A CLOSED breaker with no failures. */
export const breaker = (pipelineId: string, nodeId: string, fields: Partial<BreakerRecord> = {}) =>
  ({
    pipelineId,
    nodeId,
    state: "CLOSED",
    failureCount: 0,
    openedAt: null,
    trialStartedAt: null,
    updatedAt: at(0),
    ...fields,
  }) satisfies BreakerRecord;

/** The ids of records, undefined where there is none. */
export const ids = (items: readonly ({ readonly id: string } | null)[]) => items.map((i) => i?.id);
/** A sorted copy. */
export const sorted = (values: readonly string[]) => [...values].sort();

/** Shortcuts on the store a suite opens afresh for every test; `current` gives that store. */
export function storeShortcuts(current: () => Store) {
  const createPipeline = (name = "pipeline") => current().createPipeline(definition(name));
  const createRun = (
    pipeline: PipelineRecord,
    fields: Partial<NewRun> = {},
    events: readonly NewEvent[] = [],
  ) => current().createRun(newRun(pipeline, fields), events);
  const getRun = async (id: string): Promise<RunRecord | null> =>
    (await current().getRuns([id]))[0] ?? null;
  const counters = async (pipeline: PipelineRecord) => {
    const [record] = await current().getPipelines([pipeline.id]);
    return record
      ? { runs: record.runCount, successes: record.successCount, errors: record.errorCount }
      : null;
  };
  const patch = (runs: WriteBatch["runs"]) => current().commit({ events: [], nodeRuns: [], runs });
  return { createPipeline, createRun, getRun, counters, patch };
}

/**
 * A fresh store of `provider` for every test of the enclosing describe, handed to `use` before
 * each test and closed (and its database dropped) after it.
 */
export function freshStoreEach(provider: Provider, use: (store: Store) => void): void {
  let cleanup: (() => Promise<void>) | undefined;
  beforeEach(async () => {
    const fresh = await freshStore(provider);
    cleanup = fresh.cleanup;
    use(fresh.store);
  });
  afterEach(async () => {
    await cleanup?.();
  });
}

/**
 * A suite run once per provider, each test on a fresh store: `body` receives the store of the
 * test under way (a stand-in that forwards to it) and the provider.
 */
export function describeStore(
  title: string,
  body: (store: Store, provider: Provider) => void,
  on: readonly Provider[] = providers,
): void {
  describeProviders(on)(`${title} on %s`, (provider) => {
    let current: Store | undefined;
    freshStoreEach(provider, (fresh) => {
      current = fresh;
    });
    const store = new Proxy({} as Store, {
      get(_target, key) {
        if (!current) throw new Error("the store is only there while a test runs");
        const value = Reflect.get(current, key, current);
        return typeof value === "function" ? value.bind(current) : value;
      },
    });
    body(store, provider);
  });
}
