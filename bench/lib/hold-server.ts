/**
 * A local HTTP endpoint that holds every request open until told to answer, and records when
 * each request arrived and when its client went away without an answer (aborted). The
 * fan-out figure uses it as a gate; the cancel figure as a hanging dependency.
 */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";

export interface HeldRequest {
  readonly path: string;
  /** performance.now() at arrival. */
  readonly arrivedAt: number;
  /** performance.now() when the client closed the connection unanswered. */
  abortedAt: number | null;
}

export interface HoldServer {
  readonly url: string;
  readonly requests: ReadonlyMap<string, HeldRequest>;
  /** Resolves when a request for `path` has arrived. */
  arrived(path: string): Promise<HeldRequest>;
  /** Resolves when the request for `path` was aborted by its client. */
  aborted(path: string): Promise<HeldRequest>;
  /** Answers every held request (200, `{}`), and every later one at once. */
  releaseAll(): void;
  close(): Promise<void>;
}

export async function startHoldServer(): Promise<HoldServer> {
  const requests = new Map<string, HeldRequest>();
  const held = new Map<string, ServerResponse>();
  const waiters = new Map<string, ((request: HeldRequest) => void)[]>();
  let released = false;
  const notify = (key: string, request: HeldRequest) => {
    for (const resolve of waiters.get(key) ?? []) resolve(request);
    waiters.delete(key);
  };
  const answer = (res: ServerResponse) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end("{}");
  };
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://hold").pathname;
    const request: HeldRequest = { path, arrivedAt: performance.now(), abortedAt: null };
    requests.set(path, request);
    res.on("close", () => {
      held.delete(path);
      if (!res.writableFinished) {
        request.abortedAt = performance.now();
        notify(`aborted ${path}`, request);
      }
    });
    req.resume();
    req.on("end", () => {
      if (released) return answer(res);
      held.set(path, res);
      notify(`arrived ${path}`, request);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const wait = (key: string, ready: (r: HeldRequest) => boolean, path: string) =>
    new Promise<HeldRequest>((resolve) => {
      const request = requests.get(path);
      if (request && ready(request)) return resolve(request);
      const list = waiters.get(key) ?? [];
      list.push(resolve);
      waiters.set(key, list);
    });
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    arrived: (path) =>
      wait(`arrived ${path}`, (r) => held.has(r.path) || r.abortedAt !== null, path),
    aborted: (path) => wait(`aborted ${path}`, (r) => r.abortedAt !== null, path),
    releaseAll() {
      released = true;
      for (const res of held.values()) answer(res);
      held.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
