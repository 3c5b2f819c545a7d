/**
 * The CLI as a user runs it: a process per command line against a server started here.
 * Outputs and exit codes are asserted exactly.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { parse } from "yaml";
import { MemoryStore } from "../src/store/memory.ts";
import { cli, runIdOf } from "./helpers/cli.ts";
import { freePort, repoRoot, runToExit } from "./helpers/process.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { type Stub, startStub } from "./helpers/stubs.ts";

// Each test starts processes (a tsx start is a few seconds on a loaded 2-core machine).
vi.setConfig({ testTimeout: 90_000, hookTimeout: 180_000 });

let server: TestServer;
let stub: Stub;
let dir: string;

const file = (name: string, text: string) => {
  const target = path.join(dir, name);
  writeFileSync(target, text);
  return target;
};

beforeAll(async () => {
  server = await startTestServer(new MemoryStore());
  stub = await startStub(() => ({ status: 400, body: { error: "bad request" } }));
  dir = mkdtempSync(path.join(tmpdir(), "pipelines-cli-"));
});
afterAll(async () => {
  await server.close();
  await stub.close();
  rmSync(dir, { recursive: true, force: true });
});

const GREET = `name: greet
nodes:
  - { id: start, type: TRIGGER }
  - { id: hello, type: ACTION, config: { action: log, message: "hello {{trigger.who}}" } }
edges:
  - { source: start, target: hello }
`;

describe("apply, validate, export, list", () => {
  it("creates a pipeline, then updates the one of that name", async () => {
    const greet = file("greet.yaml", GREET);
    const created = await cli(server.url, ["apply", greet]);
    expect(created.code).toBe(0);
    expect(created.stderr).toBe("");
    const id = /^created pipeline "greet" \(id (\S+), version 1\)\n$/.exec(created.stdout)?.[1];
    expect(id).toBeDefined();
    const updated = await cli(server.url, ["apply", greet]);
    expect(updated).toEqual({
      code: 0,
      stdout: `updated pipeline "greet" (id ${id}, version 2)\n`,
      stderr: "",
    });
  });

  it("prints each validation error with its node id and stores nothing", async () => {
    const bad = file(
      "bad.yaml",
      `name: bad
nodes:
  - { id: start, type: TRIGGER }
  - { id: fetch, type: ACTION, config: { action: http } }
  - { id: loop, type: PARALLEL }
edges:
  - { source: start, target: fetch }
  - { source: loop, target: loop }
`,
    );
    const problems = `${bad}: 3 problems
  [fetch] INVALID_ACTION_CONFIG: node "fetch": http needs config.url
  [loop] SELF_LOOP: edge "loop" → "loop" leads from node "loop" to itself
  [loop] UNREACHABLE_NODE: node "loop" cannot be reached from a TRIGGER
`;
    expect(await cli(server.url, ["validate", bad])).toEqual({
      code: 1,
      stdout: "",
      stderr: problems,
    });
    expect(await cli(server.url, ["apply", bad])).toEqual({
      code: 1,
      stdout: "",
      stderr: `${problems}${bad}: nothing stored (--draft stores an invalid pipeline)\n`,
    });
    const list = await cli(server.url, ["list", "--format", "json"]);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((p) => p.name)).not.toContain("bad");
    const draft = await cli(server.url, ["apply", bad, "--draft"]);
    expect(draft.code).toBe(1);
    expect(draft.stdout).toMatch(
      /^created pipeline "bad" \(id \S+, version 1, stored as an invalid draft\)\n$/,
    );
  });

  it("names the node of a wrong type or an unknown field, and the line of a YAML error", async () => {
    const wrong = file(
      "wrong.yaml",
      "name: wrong\nnodes:\n  - { id: start, type: TRIGGR }\n  - { id: b, type: PARALLEL, bogus: 1 }\n",
    );
    expect(await cli(server.url, ["validate", wrong])).toEqual({
      code: 1,
      stdout: "",
      stderr: `${wrong}: not a pipeline definition
  [start] Value "TRIGGR" does not exist in "NodeType" enum. Did you mean the enum value "TRIGGER"?
  [b] Field "bogus" is not defined by type "PipelineNodeInput".
`,
    });
    const broken = file("broken.yaml", "name: x\nnodes: [\n");
    expect(await cli(server.url, ["validate", broken])).toEqual({
      code: 1,
      stdout: "",
      stderr: `${broken}: not YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 3, column 1\n`,
    });
  });

  it("validates a good file, JSON too", async () => {
    const json = file("greet.json", JSON.stringify(parse(GREET)));
    expect(await cli(server.url, ["validate", json])).toEqual({
      code: 0,
      stdout: `${json}: pipeline "greet" is valid\n`,
      stderr: "",
    });
  });

  it("exports what applies back unchanged, as YAML and JSON", async () => {
    const source = `name: round-trip
maxRetriesPerNode: 2
timeoutSeconds: 90
breaker:
  failureThreshold: 4
  recoveryTimeoutMs: 60000
nodes:
  - id: start
    type: TRIGGER
  - id: call
    type: ACTION
    name: Call the service
    config:
      action: http
      url: http://127.0.0.1:1/x
      body: {}
    timeoutMs: 1000
    retry:
      maxAttempts: 2
      jitter: true
    continueOnFail: true
  - id: check
    type: CONDITION
    config:
      expression: input.status == 200
edges:
  - source: start
    target: call
  - source: call
    target: check
`;
    expect((await cli(server.url, ["apply", file("rt.yaml", source)])).code).toBe(0);
    const yaml = await cli(server.url, ["export", "round-trip"]);
    expect(yaml).toEqual({ code: 0, stdout: source, stderr: "" });
    const json = await cli(server.url, ["export", "round-trip", "--format", "json"]);
    expect(JSON.parse(json.stdout)).toEqual(parse(source));
  });

  it("lists the pipelines with their counters", async () => {
    const list = await cli(server.url, ["list"]);
    expect(list.code).toBe(0);
    const lines = list.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^NAME +VERSION +VALID +RUNS +COMPLETED +FAILED +ID$/);
    expect(lines.slice(1).map((line) => line.split(/ +/).slice(0, 6))).toEqual([
      ["round-trip", "1", "yes", "0", "0", "0"],
      ["bad", "1", "no", "0", "0", "0"],
      ["greet", "2", "yes", "0", "0", "0"],
    ]);
  });
});

describe("run", () => {
  const greetEvents = [
    "  1 RUN_STARTED 2 nodes",
    "  2 NODE_STARTED start",
    "  3 NODE_COMPLETED start",
    "  4 NODE_STARTED hello",
    "  5 NODE_COMPLETED hello",
    "  6 RUN_COMPLETED",
  ];

  for (const transport of ["ws", "sse"] as const) {
    it(`follows a run to its end over ${transport}, one line per event`, async () => {
      const result = await cli(server.url, [
        "run",
        "greet",
        "--data",
        '{"who": "ops"}',
        "--follow",
        "--transport",
        transport,
      ]);
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      const runId = runIdOf(result.stdout);
      expect(result.stdout.split("\n").slice(1)).toEqual([
        ...greetEvents,
        `run ${runId} COMPLETED`,
        "  start  COMPLETED",
        "  hello  COMPLETED",
        "",
      ]);
      const [run] = await server.app.services.store.getRuns([runId]);
      expect(run?.triggerData).toEqual({ who: "ops" });
    });
  }

  it("without --follow prints the run and exits at once", async () => {
    const result = await cli(server.url, ["run", "greet"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^run \S+ of "greet" (RUNNING|QUEUED)\n$/);
  });

  it("exits with 3 when the run fails, naming the failed node", async () => {
    const failing = file(
      "failing.yaml",
      `name: failing
nodes:
  - { id: start, type: TRIGGER }
  - { id: call, type: ACTION, config: { action: http, url: "${stub.url}/x" } }
edges:
  - { source: start, target: call }
`,
    );
    expect((await cli(server.url, ["apply", failing])).code).toBe(0);
    const result = await cli(server.url, ["run", "failing", "-f"]);
    const runId = runIdOf(result.stdout);
    const host = new URL(stub.url).host;
    const error = `HTTP 400 from ${host}: {"error":"bad request"}`;
    expect(result.stdout.split("\n").slice(1)).toEqual([
      "  1 RUN_STARTED 2 nodes",
      "  2 NODE_STARTED start",
      "  3 NODE_COMPLETED start",
      "  4 NODE_STARTED call",
      `  5 NODE_FAILED call ${error}`,
      `  6 RUN_FAILED call node "call" failed after 1 attempt: ${error}`,
      `run ${runId} FAILED: node "call" failed after 1 attempt: ${error}`,
      "  start  COMPLETED",
      `  call   FAILED: ${error}`,
      "",
    ]);
    expect(result.code).toBe(3);
  });

  it("draws a progress bar on a terminal", async () => {
    // `script` gives the CLI a pseudo-terminal, as a user's shell would.
    const command = [
      process.execPath,
      "--import",
      "tsx",
      "src/cli/index.ts",
      "run",
      "greet",
      "-f",
      "--url",
      server.url,
    ]
      .map((part) => `'${part}'`)
      .join(" ");
    const result = await runToExit("script", ["-qec", command, "/dev/null"], {});
    expect(result.code).toBe(0);
    const text = result.stdout.replace(/\r/g, "");
    expect(text).toContain(" 2/2 nodes");
    expect(text).not.toContain("NODE_STARTED");
    expect(text).toMatch(/\nrun \S+ COMPLETED\n {2}start {2}COMPLETED\n {2}hello {2}COMPLETED\n$/);
  });
});

describe("talking to the server", () => {
  it("sends the key as a bearer token, from --key or PIPELINES_API_KEY", async () => {
    const api = await startStub(() => ({
      status: 200,
      body: {
        data: { pipelines: { pageInfo: { hasNextPage: false, endCursor: null }, edges: [] } },
      },
    }));
    try {
      await cli(`${api.url}/graphql`, ["list", "--key", "from-flag"]);
      await cli(`${api.url}/graphql`, ["list"], { PIPELINES_API_KEY: "from-env" });
      await cli(`${api.url}/graphql`, ["list"]);
      expect(api.requests.map((r) => r.headers.authorization)).toEqual([
        "Bearer from-flag",
        "Bearer from-env",
        undefined,
      ]);
    } finally {
      await api.close();
    }
  });

  it("says when the server cannot be reached", async () => {
    const url = `http://127.0.0.1:${await freePort()}/graphql`;
    expect(await cli(url, ["list"])).toEqual({
      code: 1,
      stdout: "",
      stderr: `cannot reach the server at ${url} (ECONNREFUSED): is it running? (npm start, or --url)\n`,
    });
  });

  it("answers a mistake on the command line with the usage and code 2", async () => {
    const unknown = await cli(server.url, ["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^unknown command "frobnicate"\n\nUsage: pipelines <command>/);
    const missing = await cli(server.url, ["run"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^run needs a pipeline name\n/);
    const notFound = await cli(server.url, ["run", "nothing-of-that-name"]);
    expect(notFound).toEqual({
      code: 1,
      stdout: "",
      stderr: 'no pipeline is named "nothing-of-that-name" (see `list`)\n',
    });
  });
});

// Checked here so that a missing `script` shows as a failure, not as a silent pass.
execFileSync("script", ["--version"], { cwd: repoRoot });
