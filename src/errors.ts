/**
 * Errors a client may see. Each has a stable `code` that reaches GraphQL as `extensions.code`;
 * anything else is masked as INTERNAL_SERVER_ERROR.
 */

export const ERROR_CODES = {
  BAD_USER_INPUT: 400,
  PIPELINE_TOO_LARGE: 413,
  JSON_TOO_DEEP: 400,
  JSON_TOO_LARGE: 413,
  NOT_FOUND: 404,
  PIPELINE_HAS_ACTIVE_RUNS: 409,
  SERVICE_UNAVAILABLE: 503,
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

/** An error whose message is meant for the client. */
export class AppError extends Error {
  override readonly name: string = "AppError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Readonly<Record<string, unknown>>,
  ) {
    super(message);
  }
}

export class NotFoundError extends AppError {
  override readonly name = "NotFoundError";
  constructor(kind: "pipeline" | "run", id: string) {
    super("NOT_FOUND", `${kind} "${id}" does not exist`, { kind, id });
  }
}

export class BadInputError extends AppError {
  override readonly name = "BadInputError";
  constructor(message: string, details?: Readonly<Record<string, unknown>>) {
    super("BAD_USER_INPUT", message, details);
  }
}

/** True for errors raised because an AbortSignal fired; those are never masked or retried. */
export function isAbortError(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.name === "AbortError" ||
      error.name === "TimeoutError" ||
      error.name === "TaskCancelledError")
  );
}

export interface JsonLimits {
  readonly maxJsonDepth: number;
  readonly maxConfigBytes: number;
}

/**
 * Checks a client-supplied JSON value without recursion (a deeply nested value must not be
 * able to overflow the stack of whatever touches it next).
 * @throws {AppError} JSON_TOO_DEEP or JSON_TOO_LARGE, naming `what`
 */
export function assertJsonWithinLimits(value: unknown, limits: JsonLimits, what: string): void {
  const stack: [unknown, number][] = [[value, 1]];
  let visited = 0;
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (++visited > 1_000_000) {
      throw new AppError("JSON_TOO_LARGE", `${what} has more than 1,000,000 values`);
    }
    if (typeof current !== "object" || current === null) continue;
    if (depth > limits.maxJsonDepth) {
      throw new AppError(
        "JSON_TOO_DEEP",
        `${what} is nested deeper than ${limits.maxJsonDepth} levels`,
      );
    }
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      stack.push([child, depth + 1]);
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? "");
  if (bytes > limits.maxConfigBytes) {
    throw new AppError(
      "JSON_TOO_LARGE",
      `${what} is ${bytes} bytes of JSON; the limit is ${limits.maxConfigBytes}`,
    );
  }
}
