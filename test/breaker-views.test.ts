/**
 * Breakers read once per run and kept current by the writes that change them (breaker-guard.ts),
 * one abort fan-out per run instead of a listener per node (abort-group.ts), and queued runs
 * taken as runs end (ownership.ts).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { PipelineInput } from "../src/domain/definition.ts";
import { BreakerGuard } from "../src/engine/breaker-guard.ts";
import { createMemoryBus } from "../src/engine/bus.ts";
import { PermanentError } from "../src/engine/errors.ts";
import { MemoryStore } from "../src/store/memory.ts";
import { createPipeline, engineEach, runToEnd } from "./helpers/engine.ts";
import { waitFor } from "./helpers/wait.ts";

const settings = { failureThreshold: 2, recoveryTimeoutMs: 60_000 };

/** A TRIGGER and `width` ACTION nodes after it, all calling the action `name`. */
function star(width: number, name: string): PipelineInput {
  const ids = Array.from({ length: width }, (_, i) => `a${i}`);
  return {
    name: "star",
    nodes: [
      { id: "t", type: "TRIGGER", config: {} },
      ...ids.map((id) => ({ id, type: "ACTION" as const, config: { action: name } })),
    ],
    edges: ids.map((id) => ({ source: "t", target: id })),
  };
}

const newEngine = engineEach();

describe("a run's breakers", () => {
  it("are read once for a run of 200 ACTION nodes, and never one by one", async () => {
    const store = new MemoryStore();
    const engine = await newEngine("memory", { store });
    engine.actions.register({ name: "noop", run: async () => ({ ok: true }) });
    const id = await createPipeline(engine, star(200, "noop"));
    const getBreakers = vi.spyOn(store, "getBreakers");
    const getBreaker = vi.spyOn(store, "getBreaker");
    const updateBreaker = vi.spyOn(store, "updateBreaker");

    const { run } = await runToEnd(engine, id);

    expect(run.status).toBe("COMPLETED");
    expect(getBreakers.mock.calls).toEqual([[[id]]]);
    expect(getBreaker).not.toHaveBeenCalled();
    // Clean breakers: a success has nothing to write.
    expect(updateBreaker).not.toHaveBeenCalled();
  });

  it("see the failures of other runs as they are counted, without reading again", async () => {
    const store = new MemoryStore();
    const guard = new BreakerGuard(store);
    const first = guard.forRun("p1");
    const second = guard.forRun("p1");
    expect(await second.admit("fetch", settings)).toEqual({
      admitted: true,
      trial: false,
      clean: true,
    });
    const reads = vi.spyOn(store, "getBreakers");

    await first.failed("fetch", false, settings);
    expect(await second.admit("fetch", settings)).toEqual({
      admitted: true,
      trial: false,
      clean: false,
    });
    await first.failed("fetch", false, settings);
    const refused = await second.admit("fetch", settings);

    expect(refused.admitted).toBe(false);
    // `first` had no need to read (it only counted); `second` never read again.
    expect(reads.mock.calls.length).toBe(0);
    second.release();
    // A released view is no longer kept current.
    await guard.reset("p1", "fetch");
    expect((await second.admit("fetch", settings)).admitted).toBe(false);
    expect(await first.admit("fetch", settings)).toEqual({
      admitted: true,
      trial: false,
      clean: true,
    });
  });

  it("see another instance's changes through the bus, and not their own twice", async () => {
    const store = new MemoryStore();
    const bus = createMemoryBus();
    const one = new BreakerGuard(store, { bus, instanceId: "one", maxAgeMs: Infinity });
    const two = new BreakerGuard(store, { bus, instanceId: "two", maxAgeMs: Infinity });
    const there = two.forRun("p1");
    await there.admit("fetch", settings);
    const reads = vi.spyOn(store, "getBreakers");
    const here = one.forRun("p1");

    await here.failed("fetch", false, settings);
    await here.failed("fetch", false, settings);

    expect((await there.admit("fetch", settings)).admitted).toBe(false);
    expect(reads).not.toHaveBeenCalled();
    await two.reset("p1", "fetch");
    expect(await here.admit("fetch", settings)).toEqual({
      admitted: true,
      trial: false,
      clean: true,
    });
    one.close();
    two.close();
  });

  describe("without a bus shared by the instances", () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it("are read again once the view is older than maxAgeMs", async () => {
      vi.useFakeTimers({ toFake: ["Date"] });
      const store = new MemoryStore();
      const one = new BreakerGuard(store, { instanceId: "one" });
      const two = new BreakerGuard(store, { instanceId: "two" });
      expect(two.maxAgeMs).toBe(1000);
      const there = two.forRun("p1");
      await there.admit("fetch", settings);
      const here = one.forRun("p1");
      await here.failed("fetch", false, settings);
      await here.failed("fetch", false, settings);

      vi.advanceTimersByTime(999);
      expect((await there.admit("fetch", settings)).admitted).toBe(true);
      vi.advanceTimersByTime(1);
      expect((await there.admit("fetch", settings)).admitted).toBe(false);
    });
  });

  it("open in one run and refuse the next run's calls on every store", async () => {
    const engine = await newEngine("memory");
    let calls = 0;
    engine.actions.register({
      name: "broken",
      run: async () => {
        calls++;
        throw new PermanentError("down", "DOWN");
      },
    });
    const id = await createPipeline(engine, {
      ...star(1, "broken"),
      breaker: { failureThreshold: 1, recoveryTimeoutMs: 60_000 },
    });
    const first = await runToEnd(engine, id);
    const second = await runToEnd(engine, id);

    expect([first.run.status, second.run.status]).toEqual(["FAILED", "FAILED"]);
    expect(second.run.error).toContain('circuit breaker of node "a0" is OPEN until');
    expect(calls).toBe(1);
  });
});

describe("a run's abort", () => {
  it("reaches 100 nodes in flight with no listener warning, and each handler's signal", async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on("warning", onWarning);
    try {
      const engine = await newEngine("memory", { maxConcurrentNodes: 200 });
      const signals: AbortSignal[] = [];
      engine.actions.register({
        name: "hold",
        run: ({ signal }) =>
          new Promise((_, reject) => {
            signals.push(signal);
            signal.addEventListener("abort", () => reject(signal.reason), { once: true });
          }),
      });
      const id = await createPipeline(engine, star(100, "hold"));
      const run = await engine.runPipeline(id, null);
      await waitFor("100 handlers called", () => signals.length === 100);

      await engine.cancelRun(run.id);
      await waitFor(
        "the run cancelled",
        async () => (await engine.store.getRuns([run.id]))[0]?.status === "CANCELLED",
      );

      expect(signals.filter((signal) => signal.aborted).length).toBe(100);
      // Let a warning emitted on the next tick arrive before looking.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).not.toContain("MaxListenersExceededWarning");
    } finally {
      process.off("warning", onWarning);
    }
  });
});

describe("runs beyond maxActiveRuns", () => {
  it("are taken as runs end here, not at the next poll", async () => {
    // A poll too slow to matter: only the runs that end can let the queued ones in.
    const engine = await newEngine("memory", { maxActiveRuns: 2, pollMs: 600_000 });
    engine.actions.register({ name: "noop", run: async () => ({ ok: true }) });
    const id = await createPipeline(engine, star(3, "noop"));
    const runs = await Promise.all(Array.from({ length: 10 }, () => engine.runPipeline(id, null)));
    expect(runs.filter((run) => run.status === "QUEUED").length).toBeGreaterThanOrEqual(8);

    const statuses = await waitFor("all ten runs completed", async () => {
      const stored = await engine.store.getRuns(runs.map((run) => run.id));
      return stored.every((run) => run?.status === "COMPLETED") && stored.map((r) => r?.status);
    });
    expect(statuses).toEqual(Array(10).fill("COMPLETED"));
  });
});
