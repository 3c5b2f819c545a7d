/**
 * OpenTelemetry tracing through a real server, spans kept by an in-memory exporter: the
 * GraphQL operation continues the caller's trace, the run is a trace of its own linked to that
 * operation, each node attempt is a child of the run, and the `http` action sends the attempt's
 * `traceparent`.
 */
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { MemoryStore } from "../src/store/memory.ts";
import { CreatePipelineDocument, GetRunDocument } from "./generated/graphql.ts";
import { type Gate, startGate } from "./helpers/gate.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { waitFor } from "./helpers/wait.ts";

const exporter = new InMemorySpanExporter();
let server: TestServer;
let gate: Gate;

beforeAll(async () => {
  gate = await startGate({ failFirst: 1 });
  server = await startTestServer(
    new MemoryStore(),
    { OTEL_TRACES_EXPORTER: "otlp" },
    { spanProcessor: new SimpleSpanProcessor(exporter) },
  );
});
afterAll(async () => {
  await server.close();
  await gate.close();
});

const CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN = "00f067aa0ba902b7";

const spanNamed = (name: string, attempt?: number): ReadableSpan => {
  const found = exporter
    .getFinishedSpans()
    .filter(
      (span) =>
        span.name === name &&
        (attempt === undefined || span.attributes["pipeline.node.attempt"] === attempt),
    );
  expect(found, `spans named ${name}`).toHaveLength(1);
  return found[0]!;
};

it("links the operation, the run and each node attempt, and propagates the attempt's context", async () => {
  const { createPipeline } = await server.gql(CreatePipelineDocument, {
    input: {
      name: "traced",
      nodes: [
        { id: "start", type: "TRIGGER" },
        {
          id: "call",
          type: "ACTION",
          config: { action: "http", url: `${gate.url}/held` },
          retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 1 },
        },
      ],
      edges: [{ source: "start", target: "call" }],
    },
  });
  // The caller's own trace context, as a traced client would send it.
  const response = await fetch(server.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01`,
    },
    body: JSON.stringify({
      query: "mutation Start($id: ID!) { runPipeline(id: $id) { id } }",
      variables: { id: createPipeline.id },
    }),
  });
  const { data } = (await response.json()) as { data: { runPipeline: { id: string } } };
  const runId = data.runPipeline.id;
  await waitFor("the second call to be held", () => gate.held === 1);
  gate.release();
  await waitFor("the run to complete", async () => {
    const { run } = await server.gql(GetRunDocument, { id: runId });
    return run?.status === "COMPLETED";
  });
  await waitFor("the run's span to end", () =>
    exporter.getFinishedSpans().some((span) => span.name === "run traced"),
  );

  const operation = spanNamed("mutation.Start");
  expect(operation.kind).toBe(SpanKind.SERVER);
  expect(operation.spanContext().traceId).toBe(CALLER_TRACE);
  expect(operation.parentSpanContext?.spanId).toBe(CALLER_SPAN);

  const run = spanNamed("run traced");
  const runTrace = run.spanContext().traceId;
  expect(runTrace).not.toBe(CALLER_TRACE);
  expect(run.parentSpanContext).toBeUndefined();
  expect(run.links.map((link) => link.context.spanId)).toEqual([operation.spanContext().spanId]);
  expect(run.attributes).toMatchObject({
    "pipeline.run.id": runId,
    "pipeline.id": createPipeline.id,
    "pipeline.name": "traced",
    "pipeline.version": 1,
    "pipeline.run.resumed": false,
    "pipeline.run.status": "COMPLETED",
  });
  expect(run.status.code).toBe(SpanStatusCode.OK);

  const nodes = [spanNamed("node start"), spanNamed("node call", 1), spanNamed("node call", 2)];
  for (const node of nodes) {
    expect(node.spanContext().traceId).toBe(runTrace);
    expect(node.parentSpanContext?.spanId).toBe(run.spanContext().spanId);
  }
  const [start, failed, succeeded] = nodes as [ReadableSpan, ReadableSpan, ReadableSpan];
  expect(start.attributes).toMatchObject({
    "pipeline.node.type": "TRIGGER",
    "pipeline.node.attempt": 1,
  });
  expect(failed.status).toEqual({
    code: SpanStatusCode.ERROR,
    message: expect.stringMatching(/^HTTP 503 from 127\.0\.0\.1:\d+$/),
  });
  expect(failed.attributes["pipeline.node.retry_delay_ms"]).toBe(1);
  expect(succeeded.status.code).toBe(SpanStatusCode.UNSET);

  // Each call carried its own attempt's context.
  expect(gate.requests.map((request) => request.headers.traceparent)).toEqual([
    `00-${runTrace}-${failed.spanContext().spanId}-01`,
    `00-${runTrace}-${succeeded.spanContext().spanId}-01`,
  ]);
});
