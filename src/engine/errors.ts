/**
 * Node failures. Whether a failure is worth another attempt is decided where it is raised:
 * network trouble, 5xx, 429, timeouts and agent failures are retryable; bad configuration,
 * other 4xx and refused hosts are not. Errors of unknown kind (a custom action that throws)
 * count as retryable, like an agent failure.
 */

/** A failure of one node attempt. */
export class NodeError extends Error {
  override readonly name: string = "NodeError";
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Worth another attempt. */
export class RetryableError extends NodeError {
  override readonly name = "RetryableError";
  constructor(message: string, code = "RETRYABLE", options?: { cause?: unknown }) {
    super(message, true, code, options);
  }
}

/** Fails at once, whatever the retry policy. */
export class PermanentError extends NodeError {
  override readonly name = "PermanentError";
  constructor(message: string, code = "PERMANENT", options?: { cause?: unknown }) {
    super(message, false, code, options);
  }
}

/** An attempt ran longer than the node's `timeoutMs`. */
export class AttemptTimeoutError extends RetryableError {
  constructor(readonly timeoutMs: number) {
    super(`attempt timed out after ${timeoutMs} ms`, "TIMEOUT");
  }
}

/** The node's breaker is open: the handler was not called. */
export class BreakerOpenError extends PermanentError {
  constructor(nodeId: string, until: Date | null) {
    super(
      until
        ? `circuit breaker of node "${nodeId}" is OPEN until ${until.toISOString()}: not called`
        : `circuit breaker of node "${nodeId}" is HALF_OPEN and a trial call is under way: not called`,
      "BREAKER_OPEN",
    );
  }
}

export function isRetryable(error: unknown): boolean {
  return error instanceof NodeError ? error.retryable : true;
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return typeof error === "string" ? error : (JSON.stringify(error) ?? String(error));
}

/** An AbortError, as fetch and timers raise it, carrying the signal's reason. */
export function abortError(signal: AbortSignal): Error {
  const reason = signal.reason;
  if (reason instanceof Error) return reason;
  const error = new Error(typeof reason === "string" ? reason : "aborted");
  error.name = "AbortError";
  return error;
}

/** A promise that rejects when the signal fires; `cleanup` removes the listener. */
export function abortable(signal: AbortSignal): { promise: Promise<never>; cleanup: () => void } {
  let onAbort!: () => void;
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortError(signal));
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  promise.catch(() => {});
  return { promise, cleanup: () => signal.removeEventListener("abort", onAbort) };
}

/** Waits `ms`, or rejects at once when the signal fires. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
