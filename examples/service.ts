/**
 * A small local service for the README's walk-through and the pipelines in examples/, so that
 * they run without the network: `npm run example:service` (port 4100, or EXAMPLE_SERVICE_PORT).
 *
 * - `GET /items/:id`: an item (`42`, `7`), or 404 for any other id.
 * - `GET /flaky/:key?failures=N`: 503 for the first N calls with that key, then 200. Use the
 *   run id as the key (`/flaky/{{run.id}}`) and every run sees its own failures.
 * - `GET /down`: always 503, to open a breaker.
 * - `POST /v1/chat/completions`: an OpenAI-compatible "model" that answers with a fixed
 *   summary of the task, for AGENT nodes (see examples/agents.json).
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";

const ITEMS: Record<string, { id: number; title: string; priority: string }> = {
  "42": { id: 42, title: "Printer on floor 3 prints only blank pages", priority: "high" },
  "7": { id: 7, title: "Coffee machine descaling reminder", priority: "low" },
};

export interface ExampleService {
  readonly url: string;
  readonly port: number;
  /** Calls received per path, for tests. */
  readonly calls: Map<string, number>;
  close(): Promise<void>;
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** A model's answer: the first line of the task, shortened. */
function completion(request: { model?: string; messages?: { role: string; content: string }[] }) {
  const task = request.messages?.findLast((m) => m.role === "user")?.content ?? "";
  const firstLine = task.split("\n")[0]!.slice(0, 80);
  const content = `Summary: ${firstLine}`;
  return {
    id: "chatcmpl-example",
    object: "chat.completion",
    model: request.model ?? "example-model",
    choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
    usage: {
      prompt_tokens: task.split(/\s+/).length,
      completion_tokens: content.split(/\s+/).length,
      total_tokens: task.split(/\s+/).length + content.split(/\s+/).length,
    },
  };
}

/** Starts the service on 127.0.0.1 (port 0: any free port). */
export async function startExampleService(port = 4100): Promise<ExampleService> {
  const calls = new Map<string, number>();
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const count = (calls.get(url.pathname) ?? 0) + 1;
    calls.set(url.pathname, count);
    const send = (status: number, value: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(value));
    };
    const item = /^\/items\/([^/]+)$/.exec(url.pathname);
    if (req.method === "GET" && item) {
      const found = ITEMS[item[1]!];
      return found ? send(200, found) : send(404, { error: `no item ${item[1]}` });
    }
    if (req.method === "GET" && url.pathname.startsWith("/flaky/")) {
      const failures = Number(url.searchParams.get("failures") ?? 1);
      return count <= failures
        ? send(503, { error: `failing call ${count} of ${failures}` })
        : send(200, { ok: true, calls: count });
    }
    if (req.method === "GET" && url.pathname === "/down") return send(503, { error: "down" });
    if (req.method === "POST" && url.pathname === "/v1/chat/completions") {
      try {
        return send(200, completion(JSON.parse(await body(req))));
      } catch {
        return send(400, { error: "the body is not JSON" });
      }
    }
    send(404, { error: `no route ${req.method} ${url.pathname}` });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const service = await startExampleService(Number(process.env.EXAMPLE_SERVICE_PORT ?? 4100));
  console.log(`example service at ${service.url} (items 42 and 7; /flaky/:key; /down; /v1)`);
}
