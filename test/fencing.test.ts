import { expect, it } from "vitest";
import type { Engine } from "../src/engine/engine.ts";
import { availableProviders, describeProviders } from "./helpers/databases.ts";
import { createPipeline, engineEach, getRun } from "./helpers/engine.ts";
import { waitFor } from "./helpers/wait.ts";

const providers = await availableProviders();

let engine: Engine;
const newEngine = engineEach();

describeProviders(providers)("lease fencing on %s", (provider) => {
  it("an instance that lost a run's lease writes nothing more for it and stops executing it", async () => {
    engine = await newEngine(provider, { leaseMs: 60_000 });
    const id = await createPipeline(engine, {
      name: "fenced",
      nodes: [
        { id: "start", type: "TRIGGER" },
        { id: "wait", type: "DELAY", config: { seconds: 1 } },
        { id: "after", type: "PARALLEL" },
      ],
      edges: [
        { source: "start", target: "wait" },
        { source: "wait", target: "after" },
      ],
    });
    const started = await engine.runPipeline(id, null);
    const store = engine.store;
    await waitFor("the delay to start", async () => (await store.lastSeq(started.id)) === 4);
    // Another instance takes the run over (as if this one had been cut off past its lease).
    const future = new Date(Date.now() + 120_000);
    const taken = await store.claimRun(started.id, {
      ownerId: "someone-else",
      now: future,
      leaseUntil: new Date(future.getTime() + 60_000),
    });
    expect(taken?.ownerId).toBe("someone-else");
    // The delay ends; this instance's writes for the run are refused and it stops.
    await waitFor("the engine to let the run go", () => engine.activeRuns === 0);
    // Stopping flushes whatever the engine still had to write: for this run, nothing.
    await engine.stop(0);
    expect(await store.lastSeq(started.id)).toBe(4);
    const run = await getRun(store, started.id);
    expect([run.status, run.ownerId]).toEqual(["RUNNING", "someone-else"]);
    const nodeRuns = (await store.getNodeRuns([started.id])).get(started.id)!;
    expect(nodeRuns.map((n) => [n.nodeId, n.status]).sort()).toEqual([
      ["start", "COMPLETED"],
      ["wait", "RUNNING"],
    ]);
  });
});
