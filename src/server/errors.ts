/**
 * How errors reach clients: an AppError keeps its message and gets `extensions.code`;
 * GraphQL's own errors (syntax, validation, bad variables) keep theirs with a code added;
 * anything else is logged and masked.
 */
import { GraphQLError } from "graphql";
import type { Logger } from "pino";
import { AppError } from "../domain/errors.ts";
import { isStoreUnavailable } from "../store/unavailable.ts";
import { DOCUMENT_LIMIT_CODES } from "./limits.ts";

/** Seconds a client is told to wait before retrying while the database is unavailable. */
export const RETRY_AFTER_SECONDS = 1;

/**
 * Codes clients get besides the domain's (domain/errors.ts ERROR_CODES): yoga's refusals of a
 * request (BAD_REQUEST: a body that is not JSON, no query, GET for a mutation, another HTTP
 * method; OPERATION_RESOLUTION_FAILURE: no operation, or several and no operationName or an
 * unknown one), GraphQL's own, the limits' (limits.ts, body-limits.ts) and the mask's. The
 * README's table lists exactly these and the domain's (test/error-codes.test.ts).
 */
export const SERVER_ERROR_CODES = [
  "BAD_REQUEST",
  "OPERATION_RESOLUTION_FAILURE",
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  ...DOCUMENT_LIMIT_CODES,
  "CSRF_HEADER_REQUIRED",
  "PAYLOAD_TOO_LARGE",
  "LENGTH_REQUIRED",
  "INTERNAL_SERVER_ERROR",
] as const;

/** Refusals that set the HTTP status of the whole answer (a GraphQL error is 200 otherwise). */
const HTTP_STATUS: Partial<Record<string, number>> = { UNAUTHENTICATED: 401, FORBIDDEN: 403 };

function codeOf(error: GraphQLError): string {
  if (typeof error.extensions.code === "string") return error.extensions.code;
  if (/^Required CSRF header/.test(error.message)) return "CSRF_HEADER_REQUIRED";
  if (/^Syntax Error/.test(error.message)) return "GRAPHQL_PARSE_FAILED";
  return "GRAPHQL_VALIDATION_FAILED";
}

/** The yoga `maskError` function. */
export function createMaskError(logger: Logger) {
  return (error: unknown): Error => {
    const graphqlError = error instanceof GraphQLError ? error : undefined;
    const original = graphqlError ? graphqlError.originalError : error;
    if (original instanceof AppError) {
      const status = HTTP_STATUS[original.code];
      return new GraphQLError(original.message, {
        nodes: graphqlError?.nodes,
        path: graphqlError?.path,
        extensions: {
          ...original.details,
          code: original.code,
          ...(status ? { http: { status } } : {}),
        },
      });
    }
    if (
      graphqlError &&
      (original === undefined || original === null || original instanceof GraphQLError)
    ) {
      const source = original instanceof GraphQLError ? original : graphqlError;
      return new GraphQLError(source.message, {
        nodes: graphqlError.nodes,
        path: graphqlError.path,
        extensions: { ...source.extensions, code: codeOf(source) },
      });
    }
    // The database is away (an outage, logged once by the engine): a retryable answer, HTTP
    // 503 with Retry-After, rather than a masked bug.
    if (isStoreUnavailable(original)) {
      return new GraphQLError("the database is unavailable; retry shortly", {
        nodes: graphqlError?.nodes,
        path: graphqlError?.path,
        extensions: {
          code: "SERVICE_UNAVAILABLE",
          http: { status: 503, headers: { "retry-after": String(RETRY_AFTER_SECONDS) } },
        },
      });
    }
    logger.error({ err: original, path: graphqlError?.path }, "unexpected error in a resolver");
    return new GraphQLError("Unexpected error.", {
      nodes: graphqlError?.nodes,
      path: graphqlError?.path,
      extensions: { code: "INTERNAL_SERVER_ERROR" },
    });
  };
}
