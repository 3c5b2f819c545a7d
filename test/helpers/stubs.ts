/**
 * Local services for tests: an HTTP service whose every reply is scripted per path and call
 * number (fail N times, 4xx/5xx, hang), and an OpenAI-compatible chat-completions endpoint.
 * Both listen on 127.0.0.1 only and count what they receive.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Reply =
  | {
      readonly status: number;
      readonly body?: unknown;
      readonly headers?: Record<string, string>;
      readonly delayMs?: number;
    }
  | "hang";

export interface RequestInfo {
  readonly path: string;
  readonly method: string;
  readonly call: number;
  readonly body: string;
  readonly headers: IncomingMessage["headers"];
  /** The client's port: which process called can be told from it (see socket-owner.ts). */
  readonly remotePort: number | undefined;
}

export interface Stub {
  readonly url: string;
  /** Calls received per path. */
  readonly calls: Map<string, number>;
  readonly requests: RequestInfo[];
  /** Requests whose client went away before the reply (aborted). */
  readonly aborted: string[];
  /** Most requests under way at once. */
  readonly maxConcurrent: number;
  close(): Promise<void>;
}

export async function startStub(script: (request: RequestInfo) => Reply): Promise<Stub> {
  const calls = new Map<string, number>();
  const requests: RequestInfo[] = [];
  const aborted: string[] = [];
  let current = 0;
  let maxConcurrent = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://stub").pathname;
    const call = (calls.get(path) ?? 0) + 1;
    calls.set(path, call);
    current++;
    maxConcurrent = Math.max(maxConcurrent, current);
    let finished = false;
    const finish = () => {
      if (!finished) {
        finished = true;
        current--;
      }
    };
    res.on("close", () => {
      if (!res.writableFinished) aborted.push(path);
      finish();
    });
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const info = {
        path,
        method: req.method ?? "GET",
        call,
        body: Buffer.concat(chunks).toString("utf8"),
        headers: req.headers,
        remotePort: req.socket.remotePort,
      };
      requests.push(info);
      const reply = script(info);
      if (reply === "hang") return;
      const send = () => {
        if (res.destroyed) return;
        const body =
          typeof reply.body === "string"
            ? reply.body
            : JSON.stringify(reply.body ?? { ok: true, call });
        res.writeHead(reply.status, {
          "content-type": typeof reply.body === "string" ? "text/plain" : "application/json",
          ...reply.headers,
        });
        res.end(body);
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    requests,
    aborted,
    get maxConcurrent() {
      return maxConcurrent;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An OpenAI-compatible endpoint: `/v1/chat/completions` answers with `reply(call)`. */
export function startOpenAiStub(
  reply: (call: number, request: RequestInfo) => Reply | { content: string },
): Promise<Stub> {
  return startStub((request) => {
    if (request.path !== "/v1/chat/completions" || request.method !== "POST")
      return { status: 404 };
    const answer = reply(request.call, request);
    if (answer === "hang" || !("content" in answer)) return answer;
    return {
      status: 200,
      body: {
        id: `chatcmpl-${request.call}`,
        object: "chat.completion",
        model: "stub-model",
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: answer.content },
            finish_reason: "stop",
          },
        ],
        usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
      },
    };
  });
}
