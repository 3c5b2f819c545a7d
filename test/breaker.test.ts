import { describe, expect, it } from "vitest";
import type { BreakerRecord } from "../src/domain/records.ts";
import {
  type Admission,
  admit,
  afterAbandon,
  afterFailure,
  afterSuccess,
  type BreakerSettings,
  STALE_TRIAL_MS,
} from "../src/engine/breaker.ts";
import { BreakerGuard, type RunBreakers } from "../src/engine/breaker-guard.ts";
import { BreakerOpenError } from "../src/engine/errors.ts";
import { MemoryStore } from "../src/store/memory.ts";

const settings: BreakerSettings = { failureThreshold: 3, recoveryTimeoutMs: 60_000 };
const key = { pipelineId: "p1", nodeId: "fetch" };
const T0 = Date.parse("2025-03-01T12:00:00.000Z");
const at = (ms: number) => new Date(T0 + ms);

/** Three failures in a row from nothing: the row of a breaker that opened at `at(2000)`. */
function opened(): BreakerRecord {
  let row: BreakerRecord | null = null;
  for (let i = 0; i < 3; i++) row = afterFailure(row, false, settings, at(i * 1000), key);
  return row!;
}

function refusal(admission: Admission): BreakerOpenError {
  if (admission.admitted) throw new Error("expected the call to be refused");
  return admission.error;
}

describe("breaker transitions", () => {
  it("admits every call while there is no row or the breaker is CLOSED, writing nothing", () => {
    expect(admit(null, settings, at(0))).toStrictEqual({
      admission: { admitted: true, trial: false },
      next: null,
    });
    const closedWithFailures = afterFailure(null, false, settings, at(0), key);
    expect(admit(closedWithFailures, settings, at(1))).toStrictEqual({
      admission: { admitted: true, trial: false },
      next: null,
    });
  });

  it("counts consecutive failures while CLOSED and opens exactly at failureThreshold", () => {
    const first = afterFailure(null, false, settings, at(0), key);
    expect(first).toStrictEqual({
      pipelineId: "p1",
      nodeId: "fetch",
      state: "CLOSED",
      failureCount: 1,
      openedAt: null,
      trialStartedAt: null,
      updatedAt: at(0),
    });
    const second = afterFailure(first, false, settings, at(1000), key);
    expect(second).toMatchObject({ state: "CLOSED", failureCount: 2, openedAt: null });
    const third = afterFailure(second, false, settings, at(2000), key);
    expect(third).toStrictEqual({
      pipelineId: "p1",
      nodeId: "fetch",
      state: "OPEN",
      failureCount: 3,
      openedAt: at(2000),
      trialStartedAt: null,
      updatedAt: at(2000),
    });
  });

  it("opens on the first failure with failureThreshold 1", () => {
    const row = afterFailure(null, false, { ...settings, failureThreshold: 1 }, at(0), key);
    expect(row).toMatchObject({ state: "OPEN", failureCount: 1, openedAt: at(0) });
  });

  it("resets the count on a success while CLOSED, so failures must be consecutive", () => {
    let row = afterFailure(null, false, settings, at(0), key);
    row = afterFailure(row, false, settings, at(1), key);
    const reset = afterSuccess(row, false, at(2));
    expect(reset).toStrictEqual({ ...row, failureCount: 0, updatedAt: at(2) });
    row = afterFailure(reset, false, settings, at(3), key);
    row = afterFailure(row, false, settings, at(4), key);
    expect(row).toMatchObject({ state: "CLOSED", failureCount: 2 });
    // Nothing to write for a clean breaker or none at all.
    expect(afterSuccess(reset, false, at(5))).toBeNull();
    expect(afterSuccess(null, false, at(5))).toBeNull();
  });

  it("refuses while OPEN with a BreakerOpenError naming the node and the reopen time", () => {
    const row = opened();
    const reopen = at(2000 + 60_000);
    for (const now of [at(2000), at(2000 + 59_999)]) {
      const decision = admit(row, settings, now);
      expect(decision.next).toBeNull();
      const error = refusal(decision.admission);
      expect(error).toBeInstanceOf(BreakerOpenError);
      expect(error.code).toBe("BREAKER_OPEN");
      expect(error.retryable).toBe(false);
      expect(error.message).toBe(
        `circuit breaker of node "fetch" is OPEN until ${reopen.toISOString()}: not called`,
      );
    }
  });

  it("admits one trial at openedAt + recoveryTimeoutMs and moves to HALF_OPEN", () => {
    const row = opened();
    const now = at(2000 + 60_000);
    expect(admit(row, settings, now)).toStrictEqual({
      admission: { admitted: true, trial: true },
      next: { ...row, state: "HALF_OPEN", trialStartedAt: now, updatedAt: now },
    });
  });

  it("refuses a second call while the trial is under way", () => {
    const trialStart = at(62_000);
    const halfOpen = admit(opened(), settings, trialStart).next!;
    const decision = admit(halfOpen, settings, at(62_000 + 1_000));
    expect(decision.next).toBeNull();
    const error = refusal(decision.admission);
    expect(error).toBeInstanceOf(BreakerOpenError);
    expect(error.message).toBe(
      'circuit breaker of node "fetch" is HALF_OPEN and a trial call is under way: not called',
    );
  });

  it("closes with a count of 0 when the trial succeeds", () => {
    const halfOpen = admit(opened(), settings, at(62_000)).next!;
    expect(afterSuccess(halfOpen, true, at(63_000))).toStrictEqual({
      pipelineId: "p1",
      nodeId: "fetch",
      state: "CLOSED",
      failureCount: 0,
      openedAt: null,
      trialStartedAt: null,
      updatedAt: at(63_000),
    });
  });

  it("re-opens with a new openedAt when the trial fails, so the wait starts again", () => {
    const halfOpen = admit(opened(), settings, at(62_000)).next!;
    const reopened = afterFailure(halfOpen, true, settings, at(63_000), key);
    expect(reopened).toStrictEqual({
      ...halfOpen,
      state: "OPEN",
      failureCount: 4,
      openedAt: at(63_000),
      trialStartedAt: null,
      updatedAt: at(63_000),
    });
    const early = admit(reopened, settings, at(63_000 + 59_999));
    expect(early.admission.admitted).toBe(false);
    expect(refusal(early.admission).message).toContain(at(123_000).toISOString());
    expect(admit(reopened, settings, at(123_000)).admission).toStrictEqual({
      admitted: true,
      trial: true,
    });
  });

  it("ignores late outcomes of calls that were not the trial", () => {
    const open = opened();
    // A success admitted before the breaker opened proves little: nothing changes.
    expect(afterSuccess(open, false, at(3000))).toBeNull();
    const halfOpen = admit(open, settings, at(62_000)).next!;
    expect(afterSuccess(halfOpen, false, at(62_500))).toBeNull();
    // A late failure while OPEN is counted but does not restart the wait.
    expect(afterFailure(open, false, settings, at(3000), key)).toStrictEqual({
      ...open,
      failureCount: 4,
      updatedAt: at(3000),
    });
  });

  it("returns an abandoned trial to OPEN, and the next call is admitted as a trial at once", () => {
    const halfOpen = admit(opened(), settings, at(62_000)).next!;
    const back = afterAbandon(halfOpen, true, at(62_500));
    expect(back).toStrictEqual({
      ...halfOpen,
      state: "OPEN",
      trialStartedAt: null,
      updatedAt: at(62_500),
    });
    const next = admit(back, settings, at(62_500));
    expect(next.admission).toStrictEqual({ admitted: true, trial: true });
    expect(next.next).toMatchObject({ state: "HALF_OPEN", trialStartedAt: at(62_500) });
  });

  it("ignores an abandon that is not a HALF_OPEN trial", () => {
    const open = opened();
    const halfOpen = admit(open, settings, at(62_000)).next!;
    expect(afterAbandon(halfOpen, false, at(62_500))).toBeNull();
    expect(afterAbandon(open, true, at(62_500))).toBeNull();
    expect(afterAbandon(null, true, at(62_500))).toBeNull();
  });

  it("lets a call take over a HALF_OPEN trial older than STALE_TRIAL_MS", () => {
    const trialStart = 62_000;
    const halfOpen = admit(opened(), settings, at(trialStart)).next!;
    expect(admit(halfOpen, settings, at(trialStart + STALE_TRIAL_MS - 1)).admission.admitted).toBe(
      false,
    );
    const now = at(trialStart + STALE_TRIAL_MS);
    expect(admit(halfOpen, settings, now)).toStrictEqual({
      admission: { admitted: true, trial: true },
      next: { ...halfOpen, trialStartedAt: now, updatedAt: now },
    });
  });
});

describe("BreakerGuard over a MemoryStore", () => {
  function setup() {
    const store = new MemoryStore();
    const clock = { now: at(0) };
    const guard = new BreakerGuard(store, { now: () => clock.now });
    const row = () => store.getBreaker("p1", "fetch");
    // One run's view per pipeline, kept for the whole test: it must stay current by itself.
    const views = new Map<string, RunBreakers>();
    const b = (pipelineId: string) => {
      if (!views.has(pipelineId)) views.set(pipelineId, guard.forRun(pipelineId));
      return views.get(pipelineId)!;
    };
    return { store, clock, guard, row, b };
  }

  it("runs the whole story: count, open, refuse, trial, re-open, abandon, close", async () => {
    const { clock, guard, row, b } = setup();

    expect(await b("p1").admit("fetch", settings)).toStrictEqual({
      admitted: true,
      trial: false,
      clean: true,
    });
    await b("p1").failed("fetch", false, settings);
    clock.now = at(1000);
    expect(await b("p1").failed("fetch", false, settings)).toMatchObject({
      state: "CLOSED",
      failureCount: 2,
    });
    expect(await b("p1").admit("fetch", settings)).toStrictEqual({
      admitted: true,
      trial: false,
      clean: false,
    });
    clock.now = at(2000);
    const open = await b("p1").failed("fetch", false, settings);
    expect(open).toMatchObject({ state: "OPEN", failureCount: 3, openedAt: at(2000) });
    expect(await row()).toStrictEqual(open);

    clock.now = at(2000 + 59_999);
    const refused = await b("p1").admit("fetch", settings);
    expect(refusal(refused).message).toBe(
      `circuit breaker of node "fetch" is OPEN until ${at(62_000).toISOString()}: not called`,
    );
    expect(await row()).toStrictEqual(open);

    clock.now = at(62_000);
    expect(await b("p1").admit("fetch", settings)).toStrictEqual({
      admitted: true,
      trial: true,
    });
    expect(await row()).toMatchObject({ state: "HALF_OPEN", trialStartedAt: at(62_000) });
    clock.now = at(62_100);
    expect(refusal(await b("p1").admit("fetch", settings)).message).toContain("HALF_OPEN");

    clock.now = at(63_000);
    expect(await b("p1").failed("fetch", true, settings)).toMatchObject({
      state: "OPEN",
      openedAt: at(63_000),
      trialStartedAt: null,
    });
    clock.now = at(63_000 + 59_999);
    expect((await b("p1").admit("fetch", settings)).admitted).toBe(false);

    clock.now = at(123_000);
    expect(await b("p1").admit("fetch", settings)).toStrictEqual({
      admitted: true,
      trial: true,
    });
    await b("p1").abandoned("fetch", true);
    expect(await row()).toMatchObject({
      state: "OPEN",
      openedAt: at(63_000),
      trialStartedAt: null,
    });
    expect(await b("p1").admit("fetch", settings)).toStrictEqual({
      admitted: true,
      trial: true,
    });

    clock.now = at(124_000);
    await b("p1").succeeded("fetch", true);
    expect(await row()).toStrictEqual({
      pipelineId: "p1",
      nodeId: "fetch",
      state: "CLOSED",
      failureCount: 0,
      openedAt: null,
      trialStartedAt: null,
      updatedAt: at(124_000),
    });
    expect(await b("p1").admit("fetch", settings)).toStrictEqual({
      admitted: true,
      trial: false,
      clean: true,
    });
  });

  it("resets the count on a success while CLOSED", async () => {
    const { guard, row, b } = setup();
    await b("p1").failed("fetch", false, settings);
    await b("p1").failed("fetch", false, settings);
    await b("p1").succeeded("fetch", false);
    expect(await row()).toMatchObject({ state: "CLOSED", failureCount: 0 });
    expect(await b("p1").admit("fetch", settings)).toStrictEqual({
      admitted: true,
      trial: false,
      clean: true,
    });
  });

  it("makes only one of two concurrent calls the trial", async () => {
    const { clock, guard, b } = setup();
    for (let i = 0; i < 3; i++) await b("p1").failed("fetch", false, settings);
    clock.now = at(60_000);
    const admissions = await Promise.all([
      b("p1").admit("fetch", settings),
      b("p1").admit("fetch", settings),
    ]);
    expect(admissions.map((a) => (a.admitted ? (a.trial ? "trial" : "call") : "refused"))).toEqual([
      "trial",
      "refused",
    ]);
  });

  it("lets a call take over a stale trial through the store", async () => {
    const { clock, guard, row, b } = setup();
    for (let i = 0; i < 3; i++) await b("p1").failed("fetch", false, settings);
    clock.now = at(60_000);
    expect((await b("p1").admit("fetch", settings)).admitted).toBe(true);
    clock.now = at(60_000 + STALE_TRIAL_MS - 1);
    expect((await b("p1").admit("fetch", settings)).admitted).toBe(false);
    clock.now = at(60_000 + STALE_TRIAL_MS);
    expect(await b("p1").admit("fetch", settings)).toStrictEqual({
      admitted: true,
      trial: true,
    });
    expect(await row()).toMatchObject({ state: "HALF_OPEN", trialStartedAt: clock.now });
  });

  it("does not write when a non-trial call is abandoned", async () => {
    const { guard, row, b } = setup();
    await b("p1").failed("fetch", false, settings);
    const before = await row();
    await b("p1").abandoned("fetch", false);
    expect(await row()).toStrictEqual(before);
  });

  it("reset() closes the breaker and clears its count", async () => {
    const { clock, guard, row, b } = setup();
    for (let i = 0; i < 3; i++) await b("p1").failed("fetch", false, settings);
    expect(await row()).toMatchObject({ state: "OPEN" });
    clock.now = at(5_000);
    const expected: BreakerRecord = {
      pipelineId: "p1",
      nodeId: "fetch",
      state: "CLOSED",
      failureCount: 0,
      openedAt: null,
      trialStartedAt: null,
      updatedAt: at(5_000),
    };
    expect(await guard.reset("p1", "fetch")).toStrictEqual(expected);
    expect(await row()).toStrictEqual(expected);
    expect(await b("p1").admit("fetch", settings)).toStrictEqual({
      admitted: true,
      trial: false,
      clean: true,
    });
    // reset of a breaker that never had a row writes a CLOSED one.
    expect(await guard.reset("p1", "other")).toMatchObject({ state: "CLOSED", failureCount: 0 });
  });

  it("keeps one breaker per pipeline node", async () => {
    const { guard, store, b } = setup();
    for (let i = 0; i < 3; i++) await b("p1").failed("fetch", false, settings);
    expect((await b("p1").admit("fetch", settings)).admitted).toBe(false);
    expect(await b("p1").admit("other", settings)).toStrictEqual({
      admitted: true,
      trial: false,
      clean: true,
    });
    expect(await b("p2").admit("fetch", settings)).toStrictEqual({
      admitted: true,
      trial: false,
      clean: true,
    });
    expect(await store.getBreaker("p2", "fetch")).toBeNull();
  });
});
