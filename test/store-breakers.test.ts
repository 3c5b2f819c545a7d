/** The Store contract on every available provider: circuit breaker rows per pipeline node. */
import { describe, expect, it } from "vitest";
import type { BreakerRecord } from "../src/domain/records.ts";
import { at, breaker, describeStore, sorted, storeShortcuts } from "./helpers/store-fixtures.ts";

describeStore("store", (store) => {
  const { createPipeline } = storeShortcuts(() => store);

  describe("breakers", () => {
    it("updateBreaker inserts, then read-modify-writes the current row", async () => {
      const pipeline = await createPipeline();
      expect(await store.getBreaker(pipeline.id, "fetch")).toBeNull();

      const seen: (BreakerRecord | null)[] = [];
      const first = breaker(pipeline.id, "fetch", { failureCount: 1, updatedAt: at(1) });
      const inserted = await store.updateBreaker(pipeline.id, "fetch", (current) => {
        seen.push(current);
        return first;
      });
      expect(inserted).toEqual(first);
      expect(await store.getBreaker(pipeline.id, "fetch")).toEqual(first);

      const opened = await store.updateBreaker(pipeline.id, "fetch", (current) => {
        seen.push(current);
        return (
          current && {
            ...current,
            state: "OPEN",
            failureCount: current.failureCount + 1,
            openedAt: at(2),
            updatedAt: at(2),
          }
        );
      });
      const expectedOpen = breaker(pipeline.id, "fetch", {
        state: "OPEN",
        failureCount: 2,
        openedAt: at(2),
        updatedAt: at(2),
      });
      expect(opened).toEqual(expectedOpen);

      const trial = await store.updateBreaker(pipeline.id, "fetch", (current) => {
        seen.push(current);
        return current && { ...current, state: "HALF_OPEN", trialStartedAt: at(3) };
      });
      const expectedTrial = { ...expectedOpen, state: "HALF_OPEN", trialStartedAt: at(3) };
      expect(trial).toEqual(expectedTrial);
      expect(seen).toEqual([null, first, expectedOpen]);
      expect(await store.getBreaker(pipeline.id, "fetch")).toEqual(expectedTrial);
    });

    it("updateBreaker leaves the row as it is when the change returns null", async () => {
      const pipeline = await createPipeline();
      expect(await store.updateBreaker(pipeline.id, "fetch", () => null)).toBeNull();
      expect(await store.getBreaker(pipeline.id, "fetch")).toBeNull();

      const row = breaker(pipeline.id, "fetch", {
        state: "OPEN",
        failureCount: 5,
        openedAt: at(4),
      });
      await store.updateBreaker(pipeline.id, "fetch", () => row);
      let seen: BreakerRecord | null = null;
      const kept = await store.updateBreaker(pipeline.id, "fetch", (current) => {
        seen = current;
        return null;
      });
      expect(seen).toEqual(row);
      expect(kept).toEqual(row);
      expect(await store.getBreaker(pipeline.id, "fetch")).toEqual(row);
    });

    it("getBreakers groups by pipeline, ordered by nodeId", async () => {
      const a = await createPipeline("a");
      const b = await createPipeline("b");
      const none = await createPipeline("none");
      for (const nodeId of ["zeta", "alpha", "mid"]) {
        await store.updateBreaker(a.id, nodeId, () => breaker(a.id, nodeId, { failureCount: 1 }));
      }
      await store.updateBreaker(b.id, "fetch", () => breaker(b.id, "fetch", { state: "OPEN" }));

      const groups = await store.getBreakers([b.id, a.id, none.id]);
      expect(sorted([...groups.keys()])).toEqual(sorted([a.id, b.id, none.id]));
      expect(groups.get(a.id)).toEqual(
        ["alpha", "mid", "zeta"].map((nodeId) => breaker(a.id, nodeId, { failureCount: 1 })),
      );
      expect(groups.get(b.id)).toEqual([breaker(b.id, "fetch", { state: "OPEN" })]);
      expect(groups.get(none.id)).toEqual([]);
      expect((await store.getBreakers([])).size).toBe(0);
    });
  });
});
