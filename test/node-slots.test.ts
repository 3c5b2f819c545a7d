import { afterEach, describe, expect, it } from "vitest";
import { NodeSlots, type SlotTaken, type SlotUser } from "../src/engine/node-slots.ts";
import { edge, node, trigger } from "./helpers/definitions.ts";
import { collectEvents, createPipeline, createTestEngine, getRun } from "./helpers/engine.ts";
import { waitFor } from "./helpers/wait.ts";

/** A run with `count` waiting nodes; `started` records which run took each slot. */
function user(name: string, count: number, started: string[]): SlotUser & { left: number } {
  return {
    left: count,
    takeSlot(): SlotTaken {
      if (this.left === 0) return "none";
      this.left--;
      started.push(name);
      return this.left > 0 ? "more" : "last";
    },
  };
}

describe("node slots", () => {
  it("never gives more than the limit, and gives each released slot on", () => {
    const slots = new NodeSlots(3);
    const started: string[] = [];
    const big = user("big", 10, started);
    slots.request(big);
    expect(started).toEqual(["big", "big", "big"]);
    expect(slots.used).toBe(3);
    expect(slots.waiting).toBe(1);
    slots.release();
    expect(started).toHaveLength(4);
    expect(slots.used).toBe(3);
  });

  it("serves waiting runs in turn, so a small run does not wait behind a big one", () => {
    const slots = new NodeSlots(2);
    const started: string[] = [];
    slots.request(user("big", 100, started));
    slots.request(user("small", 3, started));
    expect(started).toEqual(["big", "big"]);
    // The big run was in line first: from then on the two take turns.
    for (let i = 0; i < 6; i++) slots.release();
    expect(started).toEqual(["big", "big", "big", "small", "big", "small", "big", "small"]);
    expect(slots.waiting).toBe(1);
  });

  it("keeps a slot free when the run has nothing left to start", () => {
    const slots = new NodeSlots(2);
    const started: string[] = [];
    const ended = user("ended", 0, started);
    slots.request(ended);
    expect(slots.used).toBe(0);
    expect(slots.waiting).toBe(0);
    slots.request(user("next", 1, started));
    expect(started).toEqual(["next"]);
    expect(slots.used).toBe(1);
  });

  it("queues a run once however often it asks", () => {
    const slots = new NodeSlots(1);
    const started: string[] = [];
    slots.request(user("a", 5, started));
    const b = user("b", 5, started);
    slots.request(b);
    slots.request(b);
    expect(slots.waiting).toBe(2);
    slots.release();
    slots.release();
    expect(started).toEqual(["a", "a", "b"]);
    slots.release();
    expect(started).toEqual(["a", "a", "b", "a"]);
  });

  it("gives a slot released during a start to the next run, without recursion", async () => {
    const slots = new NodeSlots(1);
    const started: string[] = [];
    let left = 1000;
    // Each node ends as soon as it starts (a handler that returns at once).
    const quick: SlotUser = {
      takeSlot() {
        left--;
        started.push("quick");
        slots.release();
        return left > 0 ? "more" : "last";
      },
    };
    slots.request(quick);
    // All of them, some perhaps in later turns of the event loop (see the next test).
    await waitFor("every node to start", () => started.length === 1000);
    expect(slots.used).toBe(0);
  });

  it("starts nodes that end at once for a few ms per turn of the event loop, then yields", async () => {
    const slots = new NodeSlots(1);
    let started = 0;
    let turns = 0;
    let ticking = true;
    const tick = () => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const busy: SlotUser = {
      takeSlot() {
        started++;
        // Each start costs 1 ms: 2,000 of them would hold the event loop for 2 s.
        const until = performance.now() + 1;
        while (performance.now() < until);
        slots.release();
        return started < 200 ? "more" : "last";
      },
    };
    slots.request(busy);
    const startedAtOnce = started;
    await waitFor("all 200 starts", () => started === 200);
    ticking = false;
    expect(startedAtOnce).toBeLessThan(200);
    expect(turns).toBeGreaterThan(1);
  });

  it("forgets waiting runs on clear, and refuses a limit below one", () => {
    const slots = new NodeSlots(1);
    const started: string[] = [];
    slots.request(user("a", 3, started));
    slots.clear();
    slots.release();
    expect(started).toEqual(["a"]);
    expect(() => new NodeSlots(0)).toThrow(RangeError);
  });
});

describe("node slots in the engine", () => {
  const engine = createTestEngine({ maxConcurrentNodes: 2 });
  afterEach(() => engine.stop(0));

  it("lets a small run take turns with a big one that holds every slot", async () => {
    // Each call of the held action waits until the test lets one go.
    const held: (() => void)[] = [];
    const calls: string[] = [];
    engine.actions.register({
      name: "held",
      run: (ctx) =>
        new Promise((resolve) => {
          calls.push(ctx.runId);
          held.push(() => resolve({ ok: true }));
        }),
    });
    const star = (name: string, size: number) => ({
      name,
      nodes: [
        trigger(),
        ...Array.from({ length: size }, (_, i) => node(`a${i}`, "ACTION", { action: "held" })),
      ],
      edges: Array.from({ length: size }, (_, i) => edge("t", `a${i}`)),
    });
    const big = await engine.runPipeline(await createPipeline(engine, star("big", 50)));
    await waitFor("the big run to hold both slots", () => held.length === 2);
    const small = await engine.runPipeline(await createPipeline(engine, star("small", 2)));
    const smallEvents = collectEvents(engine, small.id);
    // With the slots in turn, the small run's two nodes start within the next two releases;
    // in the order nodes became ready they would wait behind all 48 of the big run's.
    for (let released = 0; released < 4; released++) {
      held.shift()!();
      await waitFor("the released slot to be taken", () => held.length === 2);
    }
    expect(calls.filter((id) => id === small.id)).toHaveLength(2);
    await waitFor("both runs to end, letting their calls go", async () => {
      for (const release of held.splice(0)) release();
      const runs = await Promise.all([
        getRun(engine.store, big.id),
        getRun(engine.store, small.id),
      ]);
      return runs.every((run) => run.status === "COMPLETED");
    });
    expect((await smallEvents).at(-1)?.type).toBe("RUN_COMPLETED");
    expect(calls.filter((id) => id === big.id)).toHaveLength(50);
  });
});
