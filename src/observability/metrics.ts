/**
 * The engine's figures in Prometheus form (prom-client), on the registry that `/metrics`
 * serves (server/metrics.ts adds the GraphQL figures of @graphql-yoga/plugin-prometheus).
 *
 * Counters count what this instance executed (sum them across instances); the gauges of
 * queued and running runs and of breakers are read from the database at each scrape, so every
 * instance reports the same cluster-wide figures (take `max`, not `sum`).
 */
import { LRUCache } from "lru-cache";
import type { Logger } from "pino";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { RunEventRecord } from "../domain/records.ts";
import { ACTIVE_RUN_STATUSES, CIRCUIT_STATES, TERMINAL_EVENT_TYPES } from "../domain/status.ts";
import type { EngineHooks } from "../engine/hooks.ts";
import type { StateCounts, Store } from "../store/types.ts";

/** What the gauges read from the engine at each scrape. */
export interface EngineGauges {
  /** Runs this instance executes now; each holds its lease. */
  readonly activeRuns: number;
  /** Node executions queued or under way here (DELAY waits and retry backoffs included). */
  readonly queuedNodes: number;
}

export interface EngineMetrics {
  readonly registry: Registry;
  /** The observer to give the engine. */
  readonly hooks: EngineHooks;
  /** Where the per-instance gauges are read from; until then they read 0. */
  observe(engine: EngineGauges): void;
}

export interface EngineMetricsOptions {
  readonly store: Pick<Store, "countStates">;
  readonly logger: Logger;
  /** @default a new registry, with Node.js's default metrics (event-loop lag among them) */
  readonly registry?: Registry;
  /**
   * Longest time a scrape waits for the database; past it the cluster-wide gauges keep their
   * last values. @default 2000
   */
  readonly countTimeoutMs?: number;
}

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const RUN_SECONDS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];

/** Per run executing here: node types by id, attempts running, start time. */
interface RunTrack {
  readonly types: Map<string, string>;
  readonly running: Set<string>;
  startedAt: number;
}

/** Creates the registry and the observer that fills it. */
export function createEngineMetrics(options: EngineMetricsOptions): EngineMetrics {
  const registry = options.registry ?? new Registry();
  if (!options.registry) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const runsStarted = new Counter({
    name: "pipelines_runs_started_total",
    help: "Runs started by this instance (RUN_STARTED).",
    registers,
  });
  const runsFinished = new Counter({
    name: "pipelines_runs_finished_total",
    help: "Runs ended by this instance, by final status.",
    labelNames: ["status"],
    registers,
  });
  const runDuration = new Histogram({
    name: "pipelines_run_duration_seconds",
    help: "From RUN_STARTED to the terminal event, by final status (runs ended here).",
    labelNames: ["status"],
    buckets: RUN_SECONDS,
    registers,
  });
  const attempts = new Counter({
    name: "pipelines_node_attempts_total",
    help: "Node attempts started (NODE_STARTED), by node type.",
    labelNames: ["type"],
    registers,
  });
  const retries = new Counter({
    name: "pipelines_node_retries_total",
    help: "Failed attempts that will be retried (NODE_RETRYING), by node type.",
    labelNames: ["type"],
    registers,
  });
  const nodesFinished = new Counter({
    name: "pipelines_nodes_finished_total",
    help: "Nodes settled, by node type and outcome (completed, failed, skipped).",
    labelNames: ["type", "outcome"],
    registers,
  });
  const commitDuration = new Histogram({
    name: "pipelines_commit_duration_seconds",
    help: "One group commit of run state (events, node runs, run rows), by outcome.",
    labelNames: ["outcome"],
    buckets: SECONDS,
    registers,
  });
  const eventsCommitted = new Counter({
    name: "pipelines_events_committed_total",
    help: "Run events in successful commits.",
    registers,
  });

  let engine: EngineGauges | undefined;
  let runningAttempts = 0;
  // Bounded: a run that neither ends nor executes here (a re-run queued for another instance)
  // must not be kept for ever.
  const tracks = new LRUCache<string, RunTrack>({
    max: 100_000,
    dispose: (track) => {
      runningAttempts -= track.running.size;
    },
  });
  const trackOf = (runId: string): RunTrack => {
    let track = tracks.get(runId);
    if (!track) {
      track = { types: new Map(), running: new Set(), startedAt: Date.now() };
      tracks.set(runId, track);
    }
    return track;
  };
  const settle = (track: RunTrack, nodeId: string) => {
    if (track.running.delete(nodeId)) runningAttempts--;
  };

  new Gauge({
    name: "pipelines_leases_held",
    help: "Runs this instance executes now; each holds a lease on its run row.",
    registers,
    collect() {
      this.set(engine?.activeRuns ?? 0);
    },
  });
  new Gauge({
    name: "pipelines_node_attempts_running",
    help: "Node attempts under way in this instance.",
    registers,
    collect() {
      this.set(runningAttempts);
    },
  });
  new Gauge({
    name: "pipelines_node_queue_depth",
    help: "Nodes of runs executing here that wait: for a free slot (MAX_CONCURRENT_NODES) or a retry.",
    registers,
    collect() {
      this.set(Math.max(0, (engine?.queuedNodes ?? 0) - runningAttempts));
    },
  });

  // One database read serves both cluster-wide gauges of a scrape.
  let counting: Promise<StateCounts | undefined> | undefined;
  const readCounts = async (): Promise<StateCounts | undefined> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), options.countTimeoutMs ?? 2000);
    });
    try {
      return await Promise.race([options.store.countStates(), late]);
    } catch (error) {
      options.logger.warn({ err: error }, "metrics: could not count runs and breakers");
      return undefined;
    } finally {
      clearTimeout(timer);
      // The next scrape reads again.
      setImmediate(() => {
        counting = undefined;
      });
    }
  };
  const countStates = () => {
    counting ??= readCounts();
    return counting;
  };
  new Gauge({
    name: "pipelines_runs",
    help: "Runs QUEUED (waiting for any instance) and RUNNING, across all instances.",
    labelNames: ["status"],
    registers,
    async collect() {
      const counts = await countStates();
      if (counts)
        for (const status of ACTIVE_RUN_STATUSES) this.set({ status }, counts.runs[status]);
    },
  });
  new Gauge({
    name: "pipelines_breakers",
    help: "Circuit breakers by state, across all instances (nodes that never failed have none).",
    labelNames: ["state"],
    registers,
    async collect() {
      const counts = await countStates();
      if (counts) for (const state of CIRCUIT_STATES) this.set({ state }, counts.breakers[state]);
    },
  });

  const onEvent = (event: RunEventRecord) => {
    const track = trackOf(event.runId);
    const nodeId = event.nodeId ?? "";
    const type = track.types.get(nodeId) ?? "unknown";
    switch (event.type) {
      case "RUN_STARTED":
        runsStarted.inc();
        track.startedAt = event.at.getTime();
        return;
      case "NODE_STARTED": {
        const nodeType = String((event.data as { type?: unknown } | null)?.type ?? "unknown");
        track.types.set(nodeId, nodeType);
        attempts.inc({ type: nodeType });
        if (!track.running.has(nodeId)) {
          track.running.add(nodeId);
          runningAttempts++;
        }
        return;
      }
      case "NODE_RETRYING":
        retries.inc({ type });
        settle(track, nodeId);
        return;
      case "NODE_COMPLETED":
      case "NODE_FAILED":
      case "NODE_SKIPPED":
        nodesFinished.inc({ type, outcome: event.type.slice("NODE_".length).toLowerCase() });
        settle(track, nodeId);
        return;
    }
    if (TERMINAL_EVENT_TYPES.has(event.type)) {
      const status = event.type.slice("RUN_".length);
      runsFinished.inc({ status });
      runDuration.observe({ status }, Math.max(0, event.at.getTime() - track.startedAt) / 1000);
      tracks.delete(event.runId);
    }
  };

  return {
    registry,
    observe(source) {
      engine = source;
    },
    hooks: {
      onRunExecuting(run) {
        const track = trackOf(run.id);
        if (run.startedAt) track.startedAt = run.startedAt.getTime();
      },
      onEvent,
      // Handed over (or ended): whatever is still running here is no longer ours.
      onRunDone: (runId) => {
        tracks.delete(runId);
      },
      onCommit({ durationMs, events, ok }) {
        commitDuration.observe({ outcome: ok ? "ok" : "failed" }, durationMs / 1000);
        if (ok) eventsCommitted.inc(events);
      },
    },
  };
}
