/** The Store contract on every available provider: the counts behind the metrics gauges. */
import { expect, it } from "vitest";
import { breaker, describeStore, storeShortcuts } from "./helpers/store-fixtures.ts";

describeStore("store", (store) => {
  const { createPipeline, createRun } = storeShortcuts(() => store);

  it("countStates counts active runs by status and stored breakers by state", async () => {
    expect(await store.countStates()).toEqual({
      runs: { QUEUED: 0, RUNNING: 0 },
      breakers: { CLOSED: 0, OPEN: 0, HALF_OPEN: 0 },
    });
    const pipeline = await createPipeline();
    const other = await createPipeline("other");
    await createRun(pipeline);
    await createRun(other);
    await createRun(pipeline, { status: "RUNNING", startedAt: new Date() });
    for (const status of ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"] as const)
      await createRun(pipeline, { status, startedAt: new Date(), completedAt: new Date() });
    const states = [
      ["a", "OPEN"],
      ["b", "OPEN"],
      ["c", "HALF_OPEN"],
      ["d", "CLOSED"],
    ] as const;
    for (const [nodeId, state] of states)
      await store.updateBreaker(pipeline.id, nodeId, () => breaker(pipeline.id, nodeId, { state }));
    await store.updateBreaker(other.id, "a", () => breaker(other.id, "a", { state: "OPEN" }));

    expect(await store.countStates()).toEqual({
      runs: { QUEUED: 2, RUNNING: 1 },
      breakers: { CLOSED: 1, OPEN: 3, HALF_OPEN: 1 },
    });
  });
});
