import { afterAll, beforeAll, expect, it } from "vitest";
import type { AgentConfig } from "../src/config.ts";
import type { Engine } from "../src/engine/engine.ts";
import { availableProviders, describeProviders } from "./helpers/databases.ts";
import {
  collectEvents,
  createPipeline,
  engineEach,
  getRun,
  runToEnd,
  steps,
} from "./helpers/engine.ts";
import { type Reply, type Stub, startOpenAiStub, startStub } from "./helpers/stubs.ts";
import { waitFor } from "./helpers/wait.ts";

const providers = await availableProviders();

let engine: Engine;
const newEngine = engineEach();

const trigger = { id: "start", type: "TRIGGER" } as const;

/** A pipeline start → call (http GET stub/path) with the given retry settings. */
function httpPipeline(
  url: string,
  extra: Record<string, unknown> = {},
  config: Record<string, unknown> = {},
) {
  return {
    name: "http",
    nodes: [
      trigger,
      {
        id: "call",
        type: "ACTION" as const,
        config: { action: "http", url, ...config },
        retry: { maxAttempts: 3, initialDelayMs: 10, maxDelayMs: 15 },
        ...extra,
      },
    ],
    edges: [{ source: "start", target: "call" }],
  };
}

describeProviders(providers)("http action on %s", (provider) => {
  let stub: Stub;
  const script = new Map<string, (call: number) => Reply>();
  beforeAll(async () => {
    stub = await startStub(
      (request) => script.get(request.path)?.(request.call) ?? { status: 404 },
    );
  });
  afterAll(() => stub.close());

  it("retries 5xx with exponential backoff until it succeeds", async () => {
    engine = await newEngine(provider);
    script.set("/flaky", (call) =>
      call <= 2 ? { status: 503 } : { status: 200, body: { hello: "world" } },
    );
    const id = await createPipeline(engine, httpPipeline(`${stub.url}/flaky`));
    const { events, run } = await runToEnd(engine, id);
    expect(steps(events)).toEqual([
      ["RUN_STARTED", null, null],
      ["NODE_STARTED", "start", 1],
      ["NODE_COMPLETED", "start", 1],
      ["NODE_STARTED", "call", 1],
      ["NODE_RETRYING", "call", 1],
      ["NODE_STARTED", "call", 2],
      ["NODE_RETRYING", "call", 2],
      ["NODE_STARTED", "call", 3],
      ["NODE_COMPLETED", "call", 3],
      ["RUN_COMPLETED", null, null],
    ]);
    expect(events[4]!.data).toEqual({
      delayMs: 10,
      error: `HTTP 503 from 127.0.0.1:${new URL(stub.url).port}`,
    });
    expect(events[6]!.data).toMatchObject({ delayMs: 15 });
    expect(stub.calls.get("/flaky")).toBe(3);
    const nodeRuns = (await engine.store.getNodeRuns([run.id])).get(run.id)!;
    const call = nodeRuns.find((n) => n.nodeId === "call")!;
    expect(call).toMatchObject({ status: "COMPLETED", attempts: 3, error: null });
    expect(call.output).toMatchObject({ status: 200, body: { hello: "world" } });
  });

  it("retries 429 and fails after maxAttempts", async () => {
    engine = await newEngine(provider);
    script.set("/busy", () => ({ status: 429 }));
    const id = await createPipeline(engine, httpPipeline(`${stub.url}/busy`));
    const { events, run } = await runToEnd(engine, id);
    expect(steps(events).slice(3)).toEqual([
      ["NODE_STARTED", "call", 1],
      ["NODE_RETRYING", "call", 1],
      ["NODE_STARTED", "call", 2],
      ["NODE_RETRYING", "call", 2],
      ["NODE_STARTED", "call", 3],
      ["NODE_FAILED", "call", 3],
      ["RUN_FAILED", "call", null],
    ]);
    expect(stub.calls.get("/busy")).toBe(3);
    expect(run.status).toBe("FAILED");
    expect(run.error).toBe(
      `node "call" failed after 3 attempts: HTTP 429 from 127.0.0.1:${new URL(stub.url).port}`,
    );
  });

  it("fails a 4xx at once, without retrying", async () => {
    engine = await newEngine(provider);
    script.set("/missing", () => ({ status: 404, body: "no such thing" }));
    const id = await createPipeline(engine, httpPipeline(`${stub.url}/missing`));
    const { events, run } = await runToEnd(engine, id);
    expect(steps(events).slice(3)).toEqual([
      ["NODE_STARTED", "call", 1],
      ["NODE_FAILED", "call", 1],
      ["RUN_FAILED", "call", null],
    ]);
    expect(events[4]!.data).toMatchObject({ code: "HTTP_404", retryable: false });
    expect(stub.calls.get("/missing")).toBe(1);
    expect(run.error).toBe(
      `node "call" failed after 1 attempt: HTTP 404 from 127.0.0.1:${new URL(stub.url).port}: no such thing`,
    );
  });

  it("fails an attempt that outlives timeoutMs, and retries it", async () => {
    engine = await newEngine(provider);
    script.set("/hang", () => "hang");
    const id = await createPipeline(
      engine,
      httpPipeline(`${stub.url}/hang`, {
        timeoutMs: 50,
        retry: { maxAttempts: 2, initialDelayMs: 5 },
      }),
    );
    const { events, run } = await runToEnd(engine, id);
    expect(steps(events).slice(3)).toEqual([
      ["NODE_STARTED", "call", 1],
      ["NODE_RETRYING", "call", 1],
      ["NODE_STARTED", "call", 2],
      ["NODE_FAILED", "call", 2],
      ["RUN_FAILED", "call", null],
    ]);
    expect(events[4]!.data).toEqual({ delayMs: 5, error: "attempt timed out after 50 ms" });
    expect(run.error).toBe('node "call" failed after 2 attempts: attempt timed out after 50 ms');
    expect(stub.calls.get("/hang")).toBe(2);
  });

  it("keeps going after a failure with continueOnFail, passing {error} on", async () => {
    engine = await newEngine(provider);
    script.set("/down", () => ({ status: 400 }));
    const id = await createPipeline(engine, {
      name: "tolerant",
      nodes: [
        trigger,
        {
          id: "call",
          type: "ACTION",
          config: { action: "http", url: `${stub.url}/down` },
          continueOnFail: true,
        },
        {
          id: "report",
          type: "ACTION",
          config: { action: "log", message: "error was: {{inputs.call.error}}" },
        },
      ],
      edges: [
        { source: "start", target: "call" },
        { source: "call", target: "report" },
      ],
    });
    const { events, run } = await runToEnd(engine, id);
    expect(run.status).toBe("COMPLETED");
    expect(steps(events).slice(3)).toEqual([
      ["NODE_STARTED", "call", 1],
      ["NODE_FAILED", "call", 1],
      ["NODE_STARTED", "report", 1],
      ["NODE_COMPLETED", "report", 1],
      ["RUN_COMPLETED", null, null],
    ]);
    const port = new URL(stub.url).port;
    expect(events[6]!.data).toEqual({
      output: {
        message: `error was: HTTP 400 from 127.0.0.1:${port}: {"ok":true,"call":1}`,
        level: "info",
      },
    });
  });

  it("renders templates in url and body, and reaches upstream nodes by id", async () => {
    engine = await newEngine(provider);
    script.set("/source", () => ({ status: 200, body: { token: "abc", items: [1, 2] } }));
    script.set("/sink/abc", () => ({ status: 201, body: { stored: true } }));
    const id = await createPipeline(engine, {
      name: "templates",
      nodes: [
        trigger,
        { id: "fetch", type: "ACTION", config: { action: "http", url: `${stub.url}/source` } },
        { id: "ok", type: "CONDITION", config: { expression: "inputs.fetch.status == 200" } },
        {
          id: "post",
          type: "ACTION",
          config: {
            action: "http",
            method: "POST",
            url: `${stub.url}/sink/{{inputs.fetch.body.token}}`,
            headers: { "x-run": "{{trigger.tag}}" },
            body: { items: "{{inputs.fetch.body.items}}", note: "from {{trigger.tag}}" },
          },
        },
      ],
      edges: [
        { source: "start", target: "fetch" },
        { source: "fetch", target: "ok" },
        { source: "ok", target: "post" },
      ],
    });
    const { run } = await runToEnd(engine, id, { tag: "t1" });
    expect(run.status).toBe("COMPLETED");
    const request = stub.requests.find((r) => r.path === "/sink/abc")!;
    expect(request.method).toBe("POST");
    expect(request.headers["x-run"]).toBe("t1");
    expect(request.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(request.body)).toEqual({ items: [1, 2], note: "from t1" });
  });

  it("refuses private and loopback hosts that are not allowed, without retrying", async () => {
    engine = await newEngine(provider, { httpAllowlist: [] });
    const before = stub.calls.get("/flaky") ?? 0;
    const id = await createPipeline(engine, httpPipeline(`${stub.url}/flaky`));
    const { events, run } = await runToEnd(engine, id);
    expect(steps(events).slice(3)).toEqual([
      ["NODE_STARTED", "call", 1],
      ["NODE_FAILED", "call", 1],
      ["RUN_FAILED", "call", null],
    ]);
    expect(events[4]!.data).toMatchObject({ code: "HOST_NOT_ALLOWED", retryable: false });
    expect(run.error).toBe(
      'node "call" failed after 1 attempt: http action refused host "127.0.0.1": 127.0.0.1 is a private, loopback or link-local address; add it to HTTP_ACTION_ALLOWLIST to allow it',
    );
    expect(stub.calls.get("/flaky") ?? 0).toBe(before);
  });

  it("refuses a name that resolves to a loopback address", async () => {
    engine = await newEngine(provider, { httpAllowlist: [] });
    const port = new URL(stub.url).port;
    const id = await createPipeline(engine, httpPipeline(`http://localhost:${port}/flaky`));
    const { run } = await runToEnd(engine, id);
    expect(run.error).toMatch(
      /^node "call" failed after 1 attempt: http action refused host "localhost": (127\.0\.0\.1|::1) is a private/,
    );
  });

  it("aborts the request in flight when the run is cancelled", async () => {
    engine = await newEngine(provider);
    script.set("/slow", () => "hang");
    const id = await createPipeline(engine, httpPipeline(`${stub.url}/slow`));
    const started = await engine.runPipeline(id, null);
    await waitFor("the call to /slow", () => stub.calls.get("/slow") === 1);
    const run = await engine.cancelRun(started.id);
    expect(run.status).toBe("CANCELLED");
    await waitFor("the request to be aborted", () => stub.aborted.includes("/slow"));
    const events = await collectEvents(engine, started.id);
    expect(steps(events).slice(3)).toEqual([
      ["NODE_STARTED", "call", 1],
      ["RUN_CANCELLED", null, null],
    ]);
  });

  it("cancel interrupts a backoff wait at once", async () => {
    engine = await newEngine(provider);
    script.set("/always-503", () => ({ status: 503 }));
    const id = await createPipeline(
      engine,
      httpPipeline(`${stub.url}/always-503`, {
        retry: { maxAttempts: 5, initialDelayMs: 60_000, maxDelayMs: 60_000 },
      }),
    );
    const started = await engine.runPipeline(id, null);
    const collecting = collectEvents(engine, started.id);
    await waitFor("the node to wait for its retry", async () =>
      (await engine.store.getNodeRuns([started.id]))
        .get(started.id)
        ?.some((n) => n.status === "RETRYING"),
    );
    const run = await engine.cancelRun(started.id);
    expect(run.status).toBe("CANCELLED");
    expect(steps(await collecting).slice(3)).toEqual([
      ["NODE_STARTED", "call", 1],
      ["NODE_RETRYING", "call", 1],
      ["RUN_CANCELLED", null, null],
    ]);
    expect(stub.calls.get("/always-503")).toBe(1);
  });

  it("opens the breaker after failureThreshold failed runs, fails fast while open, and resets", async () => {
    engine = await newEngine(provider);
    let healthy = false;
    script.set("/breaker", () => (healthy ? { status: 200 } : { status: 500 }));
    const id = await createPipeline(engine, {
      ...httpPipeline(`${stub.url}/breaker`, { retry: { maxAttempts: 2, initialDelayMs: 1 } }),
      breaker: { failureThreshold: 2, recoveryTimeoutMs: 60_000 },
    });
    const first = await runToEnd(engine, id);
    const second = await runToEnd(engine, id);
    expect([first.run.status, second.run.status]).toEqual(["FAILED", "FAILED"]);
    expect(stub.calls.get("/breaker")).toBe(4);
    const open = await engine.store.getBreaker(id, "call");
    expect(open).toMatchObject({ state: "OPEN", failureCount: 2 });

    const third = await runToEnd(engine, id);
    expect(stub.calls.get("/breaker")).toBe(4);
    expect(steps(third.events).slice(3)).toEqual([
      ["NODE_FAILED", "call", null],
      ["RUN_FAILED", "call", null],
    ]);
    expect(third.events[3]!.data).toMatchObject({ code: "BREAKER_OPEN", retryable: false });
    expect(third.run.error).toBe(
      `node "call" failed: circuit breaker of node "call" is OPEN until ${new Date(open!.openedAt!.getTime() + 60_000).toISOString()}: not called`,
    );

    expect(await engine.resetBreaker(id, "call")).toMatchObject({
      state: "CLOSED",
      failureCount: 0,
      openedAt: null,
    });
    healthy = true;
    const fourth = await runToEnd(engine, id);
    expect(fourth.run.status).toBe("COMPLETED");
    expect(stub.calls.get("/breaker")).toBe(5);
    const [pipeline] = await engine.store.getPipelines([id]);
    expect([pipeline!.runCount, pipeline!.successCount, pipeline!.errorCount]).toEqual([4, 1, 3]);
  });

  it("lets one trial call through after recoveryTimeoutMs and closes on success", async () => {
    // The breakers read a clock the test moves: no waiting, no race with a slow machine.
    let clock = Date.now();
    engine = await newEngine(provider, { now: () => new Date(clock) });
    let healthy = false;
    script.set("/recover", () => (healthy ? { status: 200 } : { status: 500 }));
    const id = await createPipeline(engine, {
      ...httpPipeline(`${stub.url}/recover`, { retry: { maxAttempts: 1 } }),
      breaker: { failureThreshold: 1, recoveryTimeoutMs: 60_000 },
    });
    expect((await runToEnd(engine, id)).run.status).toBe("FAILED");
    expect(await engine.store.getBreaker(id, "call")).toMatchObject({
      state: "OPEN",
      failureCount: 1,
    });
    healthy = true;
    clock += 59_999;
    expect((await runToEnd(engine, id)).run.error).toMatch(/is OPEN until/);
    clock += 1;
    expect((await runToEnd(engine, id)).run.status).toBe("COMPLETED");
    expect(await engine.store.getBreaker(id, "call")).toMatchObject({
      state: "CLOSED",
      failureCount: 0,
    });
    expect(stub.calls.get("/recover")).toBe(2);
  });
});

describeProviders(providers)("agent nodes on %s", (provider) => {
  let openai: Stub;
  let script: (call: number) => Reply | { content: string };
  beforeAll(async () => {
    openai = await startOpenAiStub((call, request) => {
      void request;
      return script(call);
    });
  });
  afterAll(() => openai.close());

  const agents = (): AgentConfig[] => [
    {
      id: "writer",
      provider: "openai",
      baseUrl: `${openai.url}/v1`,
      model: "gpt-test",
      apiKey: "sk-test",
      systemPrompt: "You write summaries.",
      temperature: 0.2,
      maxTokens: undefined,
      timeoutMs: 5000,
    },
  ];
  const pipeline = {
    name: "agent",
    nodes: [
      trigger,
      {
        id: "write",
        type: "AGENT" as const,
        config: { agentId: "writer", task: "Summarise {{trigger.text}}" },
        retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 10 },
      },
    ],
    edges: [{ source: "start", target: "write" }],
  };

  it("calls an OpenAI-compatible endpoint with the rendered task", async () => {
    engine = await newEngine(provider, { agents: agents() });
    script = () => ({ content: "A short summary." });
    const before = openai.requests.length;
    const id = await createPipeline(engine, pipeline);
    const { run } = await runToEnd(engine, id, { text: "the report" });
    expect(run.status).toBe("COMPLETED");
    const request = openai.requests[before]!;
    expect(request.headers.authorization).toBe("Bearer sk-test");
    expect(JSON.parse(request.body)).toEqual({
      model: "gpt-test",
      messages: [
        { role: "system", content: "You write summaries." },
        { role: "user", content: "Summarise the report" },
      ],
      temperature: 0.2,
    });
    const nodeRuns = (await engine.store.getNodeRuns([run.id])).get(run.id)!;
    expect(nodeRuns.find((n) => n.nodeId === "write")!.output).toEqual({
      result: "A short summary.",
      agentId: "writer",
      model: "stub-model",
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
    });
  });

  it("retries 429 and 500 from the agent, then succeeds", async () => {
    engine = await newEngine(provider, { agents: agents() });
    let calls = 0;
    script = () => {
      calls++;
      return calls === 1
        ? { status: 429 }
        : calls === 2
          ? { status: 500 }
          : { content: "third time" };
    };
    const id = await createPipeline(engine, pipeline);
    const { events, run } = await runToEnd(engine, id, { text: "x" });
    expect(steps(events).slice(3)).toEqual([
      ["NODE_STARTED", "write", 1],
      ["NODE_RETRYING", "write", 1],
      ["NODE_STARTED", "write", 2],
      ["NODE_RETRYING", "write", 2],
      ["NODE_STARTED", "write", 3],
      ["NODE_COMPLETED", "write", 3],
      ["RUN_COMPLETED", null, null],
    ]);
    expect(events[4]!.data).toEqual({ delayMs: 5, error: 'agent "writer" answered HTTP 429' });
    expect(events[6]!.data).toEqual({ delayMs: 10, error: 'agent "writer" answered HTTP 500' });
    expect(run.status).toBe("COMPLETED");
    expect(calls).toBe(3);
  });

  it("fails at once on a 401 from the agent", async () => {
    engine = await newEngine(provider, { agents: agents() });
    script = () => ({ status: 401, body: { error: "bad key" } });
    const id = await createPipeline(engine, pipeline);
    const { events, run } = await runToEnd(engine, id, { text: "x" });
    expect(steps(events).slice(3)).toEqual([
      ["NODE_STARTED", "write", 1],
      ["NODE_FAILED", "write", 1],
      ["RUN_FAILED", "write", null],
    ]);
    expect(run.error).toBe(
      'node "write" failed after 1 attempt: agent "writer" answered HTTP 401: {"error":"bad key"}',
    );
  });

  it("uses agents registered in code", async () => {
    engine = await newEngine(provider);
    engine.agents.register("echo", async ({ task, agentId }) => ({
      result: task.toUpperCase(),
      agentId,
    }));
    const id = await createPipeline(engine, {
      ...pipeline,
      nodes: [
        trigger,
        { ...pipeline.nodes[1]!, config: { agentId: "echo", task: "hi {{trigger.who}}" } },
      ],
    });
    const { run } = await runToEnd(engine, id, { who: "there" });
    const nodeRuns = (await engine.store.getNodeRuns([run.id])).get(run.id)!;
    expect(nodeRuns.find((n) => n.nodeId === "write")!.output).toEqual({
      result: "HI THERE",
      agentId: "echo",
    });
    expect((await getRun(engine.store, run.id)).status).toBe("COMPLETED");
  });
});
