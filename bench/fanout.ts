/**
 * Figure 2: event fan-out. One run of a pipeline whose events come at a steady pace (a gate
 * node held on a local endpoint until every subscriber is in, then a chain of 50 ms DELAY
 * nodes); N graphql-ws clients, one WebSocket each, subscribed to it from another process
 * (fanout-clients.ts). Latency = receipt time − the event's `at` (set when the engine emits
 * it, before it is stored and published), over every live event and every subscriber.
 *
 * Baseline: a bare graphql-ws server (graphql-js, no yoga, no store, no engine) streaming
 * events of the same shape at the same pace from memory to the same clients.
 */
import { fork } from "node:child_process";
import { setMaxListeners } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { buildSchema } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import pino from "pino";
import { WebSocketServer } from "ws";
import { loadConfig } from "../src/config.ts";
import { buildApp } from "../src/server/app.ts";
import { createServices } from "../src/services.ts";
import type { ClientMessage, StartMessage } from "./fanout-clients.ts";
import { openFreshStore } from "./lib/engine.ts";
import { startHoldServer } from "./lib/hold-server.ts";
import { type MeasureHooks, NO_HOOKS } from "./lib/profiler.ts";
import { type FigureOptions, type FigureResult, type Row, row } from "./lib/report.ts";
import { type Summary, summarize } from "./lib/stats.ts";
import { formatNumber } from "./lib/table.ts";
import { withTimeout } from "./lib/timeout.ts";

const FIGURE = "2 fan-out";
/**
 * Pace of the chain: each DELAY node's end brings two events (its NODE_COMPLETED and the next
 * one's NODE_STARTED). 200 ms keeps the bare baseline's event loop below saturation at 1,000
 * subscribers, so that the figure is latency, not a backlog growing with the test's length.
 */
const DELAY_SECONDS = 0.2;
const TARGET_P99_MS = 20;
const here = path.dirname(fileURLToPath(import.meta.url));

interface Measured {
  readonly latency: Summary;
  /** Per event: the latency of its last receiver (when everyone had it). */
  readonly lastReceiver: Summary;
  readonly deliveries: number;
  readonly expectedDeliveries: number;
  readonly connectMs: number;
  readonly errors: string[];
  /** Event-loop utilisation (0–1) of the server and of the subscribers' process, live phase. */
  readonly serverLoop: number;
  readonly clientLoop: number;
  /** Server event-loop time per delivered event, µs (all of it: store, engine, transport). */
  readonly serverMicrosPerDelivery: number;
}

/**
 * Starts the subscribers, calls `go` once they are all in, and measures the events whose `at`
 * is not earlier than the moment `go` was called.
 */
async function measure(
  wsUrl: string,
  runId: string,
  subscribers: number,
  liveEvents: number,
  go: () => void,
  hooks: MeasureHooks = NO_HOOKS,
): Promise<Measured> {
  const child = fork(path.join(here, "fanout-clients.ts"), [], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  try {
    const start: StartMessage = { type: "start", wsUrl, runId, subscribers, timeoutMs: 60_000 };
    let goAt = 0;
    let connectMs = 0;
    let loop = performance.eventLoopUtilization();
    const finished = new Promise<Extract<ClientMessage, { type: "done" }>>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`subscriber process exited (${code})`)));
      child.on("message", async (message: ClientMessage) => {
        if (message.type === "ready") {
          connectMs = message.connectMs;
          await hooks.begin();
          goAt = Date.now();
          loop = performance.eventLoopUtilization();
          go();
        } else {
          loop = performance.eventLoopUtilization(loop);
          await hooks.end();
          resolve(message);
        }
      });
      child.send(start);
    });
    const done = await withTimeout(finished, 120_000, `${subscribers} subscribers to finish`);
    const latencies: number[] = [];
    const bySeq = new Map<number, number>();
    for (const events of done.received) {
      for (const [seq, at, receivedAt] of events) {
        if (at < goAt) continue; // replayed, or emitted before the subscribers were all in
        const latency = receivedAt - at;
        latencies.push(latency);
        bySeq.set(seq, Math.max(bySeq.get(seq) ?? 0, latency));
      }
    }
    if (latencies.length === 0)
      throw new Error(`no live events measured: ${done.errors.join("; ")}`);
    return {
      latency: summarize(latencies),
      lastReceiver: summarize([...bySeq.values()]),
      deliveries: latencies.length,
      expectedDeliveries: liveEvents * subscribers,
      connectMs,
      errors: done.errors,
      serverLoop: loop.utilization,
      serverMicrosPerDelivery: (loop.active * 1000) / latencies.length,
      clientLoop: done.eventLoopUtilization,
    };
  } finally {
    child.kill();
  }
}

/** The real server on SQLite (the default store). */
export async function measureServer(
  subscribers: number,
  delays: number,
  hooks: MeasureHooks = NO_HOOKS,
): Promise<Measured> {
  const { store, url, drop } = await openFreshStore("sqlite");
  const gate = await startHoldServer();
  const config = loadConfig({
    DATABASE_URL: url,
    LOG_LEVEL: "silent",
    HTTP_ACTION_ALLOWLIST: "127.0.0.1",
  });
  const app = buildApp(
    config,
    await createServices(config, { store, logger: pino({ level: "silent" }) }),
  );
  try {
    const { url: httpUrl } = await app.start(0, "127.0.0.1");
    const chain = Array.from({ length: delays }, (_, i) => `d${i}`);
    const pipeline = await store.createPipeline({
      name: "fan-out",
      nodes: [
        { id: "start", type: "TRIGGER", config: {} },
        {
          id: "gate",
          type: "ACTION",
          config: { action: "http", url: `${gate.url}/gate/{{run.id}}`, timeoutMs: 120_000 },
          retry: { maxAttempts: 1 },
        },
        ...chain.map((id) => ({ id, type: "DELAY" as const, config: { seconds: DELAY_SECONDS } })),
      ],
      edges: ["start", "gate", ...chain]
        .slice(1)
        .map((target, i, all) => ({ source: i === 0 ? "start" : all[i - 1]!, target })),
      maxRetriesPerNode: 1,
      timeoutSeconds: 600,
      maxConcurrency: null,
      breaker: { failureThreshold: 5, recoveryTimeoutMs: 60_000 },
    });
    const run = await app.services.engine.runPipeline(pipeline.id);
    await withTimeout(gate.arrived(`/gate/${run.id}`), 15_000, "the run's gate request");
    // gate completed, then per DELAY node: started and completed; then RUN_COMPLETED.
    const live = 1 + 2 * delays + 1;
    return await measure(
      httpUrl.replace(/^http/, "ws"),
      run.id,
      subscribers,
      live,
      () => gate.releaseAll(),
      hooks,
    );
  } finally {
    await app.stop(0);
    await gate.close();
    await drop();
  }
}

const BARE_SDL = `
  scalar JSON
  type RunEvent { seq: Int! runId: ID! type: String! nodeId: String attempt: Int at: String! data: JSON }
  type Query { ok: Boolean }
  type Subscription { runEvents(runId: ID!, after: Int): RunEvent! }
`;

interface BareEvent {
  seq: number;
  runId: string;
  type: string;
  nodeId: string | null;
  attempt: number | null;
  at: string;
  data: Record<string, unknown> | null;
}

/** The baseline: graphql-ws + graphql-js streaming in-memory events at the same pace. */
async function measureBare(subscribers: number, delays: number): Promise<Measured> {
  const target = new EventTarget();
  setMaxListeners(0, target);
  const history: BareEvent[] = [];
  let seq = 0;
  const emit = (type: string, nodeId: string | null, data: BareEvent["data"]) => {
    const event: BareEvent = {
      seq: ++seq,
      runId: "bare",
      type,
      nodeId,
      attempt: nodeId ? 1 : null,
      at: new Date().toISOString(),
      data,
    };
    history.push(event);
    target.dispatchEvent(new CustomEvent("event", { detail: event }));
  };
  async function* runEvents(): AsyncGenerator<{ runEvents: BareEvent }> {
    const buffer: BareEvent[] = [...history];
    let wake: (() => void) | undefined;
    const listener = (event: Event) => {
      buffer.push((event as CustomEvent<BareEvent>).detail);
      wake?.();
    };
    target.addEventListener("event", listener);
    try {
      for (;;) {
        const event = buffer.shift();
        if (!event) {
          await new Promise<void>((resolve) => (wake = resolve));
          continue;
        }
        yield { runEvents: event };
        if (event.type === "RUN_COMPLETED") return;
      }
    } finally {
      target.removeEventListener("event", listener);
    }
  }
  emit("RUN_STARTED", null, { nodeCount: delays + 2 });
  emit("NODE_STARTED", "gate", { type: "ACTION" });
  const server = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server, path: "/graphql" });
  const disposable = useServer(
    { schema: buildSchema(BARE_SDL), roots: { subscription: { runEvents } } },
    wss,
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const live = 1 + 2 * delays + 1;
  const timers: NodeJS.Timeout[] = [];
  try {
    return await measure(`ws://127.0.0.1:${port}/graphql`, "bare", subscribers, live, () => {
      emit("NODE_COMPLETED", "gate", { output: {} });
      emit("NODE_STARTED", "d0", { type: "DELAY" });
      for (let i = 0; i < delays; i++) {
        timers.push(
          setTimeout(
            () => {
              emit("NODE_COMPLETED", `d${i}`, { output: {} });
              if (i + 1 < delays) emit("NODE_STARTED", `d${i + 1}`, { type: "DELAY" });
              else emit("RUN_COMPLETED", null, { durationMs: 0 });
            },
            (i + 1) * DELAY_SECONDS * 1000,
          ),
        );
      }
    });
  } finally {
    for (const timer of timers) clearTimeout(timer);
    await disposable.dispose();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export async function run({ quick, log }: FigureOptions): Promise<FigureResult> {
  const delays = quick ? 8 : 20;
  const rows: Row[] = [];
  const details: Record<string, unknown> = { delayNodes: delays, delaySeconds: DELAY_SECONDS };
  for (const subscribers of [200, 1000]) {
    const bare = await measureBare(subscribers, delays);
    const server = await measureServer(subscribers, delays);
    log(
      `${subscribers} subscribers: server p50 ${server.latency.p50} ms p99 ${server.latency.p99} ms (${server.deliveries}/${server.expectedDeliveries} deliveries, loop ${server.serverLoop.toFixed(2)}/${server.clientLoop.toFixed(2)}); bare p50 ${bare.latency.p50} p99 ${bare.latency.p99} (loop ${bare.serverLoop.toFixed(2)}/${bare.clientLoop.toFixed(2)})`,
    );
    details[`subscribers${subscribers}`] = { server, bare };
    const config = `${subscribers} subscribers, 1 run`;
    const missing = server.expectedDeliveries - server.deliveries;
    for (const [name, pick] of [
      ["p50", (s: Summary) => s.p50],
      ["p99", (s: Summary) => s.p99],
    ] as const) {
      rows.push(
        row({
          figure: FIGURE,
          configuration: `${config} · ${name} event → receipt`,
          value: pick(server.latency),
          unit: "ms",
          detail:
            name === "p99"
              ? `last receiver of an event p99 ${formatNumber(server.lastReceiver.p99)} ms; server loop busy ${formatNumber(server.serverLoop * 100)} % (bare ${formatNumber(bare.serverLoop * 100)} %), ${formatNumber(server.serverMicrosPerDelivery)} µs per delivery (bare ${formatNumber(bare.serverMicrosPerDelivery)} µs)${missing ? `; ${missing} deliveries missing` : ""}`
              : `${server.deliveries.toLocaleString("en-US")} deliveries measured`,
          baseline: { label: "bare graphql-ws", value: pick(bare.latency) },
          target:
            name === "p99" && subscribers === 1000 ? { op: "<=", value: TARGET_P99_MS } : null,
        }),
      );
    }
  }
  return { rows, details };
}
