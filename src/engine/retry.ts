/**
 * Attempts with retries and timeouts, on cockatiel's policies. Delay before attempt n+1 is
 * `min(maxDelayMs, initialDelayMs × 2^(n−1))` (cockatiel's no-jitter exponential generator);
 * with `jitter` a uniformly random share of it.
 *
 * Cockatiel 3 sleeps between attempts on a timer that ignores the AbortSignal, so the whole
 * execution is raced against the signal: a cancel ends the wait at once, and the pending
 * timer (unref'd) finds the signal aborted and gives up without calling the handler again.
 *
 * Most executions succeed at their first attempt. Without a per-attempt timeout that attempt is
 * made directly, and the policies are built only once it has failed and a retry is due: for a
 * step that does little, building them cost as much as the whole rest of the engine's work.
 */
import {
  ExponentialBackoff,
  fullJitterGenerator,
  handleWhen,
  type IExponentialBackoffOptions,
  noJitterGenerator,
  retry,
  TaskCancelledError,
  TimeoutStrategy,
  timeout,
} from "cockatiel";
import { type AbortScope, signalScope } from "./abort-group.ts";
import { AttemptTimeoutError, abortable, abortError, isRetryable, sleep } from "./errors.ts";

export interface RetryOptions {
  /** Calls in all, the first included. */
  readonly maxAttempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly jitter: boolean;
  /** Limit of one attempt; none when null. */
  readonly timeoutMs: number | null;
  /** Attempts made before this execution (a run resumed after a crash); numbering goes on. */
  readonly previousAttempts?: number;
  /** Called after a retryable failure, before the wait. `attempt` is the one that failed. */
  readonly onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
}

export interface AttemptContext {
  /** 1 for the first call of the node. */
  readonly attempt: number;
  /** Fires on cancel, run timeout, or this attempt's own timeout. */
  readonly signal: AbortSignal;
}

/**
 * Calls `attempt` until it succeeds, fails with a non-retryable error, or runs out of
 * attempts; rejects with the last error, or with an abort error when `signal` fires.
 */
export async function executeWithRetry<T>(
  attempt: (context: AttemptContext) => Promise<T> | T,
  options: RetryOptions,
  abort: AbortSignal | AbortScope,
): Promise<T> {
  const scope = abort instanceof AbortSignal ? signalScope(abort) : abort;
  if (options.timeoutMs || scope.aborted) return withPolicies(attempt, options, scope.signal);
  try {
    // The context's signal is the scope's, made only if the handler looks at it.
    const result = attempt({
      attempt: (options.previousAttempts ?? 0) + 1,
      get signal() {
        return scope.signal;
      },
    });
    return isPromiseLike(result) ? await scope.race(Promise.resolve(result)) : result;
  } catch (error) {
    return retryAfterFailure(attempt, options, scope, error);
  }
}

/**
 * Goes on after a first attempt made without a per-attempt timeout (attempt
 * `previousAttempts + 1`) failed with `error`: the retries `executeWithRetry` would make.
 */
export async function retryAfterFailure<T>(
  attempt: (context: AttemptContext) => Promise<T> | T,
  options: RetryOptions,
  scope: AbortScope,
  error: unknown,
): Promise<T> {
  if (scope.aborted) throw abortError(scope.signal);
  if (options.maxAttempts <= 1 || !isRetryable(error)) throw error;
  const previous = options.previousAttempts ?? 0;
  // The delay cockatiel's backoff would give after this attempt; the policies take over
  // from the next one, their backoff going on from here.
  const [delayMs] = (options.jitter ? fullJitterGenerator : noJitterGenerator)(
    previous,
    backoffOptions(options),
  );
  options.onRetry?.({ attempt: previous + 1, delayMs, error });
  await sleep(delayMs, scope.signal);
  return withPolicies(
    attempt,
    { ...options, maxAttempts: options.maxAttempts - 1, previousAttempts: previous + 1 },
    scope.signal,
  );
}

const backoffOptions = (options: RetryOptions): IExponentialBackoffOptions<number> => ({
  initialDelay: options.initialDelayMs,
  maxDelay: options.maxDelayMs,
  exponent: 2,
  generator: noJitterGenerator,
});

export const isPromiseLike = <T>(value: PromiseLike<T> | T): value is PromiseLike<T> =>
  typeof (value as { then?: unknown } | null)?.then === "function";

async function withPolicies<T>(
  attempt: (context: AttemptContext) => Promise<T> | T,
  options: RetryOptions,
  signal: AbortSignal,
): Promise<T> {
  const previous = options.previousAttempts ?? 0;
  const policy = retry(
    handleWhen((error) => !signal.aborted && isRetryable(error)),
    {
      maxAttempts: Math.max(0, options.maxAttempts - 1),
      backoff: new ExponentialBackoff<number>({
        initialDelay: options.initialDelayMs,
        maxDelay: options.maxDelayMs,
        // Resumed after a crash, the delays go on from the attempts already made.
        generator: (state, generatorOptions) =>
          (options.jitter ? fullJitterGenerator : noJitterGenerator)(
            state ?? previous,
            generatorOptions,
          ),
      }),
    },
  ).dangerouslyUnref();
  const listener = policy.onRetry((event) => {
    options.onRetry?.({
      attempt: previous + event.attempt,
      delayMs: event.delay,
      error: "error" in event ? event.error : undefined,
    });
  });
  const limit = options.timeoutMs
    ? timeout(options.timeoutMs, {
        strategy: TimeoutStrategy.Aggressive,
        abortOnReturn: true,
      }).dangerouslyUnref()
    : undefined;
  let current = 0;
  let timedOut = 0;
  const timeoutListener = limit?.onTimeout(() => {
    timedOut = current;
  });
  const aborted = abortable(signal);
  try {
    return await Promise.race([
      policy.execute(async ({ attempt: index }) => {
        if (signal.aborted) throw abortError(signal);
        const number = previous + index + 1;
        current = number;
        if (!limit) return attempt({ attempt: number, signal });
        try {
          return await limit.execute(
            ({ signal: attemptSignal }) => attempt({ attempt: number, signal: attemptSignal }),
            signal,
          );
        } catch (error) {
          // Whatever the handler threw once its attempt timed out (an abort error of its own
          // or cockatiel's TaskCancelledError), the failure is the timeout.
          if (signal.aborted) throw abortError(signal);
          if (timedOut === number || error instanceof TaskCancelledError) {
            throw new AttemptTimeoutError(options.timeoutMs!);
          }
          throw error;
        }
      }, signal),
      aborted.promise,
    ]);
  } finally {
    aborted.cleanup();
    listener.dispose();
    timeoutListener?.dispose();
  }
}
