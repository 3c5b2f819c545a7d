/**
 * An HTTP service on 127.0.0.1 that holds every request on `/held` (after answering the first
 * `failFirst` of them 503) until the test releases it, answers `/fail` with 503 and anything
 * else with 200; it records the headers of each request. For tests that look at the server
 * while a node is under way.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Gate {
  readonly url: string;
  /** Each request as received: its path and headers. */
  readonly requests: { readonly path: string; readonly headers: IncomingMessage["headers"] }[];
  /** Requests on `/held` not answered yet. */
  readonly held: number;
  /** Answers the held requests with 200 `{"ok": true}`. */
  release(): void;
  close(): Promise<void>;
}

export async function startGate({ failFirst = 0 } = {}): Promise<Gate> {
  const requests: Gate["requests"] = [];
  let held: ServerResponse[] = [];
  let heldCalls = 0;
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://gate").pathname;
    requests.push({ path, headers: req.headers });
    req.resume();
    req.on("end", () => {
      if (path === "/held" && ++heldCalls > failFirst) held.push(res);
      else if (path === "/held") res.writeHead(503).end();
      else if (path === "/fail") res.writeHead(503).end();
      else res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const release = () => {
    for (const res of held.splice(0))
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
  };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get held() {
      held = held.filter((res) => !res.destroyed);
      return held.length;
    },
    release,
    close: () =>
      new Promise<void>((resolve) => {
        release();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
