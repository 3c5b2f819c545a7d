/** An engine on a store, without the HTTP server, and helpers to run pipelines to the end. */
import pino from "pino";
import { afterEach } from "vitest";
import { normalizeDefinition, type PipelineInput } from "../../src/domain/definition.ts";
import type { RunEventRecord, RunRecord } from "../../src/domain/records.ts";
import { createMemoryBus } from "../../src/engine/bus.ts";
import { Engine } from "../../src/engine/engine.ts";
import type { EngineOptions } from "../../src/engine/options.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import type { Store } from "../../src/store/types.ts";
import { freshStore, type Provider } from "./databases.ts";

export function createTestEngine(options: Partial<EngineOptions> & { store?: Store } = {}): Engine {
  const engine = new Engine({
    store: options.store ?? new MemoryStore(),
    bus: options.bus ?? createMemoryBus(),
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    instanceId: options.instanceId ?? "test-instance",
    httpAllowlist: ["127.0.0.1", "localhost"],
    pollMs: 50,
    ...options,
  });
  engine.start();
  return engine;
}

export async function createPipeline(engine: Engine, input: PipelineInput): Promise<string> {
  return (await engine.store.createPipeline(normalizeDefinition(input))).id;
}

/** Collects a run's events until its terminal event. */
export async function collectEvents(
  engine: Engine,
  runId: string,
  after = 0,
): Promise<RunEventRecord[]> {
  const events: RunEventRecord[] = [];
  for await (const event of await engine.events(runId, after)) events.push(event);
  return events;
}

export async function getRun(store: Store, runId: string): Promise<RunRecord> {
  const [run] = await store.getRuns([runId]);
  if (!run) throw new Error(`no run ${runId}`);
  return run;
}

/** Starts a run and waits for its end. */
export async function runToEnd(engine: Engine, pipelineId: string, triggerData: unknown = null) {
  const started = await engine.runPipeline(pipelineId, triggerData as never);
  const events = await collectEvents(engine, started.id);
  return { started, events, run: await getRun(engine.store, started.id) };
}

/** Events as [type, nodeId, attempt] for exact sequence assertions. */
export const steps = (events: readonly RunEventRecord[]) =>
  events.map((e) => [e.type, e.nodeId, e.attempt] as const);

const cleanups: (() => Promise<void>)[] = [];

/** An engine on a fresh store of the provider; `closeEngineStores` drops the stores. */
export async function engineOn(
  provider: Provider,
  options: Partial<EngineOptions> = {},
): Promise<Engine> {
  const { store, cleanup } = await freshStore(provider);
  cleanups.push(cleanup);
  return createTestEngine({ ...options, store });
}

export async function closeEngineStores(): Promise<void> {
  for (const cleanup of cleanups.splice(0)) await cleanup();
}

/**
 * An engine per test on a fresh store of the provider: call the returned function in a test;
 * after each test the engine is stopped and its store dropped.
 */
export function engineEach(): (
  provider: Provider,
  options?: Partial<EngineOptions> & { store?: Store },
) => Promise<Engine> {
  let current: Engine | undefined;
  afterEach(async () => {
    await current?.stop(0);
    current = undefined;
    await closeEngineStores();
  });
  return async (provider, options = {}) => {
    if (options.store) current = createTestEngine(options);
    else current = await engineOn(provider, options);
    return current;
  };
}
