/**
 * The event bus: in process, and through Redis between two buses as between two instances.
 * Channels are per run; a listener's bug never reaches the publisher; unsubscribing stops
 * delivery; through Redis dates arrive as dates.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { RunEventRecord } from "../src/domain/records.ts";
import { createMemoryBus, type EventBus } from "../src/engine/bus.ts";
import { createRedisBus } from "../src/engine/redis-bus.ts";
import { REDIS_URL, serviceAvailable } from "./helpers/services.ts";
import { waitFor } from "./helpers/wait.ts";

const event = (runId: string, seq: number): RunEventRecord => ({
  runId,
  seq,
  type: "NODE_STARTED",
  nodeId: "n",
  attempt: 1,
  at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)),
  data: { type: "ACTION" },
});

describe("memory bus", () => {
  it("delivers a run's events in order to that run's listeners only", () => {
    const bus = createMemoryBus();
    const seen: [string, number][] = [];
    bus.onRunEvent("r1", (e) => seen.push(["r1", e.seq]));
    bus.onRunEvent("r2", (e) => seen.push(["r2", e.seq]));
    bus.publish("r1", [event("r1", 1), event("r1", 2)]);
    bus.publish("r2", [event("r2", 1)]);
    bus.publish("r3", [event("r3", 1)]);
    expect(seen).toEqual([
      ["r1", 1],
      ["r1", 2],
      ["r2", 1],
    ]);
  });

  it("keeps delivering to the other listeners when one throws, and the publisher never sees it", () => {
    const bus = createMemoryBus();
    const seen: number[] = [];
    bus.onRunEvent("r1", () => {
      throw new Error("listener bug");
    });
    bus.onRunEvent("r1", (e) => seen.push(e.seq));
    expect(() => bus.publish("r1", [event("r1", 1)])).not.toThrow();
    expect(seen).toEqual([1]);
  });

  it("stops delivering after unsubscribe (twice is harmless)", () => {
    const bus = createMemoryBus();
    const seen: number[] = [];
    const unsubscribe = bus.onRunEvent("r1", (e) => seen.push(e.seq));
    bus.publish("r1", [event("r1", 1)]);
    unsubscribe();
    unsubscribe();
    bus.publish("r1", [event("r1", 2)]);
    expect(seen).toEqual([1]);
  });

  it("carries cancel requests and work notices to every listener", () => {
    const bus = createMemoryBus();
    const cancels: string[] = [];
    let work = 0;
    bus.onCancel((runId) => cancels.push(runId));
    bus.onWork(() => work++);
    bus.publishCancel("r9");
    bus.publishWork();
    bus.publishWork();
    expect([cancels, work]).toEqual([["r9"], 2]);
  });
});

const redis = await serviceAvailable("redis");

describe.skipIf(!redis)("Redis bus", () => {
  const buses: EventBus[] = [];
  afterEach(async () => {
    for (const bus of buses.splice(0)) await bus.close();
  });

  it("delivers events published on one bus to a listener on another, dates revived", async () => {
    const [a, b] = await Promise.all([createRedisBus(REDIS_URL), createRedisBus(REDIS_URL)]);
    buses.push(a, b);
    const runId = `bus-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const seen: RunEventRecord[] = [];
    b.onRunEvent(runId, (e) => seen.push(e));
    const cancels: string[] = [];
    b.onCancel((id) => {
      if (id === runId) cancels.push(id);
    });
    // A subscription becomes live at Redis asynchronously: publish until the first arrives.
    await waitFor("the subscription to be live", () => {
      if (seen.length === 0) a.publish(runId, [event(runId, 1)]);
      return seen.length > 0;
    });
    a.publish(runId, [event(runId, 2), event(runId, 3)]);
    a.publishCancel(runId);
    await waitFor("events 2 and 3 and the cancel", () => seen.at(-1)?.seq === 3 && cancels[0]);
    const seqs = seen.map((e) => e.seq);
    expect(seqs.slice(seqs.indexOf(2))).toEqual([2, 3]);
    expect(new Set(seqs.slice(0, seqs.indexOf(2)))).toEqual(new Set([1]));
    expect(seen.at(-1)).toEqual(event(runId, 3));
    expect(seen.at(-1)!.at).toBeInstanceOf(Date);
    expect(cancels).toEqual([runId]);
  });
});
