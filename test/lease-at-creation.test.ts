/**
 * A run created here is renewed before its first node is called when its creation outlasted a
 * renewal interval (issue 15: on a loaded machine the first HTTP node of a run was called by
 * both instances). The lease of a run being created is counted from before the creation's
 * transaction, and the heartbeat renews the run only once it is under way here; another
 * instance's poll could take it in between, and both then executed it.
 *
 * The clock is the only thing faked (Date): "the creation took 10 s" is a jump of it while the
 * creation is held after its commit. The other instance is its claim, made on the store as its
 * poll would make it.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Engine } from "../src/engine/engine.ts";
import { MemoryStore } from "../src/store/memory.ts";
import type { NewRunRequest } from "../src/store/types.ts";
import { createPipeline, createTestEngine, getRun } from "./helpers/engine.ts";
import { waitFor } from "./helpers/wait.ts";

const LEASE_MS = 600;

/** A memory store whose run creation can be held after it has committed. */
class HeldCreationStore extends MemoryStore {
  hold = false;
  #committed: (() => void)[] = [];
  #release: (() => void)[] = [];

  override async createRuns(requests: readonly NewRunRequest[]) {
    const created = await super.createRuns(requests);
    if (this.hold) {
      for (const resolve of this.#committed.splice(0)) resolve();
      await new Promise<void>((resolve) => this.#release.push(resolve));
    }
    return created;
  }

  /** Resolves once a held creation has committed. */
  committed(): Promise<void> {
    return new Promise((resolve) => this.#committed.push(resolve));
  }

  release(): void {
    this.hold = false;
    for (const resolve of this.#release.splice(0)) resolve();
  }
}

let store: HeldCreationStore;
let engine: Engine;
let calls: string[];

async function countingPipeline(): Promise<string> {
  engine.actions.register({
    name: "count",
    run: (context) => {
      calls.push(context.runId);
      return { ok: true };
    },
  });
  return createPipeline(engine, {
    name: "created-under-load",
    nodes: [
      { id: "start", type: "TRIGGER" },
      { id: "call", type: "ACTION", config: { action: "count" } },
    ],
    edges: [{ source: "start", target: "call" }],
  });
}

/** Starts a run whose creation commits, then "takes 10 s" before the engine gets it back. */
async function startSlowly(pipelineId: string) {
  store.hold = true;
  const committed = store.committed();
  const starting = engine.runPipeline(pipelineId, null);
  await committed;
  vi.setSystemTime(Date.now() + 10_000);
  // Wrapped: returned as it is, the promise would be awaited here, before its release.
  return { starting };
}

const completed = (runId: string) =>
  waitFor("the run to complete", async () => (await getRun(store, runId)).status === "COMPLETED");

/** The other instance's poll, at the clock's now. */
function claimElsewhere() {
  const now = new Date();
  return store.claimRuns(10, {
    ownerId: "elsewhere",
    now,
    leaseUntil: new Date(now.getTime() + 60_000),
  });
}

describe("a run whose creation outlasted a renewal interval", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"] });
    store = new HeldCreationStore();
    calls = [];
  });
  afterEach(async () => {
    store.release();
    await engine?.stop(0);
    vi.useRealTimers();
  });

  it("taken by another instance meanwhile: is not executed here, so its node is called once", async () => {
    // Its own poll would take the run back first; only the other instance polls here.
    engine = createTestEngine({ store, leaseMs: LEASE_MS, pollMs: 3_600_000 });
    const pipelineId = await countingPipeline();
    const { starting } = await startSlowly(pipelineId);

    const taken = await claimElsewhere();
    expect(taken.map((r) => r.ownerId)).toEqual(["elsewhere"]);
    store.release();
    const run = await starting;

    expect(run.id).toBe(taken[0]!.id);
    expect(engine.activeRuns).toBe(0);
    expect(calls).toEqual([]);
    // Nothing written for it here: the run is the other instance's, as it was created.
    expect(await store.lastSeq(run.id)).toBe(0);
    expect((await getRun(store, run.id)).ownerId).toBe("elsewhere");
  });

  it("not taken meanwhile: renewed before its first node, then no other instance can take it", async () => {
    engine = createTestEngine({ store, leaseMs: LEASE_MS, pollMs: 3_600_000 });
    const pipelineId = await countingPipeline();
    const { starting } = await startSlowly(pipelineId);
    store.release();
    const run = await starting;

    // Renewed from the clock's now: the other instance's poll finds nothing to take.
    expect(await claimElsewhere()).toEqual([]);
    await completed(run.id);
    expect(calls).toEqual([run.id]);
  });

  it("taken back by this instance's own poll meanwhile: executed once", async () => {
    engine = createTestEngine({ store, leaseMs: LEASE_MS, pollMs: 20 });
    const pipelineId = await countingPipeline();
    const { starting } = await startSlowly(pipelineId);
    // The poll finds the lease lapsed and resumes the run while its creation is still held.
    await waitFor("the poll's execution to call the node", () => calls.length === 1);
    store.release();
    const run = await starting;

    await completed(run.id);
    expect(calls).toEqual([run.id]);
    expect(
      (await store.getEvents(run.id, 0, 100)).filter((e) => e.type === "RUN_STARTED"),
    ).toHaveLength(1);
  });

  it("created within a renewal interval: executed at once, with no renewal first", async () => {
    // No heartbeat comes during the test: any renewal would be the creation's.
    engine = createTestEngine({ store, leaseMs: 3_600_000, pollMs: 3_600_000 });
    const pipelineId = await countingPipeline();
    const renewLeases = vi.spyOn(store, "renewLeases");
    const run = await engine.runPipeline(pipelineId, null);
    await completed(run.id);
    expect(calls).toEqual([run.id]);
    expect(renewLeases).not.toHaveBeenCalled();
  });
});
