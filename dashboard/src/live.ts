/**
 * A run's events: those already stored, read in pages over HTTP (one answer carries thousands,
 * where a subscription's replay sends them one message each), then live through
 * `runEvents(runId, after)` over graphql-ws, or over SSE when the WebSocket cannot connect. A
 * dropped connection is opened again with `after` = the last seq received, so nothing is lost
 * and nothing repeats; the stream ends after the terminal event.
 */
import { createClient as createSseClient } from "graphql-sse";
import { createClient as createWsClient } from "graphql-ws";
import { TERMINAL_EVENT_TYPES } from "../../src/domain/status.ts";
import { authHeaders, GRAPHQL_URL, gql } from "./api.ts";

export interface RunEvent {
  readonly seq: number;
  readonly type: string;
  readonly nodeId: string | null;
  readonly attempt: number | null;
  readonly at: string;
  readonly data: Record<string, unknown> | null;
}

export type LiveState = "connecting" | "live" | "reconnecting" | "ended" | "offline";
export type Transport = "ws" | "sse";

export interface LiveOptions {
  readonly runId: string;
  /** Events with a seq above this one are wanted (0: all). */
  readonly after: number;
  /** Each event once, in seq order. */
  onEvent(event: RunEvent): void;
  onState(state: LiveState, transport: Transport): void;
  /** Forces a transport (the page's `?transport=sse`); otherwise WebSocket first. */
  readonly transport?: Transport;
}

const QUERY = `subscription RunEvents($runId: ID!, $after: Int) {
  runEvents(runId: $runId, after: $after) { seq type nodeId attempt at data }
}`;

const STORED = `query DashboardRunEvents($id: ID!, $after: Int) {
  run(id: $id) { events(after: $after, first: 5000) { seq type nodeId attempt at data } }
}`;
/** Events a page: as many as the server's query cost limit lets one answer carry. */
const PAGE = 5000;
/** Pages of stored events read at most (100,000 events); the subscription brings the rest. */
const MAX_PAGES = 20;
const TERMINAL: ReadonlySet<string> = TERMINAL_EVENT_TYPES;
/** Attempts to connect again before the page says "offline" (each waits up to 10 s). */
const MAX_RECONNECTS = 60;

/** Whether an event ends its run (nothing follows it). */
export function isTerminalEvent(event: RunEvent): boolean {
  return TERMINAL.has(event.type);
}

/**
 * The run's stored events with a seq above `after`, in order (empty for an unknown run). Seqs
 * have no gaps, so page k starts after `after + k × PAGE`: two pages are asked for at once,
 * and a page is used only when the one before it was full and it follows on from it.
 */
export async function loadStoredEvents(runId: string, after = 0): Promise<RunEvent[]> {
  const page = (k: number) =>
    gql<{ run: { events: RunEvent[] } | null }>(STORED, { id: runId, after: after + k * PAGE });
  const inFlight = [page(0), page(1)];
  const events: RunEvent[] = [];
  try {
    for (let k = 0; k < MAX_PAGES; k++) {
      const { run } = await inFlight.shift()!;
      const got = run?.events ?? [];
      if (got.length && got[0]!.seq !== (events.at(-1)?.seq ?? after) + 1) break;
      events.push(...got);
      if (got.length < PAGE || isTerminalEvent(got.at(-1)!)) break;
      inFlight.push(page(k + 2));
    }
  } finally {
    // A page asked for ahead and not needed: its answer (or failure) is of no interest.
    for (const unused of inFlight) unused.catch(() => undefined);
  }
  return events;
}

interface Sink {
  next(value: { data?: { runEvents?: RunEvent } | null; errors?: unknown }): void;
  error(error: unknown): void;
  complete(): void;
}

/** Opens one subscription on one connection; returns a function that closes both. */
function open(transport: Transport, after: number, runId: string, sink: Sink, onOpen: () => void) {
  const request = { query: QUERY, variables: { runId, after } };
  if (transport === "sse") {
    const client = createSseClient({
      url: GRAPHQL_URL,
      headers: authHeaders,
      singleConnection: false,
      retryAttempts: 0,
      // Live once the stream is open, not at its first message: a run waiting on a slow node
      // sends none for a while.
      on: { connected: onOpen },
    });
    const unsubscribe = client.subscribe(request, sink as never);
    return () => {
      unsubscribe();
      client.dispose();
    };
  }
  const client = createWsClient({
    url: GRAPHQL_URL.replace(/^http/, "ws"),
    connectionParams: authHeaders,
    retryAttempts: 0,
    lazy: true,
    on: { connected: onOpen },
  });
  const unsubscribe = client.subscribe(request, sink as never);
  return () => {
    unsubscribe();
    void client.dispose();
  };
}

/** Follows a run until its terminal event (or stop()). */
export function followRun(options: LiveOptions): { stop(): void; readonly lastSeq: number } {
  let lastSeq = options.after;
  let transport: Transport = options.transport ?? "ws";
  let close: (() => void) | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let failures = 0;
  let everOpened = false;

  const connect = () => {
    if (stopped) return;
    let ended = false;
    let opened = false;
    const retry = () => {
      close?.();
      close = undefined;
      if (stopped || ended) return;
      // A WebSocket that never opened (a proxy that refuses the upgrade): SSE from now on.
      if (transport === "ws" && !opened && !everOpened && !options.transport && failures >= 1)
        transport = "sse";
      failures++;
      if (failures > MAX_RECONNECTS) return options.onState("offline", transport);
      options.onState("reconnecting", transport);
      timer = setTimeout(connect, Math.min(10_000, 250 * 2 ** Math.min(failures, 6)));
    };
    options.onState(failures === 0 ? "connecting" : "reconnecting", transport);
    close = open(
      transport,
      lastSeq,
      options.runId,
      {
        next: (value) => {
          const event = value.data?.runEvents;
          if (!event || event.seq <= lastSeq) return;
          lastSeq = event.seq;
          failures = 0;
          options.onEvent(event);
          if (TERMINAL.has(event.type)) {
            ended = true;
            options.onState("ended", transport);
          }
        },
        error: retry,
        complete: () => {
          // The server ends the stream after the terminal event; ending earlier means the
          // connection went away under it.
          if (!ended) retry();
          else close?.();
        },
      },
      () => {
        opened = true;
        everOpened = true;
        if (!stopped && !ended) options.onState("live", transport);
      },
    );
  };
  connect();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      close?.();
    },
    get lastSeq() {
      return lastSeq;
    },
  };
}
