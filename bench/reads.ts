/**
 * Figure 4: GraphQL reads under load. 20 pipelines × 6 runs (with their node runs) seeded on
 * SQLite by really running them; autocannon (another process) sends
 * `pipelines(first: 20) { runs(first: 5) { nodeRuns } }` to the real server, then to a bare
 * graphql-yoga server answering the same query, with the same data, from arrays in memory.
 * Also: database statements per request, and that they do not grow with the page sizes.
 */

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createSchema, createYoga } from "graphql-yoga";
import pino from "pino";
import { loadConfig } from "../src/config.ts";
import { buildApp } from "../src/server/app.ts";
import { createServices } from "../src/services.ts";
import { openFreshStore } from "./lib/engine.ts";
import { runLoad } from "./lib/load.ts";
import { type MeasureHooks, NO_HOOKS } from "./lib/profiler.ts";
import { type FigureOptions, type FigureResult, type Row, row } from "./lib/report.ts";
import { withTimeout } from "./lib/timeout.ts";

const FIGURE = "4 reads";
const PIPELINES = 20;
const RUNS_PER_PIPELINE = 6;
const CONNECTIONS = 10;
const WARMUP_SECONDS = 2;

/** What a runs dashboard asks for: node statuses, not their outputs. */
const readsQuery = (pipelines: number, runs: number) =>
  `query Reads { pipelines(first: ${pipelines}) { edges { node { id name runs(first: ${runs}) { edges { node { id status nodeRuns { nodeId status attempts startedAt completedAt } } } } } } } }`;
const QUERY = readsQuery(20, 5);

interface NodeRunView {
  nodeId: string;
  status: string;
  attempts: number;
  startedAt: string | null;
  completedAt: string | null;
}
interface RunView {
  id: string;
  status: string;
  nodeRuns: NodeRunView[];
}
interface PipelineView {
  id: string;
  name: string;
  runs: RunView[];
}
interface Connection<T> {
  edges: { node: T }[];
}
interface ReadsData {
  pipelines: Connection<{ id: string; name: string; runs: Connection<RunView> }>;
}

async function post(url: string, query: string): Promise<{ data?: ReadsData; errors?: unknown[] }> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ query }),
  });
  return (await response.json()) as { data?: ReadsData; errors?: unknown[] };
}

const SEED_PIPELINE = (i: number) => ({
  name: `reads-${String(i).padStart(2, "0")}`,
  nodes: [
    { id: "start", type: "TRIGGER" as const, config: {} },
    ...Array.from({ length: 8 }, (_, n) => ({
      id: `step${n}`,
      type: "PARALLEL" as const,
      config: {},
    })),
    { id: "join", type: "PARALLEL" as const, config: {} },
  ],
  edges: [
    ...Array.from({ length: 8 }, (_, n) => ({ source: "start", target: `step${n}` })),
    ...Array.from({ length: 8 }, (_, n) => ({ source: `step${n}`, target: "join" })),
  ],
  maxRetriesPerNode: 3,
  timeoutSeconds: 3600,
  maxConcurrency: null,
  breaker: { failureThreshold: 5, recoveryTimeoutMs: 60_000 },
});

const BARE_SDL = `
  type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }
  type NodeRun { nodeId: String! status: String! attempts: Int! startedAt: String completedAt: String }
  type PipelineRun { id: ID! status: String! nodeRuns: [NodeRun!]! }
  type PipelineRunEdge { cursor: String! node: PipelineRun! }
  type PipelineRunConnection { edges: [PipelineRunEdge!]! pageInfo: PageInfo! }
  type Pipeline { id: ID! name: String! runs(first: Int, after: String): PipelineRunConnection! }
  type PipelineConnectionEdge { cursor: String! node: Pipeline! }
  type PipelineConnection { edges: [PipelineConnectionEdge!]! pageInfo: PageInfo! }
  type Query { pipelines(first: Int, after: String): PipelineConnection! }
`;

function connection<T extends { id: string }>(items: readonly T[], first: number) {
  const page = items.slice(0, first);
  return {
    edges: page.map((node) => ({ cursor: node.id, node })),
    pageInfo: {
      hasNextPage: items.length > first,
      hasPreviousPage: false,
      startCursor: page[0]?.id ?? null,
      endCursor: page.at(-1)?.id ?? null,
    },
  };
}

/** The baseline: graphql-yoga with an equivalent schema over arrays in memory. */
async function startBare(pipelines: readonly PipelineView[]) {
  const yoga = createYoga({
    schema: createSchema({
      typeDefs: BARE_SDL,
      resolvers: {
        Query: {
          pipelines: (_: unknown, { first }: { first?: number }) =>
            connection(pipelines, first ?? 20),
        },
        Pipeline: {
          runs: (pipeline: PipelineView, { first }: { first?: number }) =>
            connection(pipeline.runs, first ?? 20),
        },
      },
    }),
    graphqlEndpoint: "/graphql",
    graphiql: false,
    landingPage: false,
    logging: false,
  });
  const server = createServer(yoga);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Seeds SQLite, starts the real server and loads it; `hooks` mark the measured load. */
export async function measureReadsServer(durationSeconds: number, hooks: MeasureHooks = NO_HOOKS) {
  const { store, url: databaseUrl, drop } = await openFreshStore("sqlite");
  const config = loadConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: "silent" });
  const app = buildApp(
    config,
    await createServices(config, { store, logger: pino({ level: "silent" }) }),
  );
  try {
    const { url } = await app.start(0, "127.0.0.1");
    for (let i = 0; i < PIPELINES; i++) {
      const pipeline = await store.createPipeline(SEED_PIPELINE(i));
      for (let r = 0; r < RUNS_PER_PIPELINE; r++) {
        const started = await app.services.engine.runPipeline(pipeline.id, {
          ticket: i * 100 + r,
          title: `ticket ${i}/${r}: the printer on floor 3 is out of toner again`,
        });
        const drained = (async () => {
          for await (const _ of await app.services.engine.events(started.id)) {
            // the run has ended when the stream completes
          }
        })();
        await withTimeout(drained, 10_000, `seed run ${started.id} to end`);
      }
    }
    // Stop polling for work and renewing leases: the statements counted are the requests' own.
    await app.services.engine.stop(0);
    const reference = await post(url, QUERY);
    if (reference.errors || !reference.data)
      throw new Error(`reads query failed: ${JSON.stringify(reference.errors)}`);

    // Statements per request must not grow with the page sizes (no N+1).
    const perShape: Record<string, number> = {};
    for (const [p, r] of [
      [1, 1],
      [5, 5],
      [20, 1],
      [20, 5],
    ] as const) {
      const before = store.stats.queries;
      const answer = await post(url, readsQuery(p, r));
      if (answer.errors) throw new Error(JSON.stringify(answer.errors));
      perShape[`pipelines(first: ${p}) runs(first: ${r})`] = store.stats.queries - before;
    }

    const body = JSON.stringify({ query: QUERY });
    await runLoad({ url, body, connections: CONNECTIONS, durationSeconds: WARMUP_SECONDS });
    const before = store.stats.queries;
    await hooks.begin();
    const load = await runLoad({ url, body, connections: CONNECTIONS, durationSeconds });
    await hooks.end();
    // Requests still in flight when autocannon stops were sent and queried too.
    const queriesPerRequest = (store.stats.queries - before) / Math.max(1, load.sent);
    return { load, queriesPerRequest, perShape, reference: reference.data };
  } finally {
    await app.stop(0);
    await drop();
  }
}

/** The bare server with the same data, under the same load. */
async function measureBareServer(reference: ReadsData, durationSeconds: number) {
  const pipelines: PipelineView[] = reference.pipelines.edges.map(({ node }) => ({
    id: node.id,
    name: node.name,
    runs: node.runs.edges.map((edge) => edge.node),
  }));
  const server = await startBare(pipelines);
  try {
    const check = await post(server.url, QUERY);
    if (JSON.stringify(check.data) !== JSON.stringify(reference))
      throw new Error("the bare server does not answer what the real one does");
    const body = JSON.stringify({ query: QUERY });
    const options = { url: server.url, body, connections: CONNECTIONS };
    await runLoad({ ...options, durationSeconds: WARMUP_SECONDS });
    return await runLoad({ ...options, durationSeconds });
  } finally {
    await server.close();
  }
}

export async function run({ quick, log }: FigureOptions): Promise<FigureResult> {
  const durationSeconds = quick ? 3 : 10;
  const server = await measureReadsServer(durationSeconds);
  const { load: real, queriesPerRequest, perShape, reference } = server;
  log(
    `server: ${real.requestsPerSecond.toFixed(0)} req/s, ${queriesPerRequest.toFixed(2)} statements/request`,
  );
  const bare = await measureBareServer(reference, durationSeconds);
  log(`bare yoga: ${bare.requestsPerSecond.toFixed(0)} req/s`);
  for (const result of [real, bare]) {
    if (result.non2xx > 0 || result.errors > 0)
      throw new Error(`load run had ${result.non2xx} non-2xx answers and ${result.errors} errors`);
  }
  const responseBytes = JSON.stringify({ data: reference }).length;
  const nodeRuns = reference.pipelines.edges.reduce(
    (sum, p) => sum + p.node.runs.edges.reduce((s, r) => s + r.node.nodeRuns.length, 0),
    0,
  );
  const constant = new Set(Object.values(perShape)).size === 1;
  const rows: Row[] = [
    row({
      figure: FIGURE,
      configuration: `SQLite, ${CONNECTIONS} connections, ${durationSeconds} s · throughput`,
      value: real.requestsPerSecond,
      unit: "req/s",
      detail: `p99 ${real.latencyP99Ms} ms (bare ${bare.latencyP99Ms} ms); ${nodeRuns} node runs, ${(responseBytes / 1024).toFixed(0)} KB per response`,
      baseline: { label: "bare graphql-yoga", value: bare.requestsPerSecond },
      target: { op: ">=", value: 0.8, on: "ratio" },
    }),
    row({
      figure: FIGURE,
      configuration: "DB statements per request",
      value: queriesPerRequest,
      unit: "statements",
      detail: Object.entries(perShape)
        .map(([shape, n]) => `${n} for ${shape}`)
        .join("; "),
      target: { op: "==", value: 0, text: "constant" },
      met: constant,
    }),
  ];
  return {
    rows,
    details: {
      query: QUERY,
      pipelines: PIPELINES,
      runsPerPipeline: RUNS_PER_PIPELINE,
      nodeRunsInResponse: nodeRuns,
      responseBytes,
      statementsPerShape: perShape,
      queriesPerRequest,
      real,
      bare,
    },
  };
}
