import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  AttemptTimeoutError,
  abortable,
  abortError,
  isRetryable,
  PermanentError,
  RetryableError,
  sleep,
} from "../src/engine/errors.ts";
import { type AttemptContext, executeWithRetry, type RetryOptions } from "../src/engine/retry.ts";

/** Follows a promise without awaiting it, so a test can look at it between timer steps. */
function track<T>(promise: Promise<T>) {
  const state: { status: "pending" | "fulfilled" | "rejected"; value?: T; error?: unknown } = {
    status: "pending",
  };
  promise.then(
    (value) => {
      state.status = "fulfilled";
      state.value = value;
    },
    (error: unknown) => {
      state.status = "rejected";
      state.error = error;
    },
  );
  return state;
}

const base: RetryOptions = {
  maxAttempts: 4,
  initialDelayMs: 100,
  maxDelayMs: 250,
  jitter: false,
  timeoutMs: null,
};

type RetryInfo = { attempt: number; delayMs: number; error: unknown };

/** An attempt function that records its contexts and throws `fail(attempt)` each time. */
function failing(fail: (attempt: number) => unknown) {
  const contexts: AttemptContext[] = [];
  const fn = vi.fn(async (context: AttemptContext): Promise<string> => {
    contexts.push(context);
    throw fail(context.attempt);
  });
  return { fn, contexts };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("executeWithRetry", () => {
  it("waits min(maxDelayMs, initialDelayMs × 2^(n−1)) between attempts and rejects with the last error", async () => {
    const { fn, contexts } = failing((n) => new RetryableError(`fail ${n}`));
    const retries: RetryInfo[] = [];
    const outcome = track(
      executeWithRetry(
        fn,
        { ...base, onRetry: (info) => retries.push(info) },
        new AbortController().signal,
      ),
    );

    await vi.advanceTimersByTimeAsync(0);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(retries.map(({ attempt, delayMs }) => ({ attempt, delayMs }))).toEqual([
      { attempt: 1, delayMs: 100 },
    ]);

    await vi.advanceTimersByTimeAsync(99);
    expect(fn).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(fn).toHaveBeenCalledTimes(2);

    await vi.advanceTimersByTimeAsync(199);
    expect(fn).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(fn).toHaveBeenCalledTimes(3);

    await vi.advanceTimersByTimeAsync(249);
    expect(fn).toHaveBeenCalledTimes(3);
    expect(outcome.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(fn).toHaveBeenCalledTimes(4);
    expect(outcome.status).toBe("rejected");
    expect(outcome.error).toBeInstanceOf(RetryableError);
    expect((outcome.error as Error).message).toBe("fail 4");

    expect(retries.map(({ attempt, delayMs }) => ({ attempt, delayMs }))).toEqual([
      { attempt: 1, delayMs: 100 },
      { attempt: 2, delayMs: 200 },
      { attempt: 3, delayMs: 250 },
    ]);
    expect(retries.map((info) => (info.error as Error).message)).toEqual([
      "fail 1",
      "fail 2",
      "fail 3",
    ]);
    expect(contexts.map((context) => context.attempt)).toEqual([1, 2, 3, 4]);

    await vi.advanceTimersByTimeAsync(10_000);
    expect(fn).toHaveBeenCalledTimes(4);
    expect(retries).toHaveLength(3);
  });

  it("resolves with the value of the attempt that succeeds, after exactly that many calls", async () => {
    const fn = vi.fn(async ({ attempt }: AttemptContext) => {
      if (attempt < 3) throw new RetryableError(`fail ${attempt}`);
      return { attempt };
    });
    const onRetry = vi.fn();
    const outcome = track(executeWithRetry(fn, { ...base, onRetry }, new AbortController().signal));

    await vi.advanceTimersByTimeAsync(299);
    expect(fn).toHaveBeenCalledTimes(2);
    expect(outcome.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome).toEqual({ status: "fulfilled", value: { attempt: 3 } });
    expect(fn).toHaveBeenCalledTimes(3);
    expect(onRetry).toHaveBeenCalledTimes(2);

    await vi.advanceTimersByTimeAsync(10_000);
    expect(fn).toHaveBeenCalledTimes(3);
  });

  it("calls once when the first attempt succeeds", async () => {
    const fn = vi.fn(async () => "ok");
    const onRetry = vi.fn();
    await expect(
      executeWithRetry(fn, { ...base, onRetry }, new AbortController().signal),
    ).resolves.toBe("ok");
    expect(fn).toHaveBeenCalledTimes(1);
    expect(onRetry).not.toHaveBeenCalled();
  });

  it("fails at once on a PermanentError: one call, no retry", async () => {
    const error = new PermanentError("bad config", "BAD_CONFIG");
    const { fn } = failing(() => error);
    const onRetry = vi.fn();
    const outcome = track(executeWithRetry(fn, { ...base, onRetry }, new AbortController().signal));

    await vi.advanceTimersByTimeAsync(0);
    expect(outcome).toEqual({ status: "rejected", error });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(onRetry).not.toHaveBeenCalled();
  });

  it("retries a plain Error like a retryable one", async () => {
    const { fn } = failing((n) => new Error(`plain ${n}`));
    const onRetry = vi.fn();
    const outcome = track(
      executeWithRetry(fn, { ...base, maxAttempts: 2, onRetry }, new AbortController().signal),
    );

    await vi.advanceTimersByTimeAsync(100);
    expect(fn).toHaveBeenCalledTimes(2);
    expect(onRetry).toHaveBeenCalledTimes(1);
    expect(onRetry.mock.calls[0]![0]).toMatchObject({ attempt: 1, delayMs: 100 });
    expect(outcome.status).toBe("rejected");
    expect((outcome.error as Error).message).toBe("plain 2");
  });

  it("calls once and never waits with maxAttempts 1", async () => {
    const { fn } = failing(() => new RetryableError("once"));
    const onRetry = vi.fn();
    const outcome = track(
      executeWithRetry(fn, { ...base, maxAttempts: 1, onRetry }, new AbortController().signal),
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome.status).toBe("rejected");
    expect((outcome.error as Error).message).toBe("once");
    expect(fn).toHaveBeenCalledTimes(1);
    expect(onRetry).not.toHaveBeenCalled();
  });

  it("numbers attempts on from previousAttempts", async () => {
    const { fn, contexts } = failing((n) => new RetryableError(`fail ${n}`));
    const retries: RetryInfo[] = [];
    const outcome = track(
      executeWithRetry(
        fn,
        { ...base, maxAttempts: 2, previousAttempts: 2, onRetry: (info) => retries.push(info) },
        new AbortController().signal,
      ),
    );

    await vi.advanceTimersByTimeAsync(1_000);
    expect(contexts.map((context) => context.attempt)).toEqual([3, 4]);
    expect(retries.map((info) => info.attempt)).toEqual([3]);
    expect(outcome.status).toBe("rejected");
    expect((outcome.error as Error).message).toBe("fail 4");
  });

  it("after previousAttempts, waits as the attempt numbers say (DESIGN: delay before n+1 is initial × 2^(n−1))", async () => {
    const { fn } = failing((n) => new RetryableError(`fail ${n}`));
    const retries: RetryInfo[] = [];
    const outcome = track(
      executeWithRetry(
        fn,
        {
          ...base,
          maxDelayMs: 10_000,
          maxAttempts: 3,
          previousAttempts: 2,
          onRetry: (info) => retries.push(info),
        },
        new AbortController().signal,
      ),
    );

    await vi.advanceTimersByTimeAsync(5_000);
    expect(outcome.status).toBe("rejected");
    // Attempt 3 failed: wait 100 × 2^2 before attempt 4; attempt 4 failed: 100 × 2^3.
    expect(retries.map(({ attempt, delayMs }) => ({ attempt, delayMs }))).toEqual([
      { attempt: 3, delayMs: 400 },
      { attempt: 4, delayMs: 800 },
    ]);
  });

  it("rejects at once when aborted during a backoff wait, and never calls again", async () => {
    const { fn } = failing(() => new RetryableError("down"));
    const controller = new AbortController();
    const reason = new Error("cancelled by user");
    const outcome = track(
      executeWithRetry(
        fn,
        { ...base, initialDelayMs: 60_000, maxDelayMs: 60_000 },
        controller.signal,
      ),
    );

    await vi.advanceTimersByTimeAsync(1_000);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(outcome.status).toBe("pending");

    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(5);
    expect(outcome).toEqual({ status: "rejected", error: reason });

    await vi.advanceTimersByTimeAsync(120_000);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it("rejects without calling when the signal is already aborted", async () => {
    const { fn } = failing(() => new RetryableError("down"));
    const controller = new AbortController();
    const reason = new Error("cancelled before start");
    controller.abort(reason);
    const outcome = track(executeWithRetry(fn, base, controller.signal));

    await vi.advanceTimersByTimeAsync(0);
    expect(outcome).toEqual({ status: "rejected", error: reason });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fn).not.toHaveBeenCalled();
  });

  it("passes the run's signal to attempts when there is no timeout", async () => {
    const controller = new AbortController();
    const signals: AbortSignal[] = [];
    await executeWithRetry(
      async ({ signal }) => {
        signals.push(signal);
        return 1;
      },
      base,
      controller.signal,
    );
    expect(signals).toEqual([controller.signal]);
  });

  describe("timeoutMs", () => {
    it("fails an attempt that never resolves with AttemptTimeoutError after timeoutMs, aborts its signal, and retries", async () => {
      const contexts: AttemptContext[] = [];
      const fn = vi.fn((context: AttemptContext) => {
        contexts.push(context);
        return new Promise<string>(() => {});
      });
      const retries: RetryInfo[] = [];
      const outcome = track(
        executeWithRetry(
          fn,
          { ...base, maxAttempts: 2, timeoutMs: 1_000, onRetry: (info) => retries.push(info) },
          new AbortController().signal,
        ),
      );

      await vi.advanceTimersByTimeAsync(999);
      expect(fn).toHaveBeenCalledTimes(1);
      expect(contexts[0]!.signal.aborted).toBe(false);
      expect(retries).toEqual([]);

      await vi.advanceTimersByTimeAsync(1);
      expect(contexts[0]!.signal.aborted).toBe(true);
      expect(retries).toHaveLength(1);
      expect(retries[0]).toMatchObject({ attempt: 1, delayMs: 100 });
      const first = retries[0]!.error;
      expect(first).toBeInstanceOf(AttemptTimeoutError);
      expect(first).toMatchObject({ code: "TIMEOUT", retryable: true, timeoutMs: 1_000 });
      expect((first as Error).message).toBe("attempt timed out after 1000 ms");

      await vi.advanceTimersByTimeAsync(99);
      expect(fn).toHaveBeenCalledTimes(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(fn).toHaveBeenCalledTimes(2);
      expect(contexts[1]!.attempt).toBe(2);
      expect(contexts[1]!.signal.aborted).toBe(false);

      await vi.advanceTimersByTimeAsync(999);
      expect(outcome.status).toBe("pending");
      await vi.advanceTimersByTimeAsync(1);
      expect(contexts[1]!.signal.aborted).toBe(true);
      expect(outcome.status).toBe("rejected");
      expect(outcome.error).toBeInstanceOf(AttemptTimeoutError);
      expect(outcome.error).toMatchObject({ code: "TIMEOUT" });
    });

    it("reports a timeout even when the attempt rejects on its own aborted signal", async () => {
      const fn = vi.fn(({ signal }: AttemptContext) => sleep(60_000, signal).then(() => "late"));
      const outcome = track(
        executeWithRetry(
          fn,
          { ...base, maxAttempts: 1, timeoutMs: 500 },
          new AbortController().signal,
        ),
      );
      await vi.advanceTimersByTimeAsync(500);
      expect(outcome.status).toBe("rejected");
      expect(outcome.error).toBeInstanceOf(AttemptTimeoutError);
      expect(fn).toHaveBeenCalledTimes(1);
    });

    it("succeeds when the attempt resolves in time", async () => {
      const fn = vi.fn(async ({ signal }: AttemptContext) => {
        await sleep(400, signal);
        return "done";
      });
      const outcome = track(
        executeWithRetry(fn, { ...base, timeoutMs: 1_000 }, new AbortController().signal),
      );
      await vi.advanceTimersByTimeAsync(399);
      expect(outcome.status).toBe("pending");
      await vi.advanceTimersByTimeAsync(1);
      expect(outcome).toEqual({ status: "fulfilled", value: "done" });
      await vi.advanceTimersByTimeAsync(10_000);
      expect(fn).toHaveBeenCalledTimes(1);
    });

    it("rejects with the abort reason, not a timeout, when the run is cancelled mid-attempt", async () => {
      const contexts: AttemptContext[] = [];
      const fn = vi.fn((context: AttemptContext) => {
        contexts.push(context);
        return new Promise<string>(() => {});
      });
      const controller = new AbortController();
      const reason = new Error("run cancelled");
      const outcome = track(executeWithRetry(fn, { ...base, timeoutMs: 1_000 }, controller.signal));
      await vi.advanceTimersByTimeAsync(200);
      controller.abort(reason);
      await vi.advanceTimersByTimeAsync(1);
      expect(outcome).toEqual({ status: "rejected", error: reason });
      expect(contexts[0]!.signal.aborted).toBe(true);
      await vi.advanceTimersByTimeAsync(10_000);
      expect(fn).toHaveBeenCalledTimes(1);
    });
  });

  describe("jitter", () => {
    it("waits a random share of the nominal delay, within [0, nominal)", async () => {
      vi.spyOn(Math, "random").mockReturnValue(0.5);
      const { fn } = failing(() => new RetryableError("down"));
      const retries: RetryInfo[] = [];
      const outcome = track(
        executeWithRetry(
          fn,
          { ...base, jitter: true, onRetry: (info) => retries.push(info) },
          new AbortController().signal,
        ),
      );

      await vi.advanceTimersByTimeAsync(49);
      expect(fn).toHaveBeenCalledTimes(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(fn).toHaveBeenCalledTimes(2);
      await vi.advanceTimersByTimeAsync(100 + 125);
      expect(fn).toHaveBeenCalledTimes(4);
      expect(outcome.status).toBe("rejected");
      expect(retries.map((info) => info.delayMs)).toEqual([50, 100, 125]);
    });

    it("stays below the nominal delay at the top of Math.random's range and is 0 at the bottom", async () => {
      const random = vi.spyOn(Math, "random").mockReturnValue(0.999_999);
      const high: number[] = [];
      const first = track(
        executeWithRetry(
          failing(() => new RetryableError("down")).fn,
          { ...base, jitter: true, onRetry: (info) => high.push(info.delayMs) },
          new AbortController().signal,
        ),
      );
      await vi.advanceTimersByTimeAsync(1_000);
      expect(first.status).toBe("rejected");
      expect(high).toEqual([99, 199, 249]);

      random.mockReturnValue(0);
      const low: number[] = [];
      const second = track(
        executeWithRetry(
          failing(() => new RetryableError("down")).fn,
          { ...base, jitter: true, onRetry: (info) => low.push(info.delayMs) },
          new AbortController().signal,
        ),
      );
      // A zero wait is still a timer (the fake clock runs it a millisecond later).
      await vi.advanceTimersByTimeAsync(10);
      expect(second.status).toBe("rejected");
      expect(low).toEqual([0, 0, 0]);
    });

    it("does not use Math.random without jitter", async () => {
      const random = vi.spyOn(Math, "random");
      const outcome = track(
        executeWithRetry(
          failing(() => new RetryableError("down")).fn,
          base,
          new AbortController().signal,
        ),
      );
      await vi.advanceTimersByTimeAsync(550);
      expect(outcome.status).toBe("rejected");
      expect(random).not.toHaveBeenCalled();
    });
  });
});

describe("sleep", () => {
  it("resolves after the given time, not before", async () => {
    const outcome = track(sleep(1_000, new AbortController().signal));
    await vi.advanceTimersByTimeAsync(999);
    expect(outcome.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome.status).toBe("fulfilled");
  });

  it("rejects at once with the abort reason when the signal fires, and leaves no timer", async () => {
    const controller = new AbortController();
    const reason = new Error("stop");
    const outcome = track(sleep(60_000, controller.signal));
    await vi.advanceTimersByTimeAsync(10);
    expect(vi.getTimerCount()).toBe(1);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome).toEqual({ status: "rejected", error: reason });
    expect(vi.getTimerCount()).toBe(0);
  });

  it("rejects without waiting when the signal is already aborted", async () => {
    const controller = new AbortController();
    controller.abort("gone");
    const outcome = track(sleep(1_000, controller.signal));
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome.status).toBe("rejected");
    expect(outcome.error).toBeInstanceOf(Error);
    expect(outcome.error).toMatchObject({ name: "AbortError", message: "gone" });
    expect(vi.getTimerCount()).toBe(0);
  });

  it("removes its abort listener once it has waited", async () => {
    const controller = new AbortController();
    const remove = vi.spyOn(controller.signal, "removeEventListener");
    const outcome = track(sleep(100, controller.signal));
    await vi.advanceTimersByTimeAsync(100);
    expect(outcome.status).toBe("fulfilled");
    expect(remove).toHaveBeenCalledWith("abort", expect.any(Function));
  });
});

describe("abortable", () => {
  it("rejects with the signal's reason when it fires", async () => {
    const controller = new AbortController();
    const { promise, cleanup } = abortable(controller.signal);
    const outcome = track(promise);
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome.status).toBe("pending");
    const reason = new Error("cancel");
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome).toEqual({ status: "rejected", error: reason });
    cleanup();
  });

  it("rejects at once for a signal already aborted", async () => {
    const controller = new AbortController();
    controller.abort();
    const outcome = track(abortable(controller.signal).promise);
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome.status).toBe("rejected");
    expect(outcome.error).toBe(controller.signal.reason);
    expect((outcome.error as Error).name).toBe("AbortError");
  });

  it("stays pending after cleanup, whatever the signal does", async () => {
    const controller = new AbortController();
    const { promise, cleanup } = abortable(controller.signal);
    const outcome = track(promise);
    cleanup();
    controller.abort(new Error("late"));
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome.status).toBe("pending");
  });
});

describe("error helpers", () => {
  it("abortError returns an Error reason itself and wraps other reasons as AbortError", () => {
    const reason = new Error("why");
    const withError = new AbortController();
    withError.abort(reason);
    expect(abortError(withError.signal)).toBe(reason);

    const withString = new AbortController();
    withString.abort("run timed out");
    expect(abortError(withString.signal)).toMatchObject({
      name: "AbortError",
      message: "run timed out",
    });

    const withObject = new AbortController();
    withObject.abort({ why: 1 });
    expect(abortError(withObject.signal)).toMatchObject({ name: "AbortError", message: "aborted" });
  });

  it("isRetryable: NodeErrors say so themselves, anything else is retryable", () => {
    expect(isRetryable(new RetryableError("x"))).toBe(true);
    expect(isRetryable(new PermanentError("x"))).toBe(false);
    expect(isRetryable(new AttemptTimeoutError(5))).toBe(true);
    expect(isRetryable(new Error("x"))).toBe(true);
    expect(isRetryable("string")).toBe(true);
  });
});
