import { jsonProblem } from "./json.ts";

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
  RUN_STILL_ACTIVE: 409,
  SERVICE_UNAVAILABLE: 503,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  RATE_LIMITED: 429,
  LIMIT_REACHED: 409,
  SECRETS_NOT_CONFIGURED: 409,
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
  constructor(kind: "pipeline" | "run" | "API key" | "secret", id: string) {
    super("NOT_FOUND", `${kind} "${id}" does not exist`, { kind, id });
  }
}

/** createPipeline with MAX_PIPELINES pipelines already stored (checked inside the insert's transaction). */
export class PipelineLimitError extends AppError {
  override readonly name = "PipelineLimitError";
  constructor(limit: number) {
    super(
      "LIMIT_REACHED",
      `${limit} pipelines are stored, the most MAX_PIPELINES allows; delete some first`,
      { limit },
    );
  }
}

export class BadInputError extends AppError {
  override readonly name = "BadInputError";
  constructor(message: string, details?: Readonly<Record<string, unknown>>) {
    super("BAD_USER_INPUT", message, details);
  }
}

export interface JsonLimits {
  readonly maxJsonDepth: number;
  readonly maxConfigBytes: number;
}

/**
 * Checks a client-supplied JSON value.
 * @throws {AppError} JSON_TOO_DEEP or JSON_TOO_LARGE, naming `what`
 */
export function assertJsonWithinLimits(value: unknown, limits: JsonLimits, what: string): void {
  const problem = jsonProblem(value, {
    maxDepth: limits.maxJsonDepth,
    maxValues: 1_000_000,
    maxBytes: limits.maxConfigBytes,
  });
  if (problem)
    throw new AppError(
      problem.kind === "depth" ? "JSON_TOO_DEEP" : "JSON_TOO_LARGE",
      `${what} ${problem.message}`,
    );
}
