/**
 * An agent of AGENTS_FILE whose key is `{{secrets.NAME}}`: the key is sent to the provider,
 * and its value is found nowhere else — not in outputs (an agent echoing it back), errors
 * (an agent refusing with it in the body), retry events (a 503 echoing it), what a later node
 * renders from those outputs, the stored rows, the live stream, the API's answers or the logs.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryStore } from "../src/store/memory.ts";
import { RunEventsDocument } from "./generated/graphql.ts";
import { startTestServer, subscribeAll } from "./helpers/server.ts";
import { type Stub, startOpenAiStub } from "./helpers/stubs.ts";
import { waitFor } from "./helpers/wait.ts";

const VALUE = "sk-agent-SECRET-value-9f8e7d6c5b4a";

let stub: Stub;
let dir: string;
beforeAll(async () => {
  stub = await startOpenAiStub((_call, request) => {
    const sent = String(request.headers.authorization);
    const model = (JSON.parse(request.body) as { model: string }).model;
    if (model === "echo") return { content: `you sent "${sent}"` };
    if (model === "refuse") return { status: 401, body: { error: `bad key ${sent}` } };
    return { status: 503, body: { error: `overloaded for ${sent}` } };
  });
  dir = mkdtempSync(path.join(tmpdir(), "agent-secrets-"));
});
afterAll(async () => {
  await stub.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("an agent key held as a secret", () => {
  it("reaches the provider and never shows its value anywhere else", async () => {
    const agent = (id: string) => ({
      id,
      provider: "openai",
      baseUrl: `${stub.url}/v1`,
      model: id,
      apiKey: "{{secrets.LLM_KEY}}",
    });
    const agentsFile = path.join(dir, "agents.json");
    writeFileSync(agentsFile, JSON.stringify({ agents: ["echo", "refuse", "busy"].map(agent) }));
    const logs: string[] = [];
    const logger = pino({ level: "trace" }, { write: (line: string) => void logs.push(line) });
    const server = await startTestServer(
      new MemoryStore(),
      { SECRETS_KEY: "cd".repeat(32), AGENTS_FILE: agentsFile },
      { logger },
    );
    try {
      const post = async (query: string, variables?: unknown) => {
        const response = await server.app.yoga.fetch("http://localhost/graphql", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ query, variables }),
        });
        return { status: response.status, text: await response.text() };
      };
      const set = await post(
        'mutation($v: String!) { setSecret(name: "LLM_KEY", value: $v) { name } }',
        { v: VALUE },
      );
      expect(set.text).toBe('{"data":{"setSecret":{"name":"LLM_KEY"}}}');
      const node = (id: string, extra: Record<string, unknown> = {}) => ({
        id,
        type: "AGENT",
        continueOnFail: true,
        retry: { maxAttempts: id === "busy" ? 2 : 1, initialDelayMs: 1, maxDelayMs: 1 },
        config: { agentId: id, task: `task of ${id}` },
        ...extra,
      });
      const created = JSON.parse(
        (
          await post("mutation($i: PipelineInput!) { createPipeline(input: $i) { id } }", {
            i: {
              name: "agents",
              nodes: [
                { id: "t", type: "TRIGGER" },
                node("echo"),
                node("refuse"),
                node("busy"),
                // Renders what the others returned: the redaction must already be in it.
                {
                  id: "say",
                  type: "ACTION",
                  config: {
                    action: "log",
                    message:
                      "{{inputs.echo.result}} / {{inputs.refuse.error}} / {{inputs.busy.error}}",
                  },
                },
              ],
              edges: [
                { source: "t", target: "echo" },
                { source: "t", target: "refuse" },
                { source: "t", target: "busy" },
                { source: "echo", target: "say" },
                { source: "refuse", target: "say" },
                { source: "busy", target: "say" },
              ],
            },
          })
        ).text,
      ).data.createPipeline.id as string;
      const runId = JSON.parse(
        (await post(`mutation { runPipeline(id: "${created}") { id } }`)).text,
      ).data.runPipeline.id as string;
      const live = subscribeAll(server.wsUrl, RunEventsDocument, { runId });
      const q = `{ run(id: "${runId}") { status error nodeRuns { nodeId status output error } events { type nodeId attempt data } }
        pipeline(id: "${created}") { nodes { config } } secrets { name } }`;
      await waitFor("the run to end", async () =>
        /"status":"(COMPLETED|FAILED)"/.test((await post(q)).text),
      );
      const streamed = JSON.stringify(await live.done);
      const answer = (await post(q)).text;
      const run = JSON.parse(answer).data.run as {
        status: string;
        nodeRuns: { nodeId: string; status: string; output: unknown; error: string | null }[];
        events: { type: string; nodeId: string | null }[];
      };

      // The key was used: every call carried it.
      expect(new Set(stub.requests.map((r) => r.headers.authorization))).toEqual(
        new Set([`Bearer ${VALUE}`]),
      );
      expect(stub.requests).toHaveLength(4); // echo, refuse, busy twice
      // The calls happened and their results are there, with the value cut out.
      expect(run.status).toBe("COMPLETED");
      const byNode = Object.fromEntries(run.nodeRuns.map((n) => [n.nodeId, n]));
      expect((byNode.echo!.output as { result: string }).result).toBe('you sent "Bearer [secret]"');
      expect(byNode.refuse!.output).toEqual({
        error: expect.stringContaining("bad key Bearer [secret]"),
      });
      expect(run.events.filter((e) => e.type === "NODE_RETRYING").map((e) => e.nodeId)).toEqual([
        "busy",
      ]);
      expect(answer).toContain("[secret]");

      const everything = {
        answer,
        streamed,
        logs: logs.join("\n"),
        pipeline: (await post(`{ pipeline(id: "${created}") { nodes { config } } }`)).text,
        stored: JSON.stringify([
          await server.app.services.store.getEvents(runId, 0),
          await server.app.services.store.getNodeRuns([runId]),
          await server.app.services.store.admin.listSecrets(),
          await server.app.services.store.admin.getSecrets(["LLM_KEY"]),
        ]),
      };
      const leaks = Object.entries(everything)
        .filter(([, text]) => text.includes(VALUE) || text.includes(VALUE.slice(3, 20)))
        .map(([where]) => where);
      expect(leaks).toEqual([]);
      // The log node's message (what a later node rendered) is in the logs, redacted.
      expect(everything.logs).toContain('you sent \\"Bearer [secret]\\"');
    } finally {
      await server.close();
    }
  });
});
