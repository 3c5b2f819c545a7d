/**
 * Request ids and run log lines: each HTTP request gets an id (the client's X-Request-Id when
 * it is a plain token), answered in the response header and carried by every log line made
 * while handling it, the lines of the run it starts included; a run logs one line when it
 * starts and one when it ends.
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createLogger } from "../src/observability/logger.ts";
import { MemoryStore } from "../src/store/memory.ts";
import { CreatePipelineDocument, GetRunDocument } from "./generated/graphql.ts";
import { startTestServer, type TestServer, testConfig } from "./helpers/server.ts";
import { waitFor } from "./helpers/wait.ts";

const lines: Record<string, unknown>[] = [];
let server: TestServer;
let pipelineId: string;

beforeAll(async () => {
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n").filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const config = testConfig({ LOG_LEVEL: "info", INSTANCE_ID: "i-1" });
  server = await startTestServer(
    new MemoryStore(),
    {},
    { logger: createLogger(config, destination) },
  );
  const { createPipeline } = await server.gql(CreatePipelineDocument, {
    input: {
      name: "greeter",
      nodes: [
        { id: "start", type: "TRIGGER" },
        {
          id: "greet",
          type: "ACTION",
          config: { action: "log", message: "hello {{trigger.who}}" },
        },
      ],
      edges: [{ source: "start", target: "greet" }],
    },
  });
  pipelineId = createPipeline.id;
});
afterAll(() => server.close());

async function startRun(headers: Record<string, string>) {
  const response = await fetch(server.url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({
      query: 'mutation($id: ID!) { runPipeline(id: $id, triggerData: {who: "ada"}) { id } }',
      variables: { id: pipelineId },
    }),
  });
  const body = (await response.json()) as { data: { runPipeline: { id: string } } };
  const runId = body.data.runPipeline.id;
  await waitFor("the run to complete", async () => {
    const { run } = await server.gql(GetRunDocument, { id: runId });
    return run?.status === "COMPLETED";
  });
  await waitFor("the run's last line", () =>
    lines.some((l) => l.runId === runId && l.msg === "run completed"),
  );
  return { runId, requestId: response.headers.get("x-request-id") };
}

it("keeps the client's request id and puts it on every line of the run the request started", async () => {
  const { runId, requestId } = await startRun({ "x-request-id": "req-42" });
  expect(requestId).toBe("req-42");
  const ofRun = lines.filter((line) => line.runId === runId);
  expect(ofRun.map((line) => [line.msg, line.requestId, line.instance])).toEqual([
    ["run started", "req-42", "i-1"],
    ["hello ada", "req-42", "i-1"],
    ["run completed", "req-42", "i-1"],
  ]);
  expect(ofRun[0]).toMatchObject({ pipelineId, pipelineVersion: 1, nodes: 2, level: 30 });
  expect(ofRun[2]).toMatchObject({ status: "COMPLETED", durationMs: expect.any(Number) });
});

it("makes a UUIDv7 for a request without an id, or with one that is not a plain token", async () => {
  const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const plain = await startRun({});
  expect(plain.requestId).toMatch(uuidV7);
  const odd = await startRun({ "x-request-id": "two words" });
  expect(odd.requestId).toMatch(uuidV7);
  expect(odd.requestId).not.toBe(plain.requestId);
  for (const { runId, requestId } of [plain, odd]) {
    const ofRun = lines.filter((line) => line.runId === runId);
    expect(ofRun.map((line) => line.requestId)).toEqual([requestId, requestId, requestId]);
  }
});

it("answers the id on other endpoints too", async () => {
  const response = await fetch(new URL("/health", server.url), {
    headers: { "x-request-id": "probe-1" },
  });
  expect(response.headers.get("x-request-id")).toBe("probe-1");
});
