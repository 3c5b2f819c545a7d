import { describe, expect, it } from "vitest";
import { normalizeDefinition } from "../src/domain/definition.ts";
import type { RunEventRecord } from "../src/domain/records.ts";
import type { RunEventType } from "../src/domain/status.ts";
import { createMemoryBus } from "../src/engine/bus.ts";
import { runEventStream } from "../src/engine/stream.ts";
import { MemoryStore } from "../src/store/memory.ts";

/** A run in a memory store, and helpers to store and/or publish its events. */
async function setup() {
  const store = new MemoryStore();
  const bus = createMemoryBus();
  const pipeline = await store.createPipeline(
    normalizeDefinition({ name: "s", nodes: [{ id: "t", type: "TRIGGER" }] }),
  );
  const run = await store.createRun(
    {
      pipelineId: pipeline.id,
      pipelineVersion: 1,
      status: "RUNNING",
      triggerData: null,
      error: null,
      definition: pipeline.definition,
      startedAt: new Date(),
      completedAt: null,
    },
    [],
  );
  const event = (seq: number, type: RunEventType = "NODE_STARTED"): RunEventRecord => ({
    runId: run.id,
    seq,
    type,
    nodeId: "t",
    attempt: 1,
    at: new Date(),
    data: null,
  });
  const store_ = (...events: RunEventRecord[]) => store.commit({ events, nodeRuns: [], runs: [] });
  const publish = (...events: RunEventRecord[]) => bus.publish(run.id, events);
  return { store, bus, runId: run.id, event, storeEvents: store_, publish };
}

async function take(iterator: AsyncIterator<RunEventRecord>, count: number): Promise<number[]> {
  const seqs: number[] = [];
  for (let i = 0; i < count; i++) {
    const next = await iterator.next();
    if (next.done) break;
    seqs.push(next.value.seq);
  }
  return seqs;
}

describe("runEventStream", () => {
  it("replays after `after`, then streams live events, dropping duplicates, and ends after the terminal event", async () => {
    const { store, bus, runId, event, storeEvents, publish } = await setup();
    await storeEvents(event(1, "RUN_STARTED"), event(2), event(3));
    const stream = runEventStream(store, bus, runId, 1, { isLocal: () => true });
    expect(await take(stream, 2)).toEqual([2, 3]);
    await storeEvents(event(4), event(5));
    publish(event(3), event(4), event(5));
    expect(await take(stream, 2)).toEqual([4, 5]);
    await storeEvents(event(6, "RUN_COMPLETED"));
    publish(event(6, "RUN_COMPLETED"));
    expect(await take(stream, 1)).toEqual([6]);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });

  it("fills a gap in the live stream from the store", async () => {
    const { store, bus, runId, event, storeEvents, publish } = await setup();
    await storeEvents(event(1, "RUN_STARTED"));
    const stream = runEventStream(store, bus, runId, 0, { isLocal: () => true });
    expect(await take(stream, 1)).toEqual([1]);
    // 2 and 3 were stored but their message was lost; 4 arrives.
    await storeEvents(event(2), event(3), event(4, "RUN_FAILED"));
    publish(event(4, "RUN_FAILED"));
    expect(await take(stream, 10)).toEqual([2, 3, 4]);
  });

  it("completes at once, after the replay, for a finished run", async () => {
    const { store, bus, runId, event, storeEvents } = await setup();
    await storeEvents(event(1, "RUN_STARTED"), event(2, "RUN_CANCELLED"));
    expect(await take(runEventStream(store, bus, runId), 10)).toEqual([1, 2]);
  });

  it("reads the store when a run executes elsewhere and no message comes", async () => {
    const { store, bus, runId, event, storeEvents } = await setup();
    const stream = runEventStream(store, bus, runId, 0, { pollMs: 20, isLocal: () => false });
    const pending = take(stream, 3);
    await storeEvents(event(1, "RUN_STARTED"), event(2), event(3, "RUN_COMPLETED"));
    expect(await pending).toEqual([1, 2, 3]);
  });

  it("ends at once when the client goes away while waiting, and stops listening", async () => {
    const { store, bus, runId, event, storeEvents } = await setup();
    let listening = 0;
    const counting = {
      ...bus,
      onRunEvent: (id: string, listener: (e: RunEventRecord) => void) => {
        listening++;
        const off = bus.onRunEvent(id, listener);
        return () => {
          listening--;
          off();
        };
      },
    };
    await storeEvents(event(1, "RUN_STARTED"));
    const stream = runEventStream(store, counting, runId, 0, {
      isLocal: () => true,
      pollMs: 60_000,
    });
    expect(await take(stream, 1)).toEqual([1]);
    expect(listening).toBe(1);
    const waiting = stream.next();
    await stream.return?.();
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(listening).toBe(0);
  });
});
