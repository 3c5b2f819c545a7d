import { afterAll, beforeAll, expect, it } from "vitest";
import {
  CancelRunDocument,
  CreatePipelineDocument,
  DashboardDocument,
  type DashboardQuery,
  type DashboardQueryVariables,
  GetRunDocument,
  ListRunsDocument,
  PipelineBreakersDocument,
  type PipelineInput,
  ResetBreakerDocument,
  RunEventLogDocument,
  RunEventsDocument,
  RunPipelineDocument,
} from "./generated/graphql.ts";
import { availableProviders, describeProviders, freshStore } from "./helpers/databases.ts";
import { startTestServer, subscribeAll, type TestServer } from "./helpers/server.ts";
import { type Stub, startStub } from "./helpers/stubs.ts";
import { waitFor } from "./helpers/wait.ts";

const providers = await availableProviders(false);

const steps = (
  events: readonly { type: string; nodeId?: string | null; attempt?: number | null }[],
) => events.map((e) => [e.type, e.nodeId ?? null, e.attempt ?? null]);

const trigger = { id: "start", type: "TRIGGER" } as const;

describeProviders(providers)("runs through the server on %s", (provider) => {
  let server: TestServer;
  let stub: Stub;
  let cleanup: () => Promise<void>;
  let failing = true;

  beforeAll(async () => {
    const fresh = await freshStore(provider);
    cleanup = fresh.cleanup;
    server = await startTestServer(fresh.store);
    stub = await startStub((request) => {
      if (request.path === "/flaky")
        return request.call === 1 ? { status: 502 } : { status: 200, body: { n: request.call } };
      if (request.path === "/breaker") return failing ? { status: 500 } : { status: 200 };
      return { status: 404 };
    });
  });
  afterAll(async () => {
    await server.close();
    await stub.close();
    await cleanup();
  });

  async function create(input: PipelineInput): Promise<string> {
    return (await server.gql(CreatePipelineDocument, { input })).createPipeline.id;
  }

  it("streams a run's events over graphql-ws, in order, and completes after the terminal one", async () => {
    const id = await create({
      name: "watched",
      nodes: [
        trigger,
        {
          id: "fetch",
          type: "ACTION",
          config: { action: "http", url: `${stub.url}/flaky` },
          retry: { maxAttempts: 2, initialDelayMs: 20 },
        },
        { id: "wait", type: "DELAY", config: { seconds: 0.05 } },
      ],
      edges: [
        { source: "start", target: "fetch" },
        { source: "fetch", target: "wait" },
      ],
    });
    const { runPipeline } = await server.gql(RunPipelineDocument, {
      id,
      triggerData: { who: "ws" },
    });
    expect(runPipeline.status).toBe("RUNNING");
    const subscription = subscribeAll(server.wsUrl, RunEventsDocument, { runId: runPipeline.id });
    const events = (await subscription.done).map((e) => e.runEvents);
    expect(steps(events)).toEqual([
      ["RUN_STARTED", null, null],
      ["NODE_STARTED", "start", 1],
      ["NODE_COMPLETED", "start", 1],
      ["NODE_STARTED", "fetch", 1],
      ["NODE_RETRYING", "fetch", 1],
      ["NODE_STARTED", "fetch", 2],
      ["NODE_COMPLETED", "fetch", 2],
      ["NODE_STARTED", "wait", 1],
      ["NODE_COMPLETED", "wait", 1],
      ["RUN_COMPLETED", null, null],
    ]);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(events.every((e) => e.runId === runPipeline.id)).toBe(true);
    expect(events[4]!.data).toMatchObject({ delayMs: 20 });

    // Replay from the middle, then the finished run completes the subscription at once.
    const later = subscribeAll(server.wsUrl, RunEventsDocument, {
      runId: runPipeline.id,
      after: 7,
    });
    expect((await later.done).map((e) => e.runEvents.seq)).toEqual([8, 9, 10]);

    const { run } = await server.gql(GetRunDocument, { id: runPipeline.id });
    expect(run).toMatchObject({
      status: "COMPLETED",
      error: null,
      triggerData: { who: "ws" },
      pipeline: { id, runCount: 1, successCount: 1, errorCount: 0 },
    });
    expect(run!.nodeRuns.map((n) => [n.nodeId, n.type, n.status, n.attempts])).toEqual([
      ["start", "TRIGGER", "COMPLETED", 1],
      ["fetch", "ACTION", "COMPLETED", 2],
      ["wait", "DELAY", "COMPLETED", 1],
    ]);
    const log = await server.gql(RunEventLogDocument, { id: runPipeline.id, after: 8 });
    expect(log.run!.events.map((e) => e.type)).toEqual(["NODE_COMPLETED", "RUN_COMPLETED"]);
  });

  it("streams over SSE too", async () => {
    const id = await create({
      name: "sse",
      nodes: [trigger, { id: "p", type: "PARALLEL" }],
      edges: [{ source: "start", target: "p" }],
    });
    const { runPipeline } = await server.gql(RunPipelineDocument, { id });
    const response = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({
        query: "subscription($runId: ID!) { runEvents(runId: $runId) { seq type nodeId } }",
        variables: { runId: runPipeline.id },
      }),
    });
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const text = await response.text();
    const events = text
      .split("\n")
      .filter((line) => line.startsWith("data: ") && line.includes("runEvents"))
      .map((line) => JSON.parse(line.slice(6)).data.runEvents);
    expect(events.map((e: { type: string; nodeId: string | null }) => [e.type, e.nodeId])).toEqual([
      ["RUN_STARTED", null],
      ["NODE_STARTED", "start"],
      ["NODE_COMPLETED", "start"],
      ["NODE_STARTED", "p"],
      ["NODE_COMPLETED", "p"],
      ["RUN_COMPLETED", null],
    ]);
    expect(text).toContain("event: complete");
  });

  it("cancels a long run; the subscriber sees RUN_CANCELLED and unstarted nodes read CANCELLED", async () => {
    const id = await create({
      name: "long",
      nodes: [
        trigger,
        { id: "wait", type: "DELAY", config: { seconds: 30 } },
        { id: "never", type: "PARALLEL" },
      ],
      edges: [
        { source: "start", target: "wait" },
        { source: "wait", target: "never" },
      ],
    });
    const { runPipeline } = await server.gql(RunPipelineDocument, { id });
    const subscription = subscribeAll(server.wsUrl, RunEventsDocument, { runId: runPipeline.id });
    await waitFor("the first four events", () => subscription.events.length >= 4);
    const { cancelRun } = await server.gql(CancelRunDocument, { id: runPipeline.id });
    expect(cancelRun.status).toBe("CANCELLED");
    expect(cancelRun.error).toBe("cancelled by request");
    expect(cancelRun.nodeRuns.map((n) => [n.nodeId, n.status])).toEqual([
      ["start", "COMPLETED"],
      ["wait", "CANCELLED"],
      ["never", "CANCELLED"],
    ]);
    expect(steps((await subscription.done).map((e) => e.runEvents))).toEqual([
      ["RUN_STARTED", null, null],
      ["NODE_STARTED", "start", 1],
      ["NODE_COMPLETED", "start", 1],
      ["NODE_STARTED", "wait", 1],
      ["RUN_CANCELLED", null, null],
    ]);
    const again = await server.gql(CancelRunDocument, { id: runPipeline.id });
    expect(again.cancelRun).toEqual(cancelRun);
    const { runs } = await server.gql(ListRunsDocument, { pipelineId: id, status: ["CANCELLED"] });
    expect(runs.edges.map((e) => e.node.id)).toEqual([runPipeline.id]);
  });

  it("shows a breaker opening across runs and resets it", async () => {
    failing = true;
    const id = await create({
      name: "breaker",
      breaker: { failureThreshold: 2, recoveryTimeoutMs: 60_000 },
      nodes: [
        trigger,
        {
          id: "call",
          type: "ACTION",
          config: { action: "http", url: `${stub.url}/breaker` },
          retry: { maxAttempts: 1 },
        },
      ],
      edges: [{ source: "start", target: "call" }],
    });
    for (let i = 0; i < 2; i++) {
      const { runPipeline } = await server.gql(RunPipelineDocument, { id });
      await subscribeAll(server.wsUrl, RunEventsDocument, { runId: runPipeline.id }).done;
    }
    const { pipeline } = await server.gql(PipelineBreakersDocument, { id });
    expect(pipeline!.breakers).toHaveLength(1);
    expect(pipeline!.breakers[0]).toMatchObject({ nodeId: "call", state: "OPEN", failureCount: 2 });
    const openedAt = new Date(pipeline!.breakers[0]!.openedAt!);
    expect(pipeline!.breakers[0]!.halfOpenAt).toBe(
      new Date(openedAt.getTime() + 60_000).toISOString(),
    );
    const { resetBreaker } = await server.gql(ResetBreakerDocument, {
      pipelineId: id,
      nodeId: "call",
    });
    expect(resetBreaker).toEqual({
      nodeId: "call",
      state: "CLOSED",
      failureCount: 0,
      openedAt: null,
      halfOpenAt: null,
    });
    const notANode = await server.raw(ResetBreakerDocument, { pipelineId: id, nodeId: "start" });
    expect(notANode.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    failing = false;
  });

  it("answers a dashboard query with a constant number of database queries", async () => {
    // 20 pipelines with six finished runs each, all started at once and watched to their end.
    const ids: string[] = [];
    for (let p = 0; p < 20; p++) {
      ids.push(
        await create({
          name: `dash-${p}`,
          nodes: [trigger, { id: "p", type: "PARALLEL" }],
          edges: [{ source: "start", target: "p" }],
        }),
      );
    }
    const started = await Promise.all(
      ids.flatMap((id) => Array.from({ length: 6 }, () => server.gql(RunPipelineDocument, { id }))),
    );
    await Promise.all(
      started.map(
        ({ runPipeline }) =>
          subscribeAll(server.wsUrl, RunEventsDocument, { runId: runPipeline.id }).done,
      ),
    );
    // The engine's background polling (claims, leases) would share the counter: it is stopped
    // before anything is counted. The fewest of three answers is the query's own count (the
    // first reads the finished runs' node runs, which later ones find in memory).
    await server.app.services.engine.stop(0);
    const counts: number[] = [];
    for (const pipelines of [2, 20]) {
      const measured: number[] = [];
      let page!: Awaited<
        ReturnType<typeof server.gql<DashboardQuery, DashboardQueryVariables>>
      >["pipelines"];
      for (let attempt = 0; attempt < 3; attempt++) {
        const before = server.app.services.store.stats.queries;
        ({ pipelines: page } = await server.gql(DashboardDocument, { first: pipelines, runs: 5 }));
        measured.push(server.app.services.store.stats.queries - before);
      }
      counts.push(Math.min(...measured));
      expect(page.edges).toHaveLength(pipelines);
      for (const edge of page.edges) {
        expect(edge.node.runs.edges).toHaveLength(5);
        expect(edge.node.runs.pageInfo.hasNextPage).toBe(true);
        for (const run of edge.node.runs.edges) {
          expect(run.node.status).toBe("COMPLETED");
          expect(run.node.nodeRuns.map((n) => n.status)).toEqual(["COMPLETED", "COMPLETED"]);
        }
      }
    }
    // pipelines + runs + node runs + breakers: one query each, whatever the page size (the
    // finished runs' node runs come from memory once read).
    expect(counts).toEqual([3, 3]);
  });
});
