/**
 * An Engine on a fresh store, configured as the server configures it (default limits, poll
 * and lease), whose bus tells the benchmark when a run's terminal event is published. The
 * writer publishes an event only after committing it, so that moment is "run stored as ended".
 */
import { performance } from "node:perf_hooks";
import pino from "pino";
import { normalizeDefinition, type PipelineInput } from "../../src/domain/definition.ts";
import type { RunEventRecord } from "../../src/domain/records.ts";
import { TERMINAL_EVENT_TYPES } from "../../src/domain/status.ts";
import { createMemoryBus, type EventBus } from "../../src/engine/bus.ts";
import { Engine } from "../../src/engine/engine.ts";
import type { EngineOptions } from "../../src/engine/options.ts";
import { openStore } from "../../src/store/index.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import type { Store } from "../../src/store/types.ts";
import { createTestDatabase, type Provider } from "../../test/helpers/databases.ts";

export type { Provider };

export interface RunEnd {
  readonly event: RunEventRecord;
  /** performance.now() when the terminal event was published. */
  readonly at: number;
}

export interface BenchEngine {
  readonly engine: Engine;
  readonly store: Store;
  readonly provider: Provider;
  /** Database URL (empty for memory), e.g. to open a second store on it. */
  readonly url: string;
  createPipeline(input: PipelineInput): Promise<string>;
  /** Resolves when the run's terminal event is published (at once if it already was). */
  waitForEnd(runId: string): Promise<RunEnd>;
  /** Stops the engine, closes the store and drops the database. */
  close(): Promise<void>;
}

/** A fresh store: memory, a SQLite file in a temp directory, or a new PostgreSQL database. */
export async function openFreshStore(
  provider: Provider,
): Promise<{ store: Store; url: string; drop: () => Promise<void> }> {
  if (provider === "memory") return { store: new MemoryStore(), url: "", drop: async () => {} };
  const db = await createTestDatabase(provider);
  // The server's own pool size (the test helper opens smaller pools).
  const store = await openStore({ provider, databaseUrl: db.url });
  return {
    store,
    url: db.url,
    drop: async () => {
      await store.close();
      await db.drop();
    },
  };
}

/** Wraps a bus so that terminal events resolve `waitForEnd`. */
export function watchEnds(inner: EventBus) {
  const ended = new Map<string, RunEnd>();
  const waiters = new Map<string, (end: RunEnd) => void>();
  const bus: EventBus = {
    ...inner,
    publish(runId, events) {
      inner.publish(runId, events);
      const event = events.find((e) => TERMINAL_EVENT_TYPES.has(e.type));
      if (!event) return;
      const end = { event, at: performance.now() };
      const waiter = waiters.get(runId);
      if (waiter) {
        waiters.delete(runId);
        waiter(end);
      } else ended.set(runId, end);
    },
  };
  const waitForEnd = (runId: string) =>
    new Promise<RunEnd>((resolve) => {
      const end = ended.get(runId);
      if (end) {
        ended.delete(runId);
        resolve(end);
      } else waiters.set(runId, resolve);
    });
  return { bus, waitForEnd };
}

export async function createBenchEngine(
  provider: Provider,
  options: Partial<EngineOptions> = {},
): Promise<BenchEngine> {
  const { store, url, drop } = await openFreshStore(provider);
  const { bus, waitForEnd } = watchEnds(createMemoryBus());
  const engine = new Engine({
    store,
    bus,
    logger: pino({ level: "silent" }),
    instanceId: `bench-${process.pid}`,
    httpAllowlist: ["127.0.0.1"],
    ...options,
  });
  engine.start();
  return {
    engine,
    store,
    provider,
    url,
    createPipeline: async (input) => (await store.createPipeline(normalizeDefinition(input))).id,
    waitForEnd,
    async close() {
      await engine.stop(0);
      await drop();
    },
  };
}

/** Collects garbage when the process runs with --expose-gc (run.ts starts figures that way). */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
