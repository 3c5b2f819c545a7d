/**
 * Several real server processes on one PostgreSQL and one Redis: cross-instance subscriptions
 * and cancel, kill -9 of the owner with the run resumed elsewhere, SIGTERM hand-over, queued
 * runs taken by whichever instance has room; and restart-resume on SQLite.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../src/store/index.ts";
import { RunEventsDocument } from "./generated/graphql.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/databases.ts";
import { request, type ServerProcess, startServerProcess } from "./helpers/process.ts";
import { subscribeAll } from "./helpers/server.ts";
import { REDIS_URL, serviceAvailable } from "./helpers/services.ts";
import { type Stub, startStub } from "./helpers/stubs.ts";
import { waitFor } from "./helpers/wait.ts";

const ready = (await serviceAvailable("postgres")) && (await serviceAvailable("redis"));

const LEASE_MS = "1500";
const CREATE = `mutation($input: PipelineInput!) { createPipeline(input: $input) { id } }`;
const RUN = `mutation($id: ID!) { runPipeline(id: $id) { id status } }`;
const CANCEL = `mutation($id: ID!) { cancelRun(id: $id) { id status error } }`;
const GET_RUN = `query($id: ID!) { run(id: $id) { id status error nodeRuns { nodeId status attempts } } }`;

type RunView = {
  id: string;
  status: string;
  error: string | null;
  nodeRuns: { nodeId: string; status: string; attempts: number }[];
};

const GET_EVENTS = `query($id: ID!) { run(id: $id) { events { type nodeId attempt } } }`;

/**
 * Waits until the call to /slow has been made and its NODE_STARTED stored: a kill before the
 * commit would otherwise resume a run whose slow node had, as far as the store knows, not
 * started (stored events are always a prefix, so the earlier ones are stored too).
 */
async function slowStarted(url: string, runId: string, stub: Stub): Promise<void> {
  await waitFor("the call to /slow and its stored NODE_STARTED", async () => {
    if (stub.calls.get("/slow") !== 1) return false;
    const { run } = await request<{
      run: { events: { type: string; nodeId: string | null; attempt: number | null }[] };
    }>(url, GET_EVENTS, { id: runId });
    return run.events.some((e) => e.type === "NODE_STARTED" && e.nodeId === "slow");
  });
}

async function getRun(url: string, id: string): Promise<RunView> {
  return (await request<{ run: RunView }>(url, GET_RUN, { id })).run;
}

const steps = (events: { type: string; nodeId?: string | null; attempt?: number | null }[]) =>
  events.map(
    (e) => `${e.type}${e.nodeId ? `:${e.nodeId}` : ""}${e.attempt ? `#${e.attempt}` : ""}`,
  );

/**
 * The chain's events when the instance running it dies while /slow is under way: /slow is
 * attempted again elsewhere (attempt 2), nothing else runs twice.
 */
const RESUMED_CHAIN = [
  "RUN_STARTED",
  "NODE_STARTED:start#1",
  "NODE_COMPLETED:start#1",
  "NODE_STARTED:first#1",
  "NODE_COMPLETED:first#1",
  "NODE_STARTED:slow#1",
  "NODE_STARTED:slow#2",
  "NODE_COMPLETED:slow#2",
  "NODE_STARTED:last#1",
  "NODE_COMPLETED:last#1",
  "RUN_COMPLETED",
];

/** start → first (http /first) → slow (http /slow) → last (http /last) */
function chain(stubUrl: string) {
  const http = (id: string, pathName: string) => ({
    id,
    type: "ACTION",
    // A hung call stays hung however long the other instance takes to start on a busy
    // machine (the action's own default limit is 30 s).
    config: { action: "http", url: `${stubUrl}${pathName}`, timeoutMs: 600_000 },
    retry: { maxAttempts: 3, initialDelayMs: 10 },
  });
  return {
    name: "chain",
    nodes: [
      { id: "start", type: "TRIGGER" },
      http("first", "/first"),
      http("slow", "/slow"),
      http("last", "/last"),
    ],
    edges: [
      { source: "start", target: "first" },
      { source: "first", target: "slow" },
      { source: "slow", target: "last" },
    ],
  };
}

// Real processes: on a loaded machine starting one takes seconds, so each test gets a minute.
describe.skipIf(!ready)("several instances on PostgreSQL and Redis", { timeout: 180_000 }, () => {
  let db: TestDatabase;
  let stub: Stub;
  let slowBehaviour: (call: number) => "hang" | { status: number; delayMs?: number } = () => ({
    status: 200,
  });
  const processes: ServerProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase("postgresql");
    // Migrate once before several processes start on the database.
    await (await db.open()).close();
    stub = await startStub((r) =>
      r.path === "/slow"
        ? slowBehaviour(r.call)
        : { status: 200, body: { path: r.path, call: r.call } },
    );
  });
  afterEach(async () => {
    for (const p of processes.splice(0)) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.kill("SIGKILL");
      await p.exited;
    }
  });
  afterAll(async () => {
    await stub?.close();
    await db?.drop();
  });

  const env = (extra: Record<string, string> = {}) => ({
    DATABASE_URL: db.url,
    REDIS_URL,
    RUN_LEASE_MS: LEASE_MS,
    ...extra,
  });
  async function start(name: string, extra: Record<string, string> = {}) {
    const p = await startServerProcess(name, env(extra));
    processes.push(p);
    return p;
  }

  it("streams a run executing on A to a subscriber on B, and B's cancel stops it on A", async () => {
    const [a, b] = await Promise.all([start("a"), start("b")]);
    const { createPipeline } = await request<{ createPipeline: { id: string } }>(b.url, CREATE, {
      input: {
        name: "long",
        nodes: [
          { id: "start", type: "TRIGGER" },
          { id: "hop", type: "PARALLEL" },
          { id: "wait", type: "DELAY", config: { seconds: 60 } },
        ],
        edges: [
          { source: "start", target: "hop" },
          { source: "hop", target: "wait" },
        ],
      },
    });
    const { runPipeline } = await request<{ runPipeline: { id: string; status: string } }>(
      a.url,
      RUN,
      { id: createPipeline.id },
    );
    expect(runPipeline.status).toBe("RUNNING");
    const watch = subscribeAll(b.wsUrl, RunEventsDocument, { runId: runPipeline.id });
    await waitFor("the delay to start", () =>
      watch.events.some(
        (e) => e.runEvents.type === "NODE_STARTED" && e.runEvents.nodeId === "wait",
      ),
    );
    const asked = Date.now();
    const { cancelRun } = await request<{ cancelRun: { status: string; error: string } }>(
      b.url,
      CANCEL,
      { id: runPipeline.id },
    );
    const cancelMs = Date.now() - asked;
    expect(cancelRun).toMatchObject({ status: "CANCELLED", error: "cancelled by request" });
    const events = (await watch.done).map((e) => e.runEvents);
    expect(steps(events)).toEqual([
      "RUN_STARTED",
      "NODE_STARTED:start#1",
      "NODE_COMPLETED:start#1",
      "NODE_STARTED:hop#1",
      "NODE_COMPLETED:hop#1",
      "NODE_STARTED:wait#1",
      "RUN_CANCELLED",
    ]);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect((await getRun(a.url, runPipeline.id)).status).toBe("CANCELLED");
    expect(
      (await getRun(b.url, runPipeline.id)).nodeRuns.find((n) => n.nodeId === "wait")?.status,
    ).toBe("CANCELLED");
    console.info(`[measure] cross-instance cancel answered in ${cancelMs} ms`);
  });

  it("resumes a run on B after A is killed with SIGKILL: completed nodes are not run again", async () => {
    const a = await start("a");
    slowBehaviour = (call) => (call === 1 ? "hang" : { status: 200 });
    const { createPipeline } = await request<{ createPipeline: { id: string } }>(a.url, CREATE, {
      input: chain(stub.url),
    });
    const { runPipeline } = await request<{ runPipeline: { id: string } }>(a.url, RUN, {
      id: createPipeline.id,
    });
    const b = await start("b");
    const watch = subscribeAll(b.wsUrl, RunEventsDocument, { runId: runPipeline.id }, 30_000);
    await slowStarted(a.url, runPipeline.id, stub);
    const killedAt = Date.now();
    a.kill("SIGKILL");
    expect(await a.exited).toBe("SIGKILL");
    const events = (await watch.done).map((e) => e.runEvents);
    const resumedAt = new Date(
      events.find((e) => e.type === "NODE_STARTED" && e.nodeId === "slow" && e.attempt === 2)!.at,
    ).getTime();
    expect(steps(events)).toEqual(RESUMED_CHAIN);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect([stub.calls.get("/first"), stub.calls.get("/slow"), stub.calls.get("/last")]).toEqual([
      1, 2, 1,
    ]);
    const run = await getRun(b.url, runPipeline.id);
    expect(run.status).toBe("COMPLETED");
    expect(run.nodeRuns.map((n) => [n.nodeId, n.status, n.attempts])).toEqual([
      ["start", "COMPLETED", 1],
      ["first", "COMPLETED", 1],
      ["slow", "COMPLETED", 2],
      ["last", "COMPLETED", 1],
    ]);
    console.info(
      `[measure] hand-over after kill -9: ${resumedAt - killedAt} ms (lease ${LEASE_MS} ms)`,
    );
    for (const key of ["/first", "/slow", "/last"]) stub.calls.delete(key);
  });

  it("hands a run over on SIGTERM: the running node finishes on A, B goes on at once", async () => {
    const a = await start("a", { SHUTDOWN_GRACE_MS: "5000" });
    const b = await start("b");
    slowBehaviour = () => ({ status: 200, delayMs: 700 });
    const { createPipeline } = await request<{ createPipeline: { id: string } }>(a.url, CREATE, {
      input: chain(stub.url),
    });
    const { runPipeline } = await request<{ runPipeline: { id: string } }>(a.url, RUN, {
      id: createPipeline.id,
    });
    const watch = subscribeAll(b.wsUrl, RunEventsDocument, { runId: runPipeline.id }, 30_000);
    await waitFor("A to call /slow", () => stub.calls.get("/slow") === 1);
    a.kill("SIGTERM");
    expect(await a.exited).toBe(0);
    const exitedAt = Date.now();
    const events = (await watch.done).map((e) => e.runEvents);
    expect(steps(events)).toEqual([
      "RUN_STARTED",
      "NODE_STARTED:start#1",
      "NODE_COMPLETED:start#1",
      "NODE_STARTED:first#1",
      "NODE_COMPLETED:first#1",
      "NODE_STARTED:slow#1",
      "NODE_COMPLETED:slow#1",
      "NODE_STARTED:last#1",
      "NODE_COMPLETED:last#1",
      "RUN_COMPLETED",
    ]);
    expect([stub.calls.get("/first"), stub.calls.get("/slow"), stub.calls.get("/last")]).toEqual([
      1, 1, 1,
    ]);
    const lastStarted = new Date(events.find((e) => e.nodeId === "last")!.at).getTime();
    expect(a.logs.some((line) => line.includes("handed unfinished runs over"))).toBe(true);
    console.info(
      `[measure] hand-over after SIGTERM: next node started ${lastStarted - exitedAt} ms after A exited`,
    );
    for (const key of ["/first", "/slow", "/last"]) stub.calls.delete(key);
  });

  it("lets whichever instance has room take queued runs", async () => {
    const [a, b] = await Promise.all([
      start("a", { MAX_ACTIVE_RUNS: "1" }),
      start("b", { MAX_ACTIVE_RUNS: "1" }),
    ]);
    const { createPipeline } = await request<{ createPipeline: { id: string } }>(a.url, CREATE, {
      input: {
        name: "hold",
        nodes: [
          { id: "start", type: "TRIGGER" },
          { id: "wait", type: "DELAY", config: { seconds: 30 } },
        ],
        edges: [{ source: "start", target: "wait" }],
      },
    });
    const first = (
      await request<{ runPipeline: { id: string; status: string } }>(a.url, RUN, {
        id: createPipeline.id,
      })
    ).runPipeline;
    const second = (
      await request<{ runPipeline: { id: string; status: string } }>(a.url, RUN, {
        id: createPipeline.id,
      })
    ).runPipeline;
    const third = (
      await request<{ runPipeline: { id: string; status: string } }>(a.url, RUN, {
        id: createPipeline.id,
      })
    ).runPipeline;
    // Each instance has room for one run: whichever takes which, one runs on each and the
    // third waits. (Under load b may take the first run before a has claimed it.)
    expect([first.status, second.status, third.status].filter((s) => s === "RUNNING")).toEqual([
      "RUNNING",
    ]);
    const ids = [first.id, second.id, third.id];
    const store = await openStore({ provider: "postgresql", databaseUrl: db.url, poolSize: 2 });
    try {
      const runs = await waitFor("one run on each instance", async () => {
        const found = await store.getRuns(ids);
        const owners = found.filter((r) => r?.status === "RUNNING").map((r) => r?.ownerId);
        const queued = found.filter((r) => r?.status === "QUEUED");
        return owners.sort().join() === "a,b" && queued.length === 1 ? found : undefined;
      });
      const onB = runs.find((r) => r?.ownerId === "b")!;
      const waiting = runs.find((r) => r?.status === "QUEUED")!;
      expect(waiting.ownerId).toBeNull();
      await request(b.url, CANCEL, { id: onB.id });
      await waitFor("B to take the queued run", async () => {
        const [run] = await store.getRuns([waiting.id]);
        return run?.ownerId === "b" && run.status === "RUNNING";
      });
      for (const id of ids.filter((id) => id !== onB.id)) await request(a.url, CANCEL, { id });
    } finally {
      await store.close();
    }
  });
});

describe("restart on SQLite", { timeout: 180_000 }, () => {
  let stub: Stub;
  let dir: string;
  const processes: ServerProcess[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "pipelines-restart-"));
    stub = await startStub((r) => (r.path === "/slow" && r.call === 1 ? "hang" : { status: 200 }));
  });
  afterAll(async () => {
    for (const p of processes)
      if (p.child.exitCode === null && p.child.signalCode === null) p.kill("SIGKILL");
    await stub?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("resumes interrupted runs after a crash and a restart", async () => {
    const env = { DATABASE_URL: `file:${path.join(dir, "pipelines.db")}`, RUN_LEASE_MS: LEASE_MS };
    const first = await startServerProcess("one", env);
    processes.push(first);
    const { createPipeline } = await request<{ createPipeline: { id: string } }>(
      first.url,
      CREATE,
      { input: chain(stub.url) },
    );
    const { runPipeline } = await request<{ runPipeline: { id: string } }>(first.url, RUN, {
      id: createPipeline.id,
    });
    await slowStarted(first.url, runPipeline.id, stub);
    first.kill("SIGKILL");
    await first.exited;
    const second = await startServerProcess("two", env);
    processes.push(second);
    const events = (
      await subscribeAll(second.wsUrl, RunEventsDocument, { runId: runPipeline.id }, 30_000).done
    ).map((e) => e.runEvents);
    expect(steps(events)).toEqual(RESUMED_CHAIN);
    expect([stub.calls.get("/first"), stub.calls.get("/slow"), stub.calls.get("/last")]).toEqual([
      1, 2, 1,
    ]);
    expect((await getRun(second.url, runPipeline.id)).status).toBe("COMPLETED");
  });
});
