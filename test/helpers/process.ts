/**
 * Server instances as real child processes (`node --import tsx src/index.ts`), for tests of
 * several instances, kill -9 and SIGTERM. Each gets its own port and environment; its JSON
 * logs are kept for diagnostics.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface ServerProcess {
  readonly name: string;
  readonly url: string;
  readonly wsUrl: string;
  readonly child: ChildProcess;
  readonly logs: string[];
  /** Resolves with the exit code (or signal name). */
  readonly exited: Promise<number | string>;
  kill(signal: NodeJS.Signals): void;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startServerProcess(
  name: string,
  env: Record<string, string>,
  // A bound for a stuck start, not a timing: on a loaded machine tsx alone took over 20 s.
  readyTimeoutMs = 60_000,
): Promise<ServerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", "src/index.ts"], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      LOG_LEVEL: "info",
      HTTP_ACTION_ALLOWLIST: "127.0.0.1",
      // The tests reach it on 127.0.0.1; a test may bind it wider (HOST=0.0.0.0).
      HOST: "127.0.0.1",
      ...env,
      PORT: String(port),
      INSTANCE_ID: name,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  child.stdout?.on("data", (chunk: Buffer) =>
    logs.push(...chunk.toString("utf8").split("\n").filter(Boolean)),
  );
  child.stderr?.on("data", (chunk: Buffer) =>
    logs.push(...chunk.toString("utf8").split("\n").filter(Boolean)),
  );
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  const url = `http://127.0.0.1:${port}/graphql`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`${name} exited during start:\n${logs.join("\n")}`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/ready`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${name} not ready after ${readyTimeoutMs} ms:\n${logs.join("\n")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    name,
    url,
    wsUrl: url.replace(/^http/, "ws"),
    child,
    logs,
    exited,
    kill: (signal) => child.kill(signal),
  };
}

/** A GraphQL request to a process over HTTP. */
export async function request<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<T> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: { message: string }[] };
  if (body.errors?.length) throw new Error(body.errors.map((e) => e.message).join("; "));
  return body.data as T;
}

export interface Finished {
  readonly code: number | string;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a command to its end (killed after `timeoutMs`) with only the given environment plus
 * PATH and HOME, and returns its exit code and output.
 */
export function runToExit(
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  options: { timeoutMs?: number; input?: string } = {},
): Promise<Finished> {
  const child = spawn(command, args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  child.stdin.end(options.input ?? "");
  // A bound for a stuck process: a tsx start alone took over 30 s on a loaded 2-core machine.
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  return new Promise((resolve) =>
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? "unknown", stdout, stderr });
    }),
  );
}

/** The repository's root, where package.json is. */
export const repoRoot = root;
