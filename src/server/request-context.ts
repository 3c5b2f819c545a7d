/**
 * A request id per HTTP request (and per WebSocket connection): the client's `X-Request-Id`
 * when it is a plain token, else a new UUIDv7. It is answered in the `X-Request-Id` response
 * header and kept in AsyncLocalStorage for the whole handling of the request, where the
 * logger's mixin (observability/logger.ts) adds it to every line — those of a run started by
 * the request included. With tracing on, the request's W3C trace context is made current too.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { IncomingHttpHeaders } from "node:http";
import { context, defaultTextMapGetter, propagation } from "@opentelemetry/api";
import { v7 as uuidv7 } from "uuid";

export const REQUEST_ID_HEADER = "x-request-id";

export interface RequestContext {
  readonly requestId: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

/** The id of the request being handled, if any. */
export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}

/** A client's id is kept when it is 1–128 letters, digits and `._:-` (it lands in logs). */
export function requestIdOf(headers: IncomingHttpHeaders): string {
  const given = headers[REQUEST_ID_HEADER];
  const value = Array.isArray(given) ? given[0] : given;
  return value && /^[\w.:-]{1,128}$/.test(value) ? value : uuidv7();
}

/**
 * Runs `handle` as the request `requestId`, with the trace context the headers carry (none:
 * the current one; a no-op while tracing is off).
 */
export function withRequest<T>(
  requestId: string,
  headers: IncomingHttpHeaders,
  handle: () => T,
): T {
  const traced = propagation.extract(context.active(), headers, defaultTextMapGetter);
  return storage.run({ requestId }, () => context.with(traced, handle));
}
