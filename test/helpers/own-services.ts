/**
 * A PostgreSQL and a Redis of the test's own, on free ports of 127.0.0.1, that it may stop and
 * start again: fault injection without touching the machine's shared services.
 *
 * PostgreSQL: `initdb` into a temporary directory and `postgres` on it, as the `postgres` OS
 * user when the tests run as root (PostgreSQL refuses to run as root). Stopped with SIGINT
 * (a fast shutdown: sessions are ended, as on a restart or a failover). Redis: `redis-server`
 * without persistence, stopped with SIGTERM.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { freePort } from "./process.ts";
import { waitFor } from "./wait.ts";

/** The newest installed initdb, or null. */
export function findInitdb(): string | null {
  const base = "/usr/lib/postgresql";
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => existsSync(path.join(base, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(base, versions[0], "bin") : null;
}

/** The redis-server on PATH, or null. */
export function findRedisServer(): string | null {
  try {
    return (
      execFileSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).trim() || null
    );
  } catch {
    return null;
  }
}

/** uid and gid to run PostgreSQL as: the `postgres` user's when we are root. */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
  return { uid, gid };
}

export interface OwnService {
  readonly url: string;
  /** Stops the service (its process exits). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data; resolves once it answers. */
  start(): Promise<void>;
  /** Stops it for good and removes its data. */
  destroy(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

export async function startOwnPostgres(bin: string): Promise<OwnService> {
  const user = postgresUser();
  const dir = mkdtempSync(path.join(tmpdir(), "pipelines-pg-"));
  if (user) chownSync(dir, user.uid, user.gid);
  const data = path.join(dir, "data");
  execFileSync(
    path.join(bin, "initdb"),
    ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
    { ...user, stdio: "ignore", cwd: dir },
  );
  const port = await freePort();
  const url = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | undefined;
  const output: string[] = [];
  const start = async () => {
    child = spawn(
      path.join(bin, "postgres"),
      [
        "-D",
        data,
        "-p",
        String(port),
        "-k",
        dir,
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "fsync=off",
        "-c",
        "max_connections=200",
      ],
      { ...user, cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout?.on("data", (c: Buffer) => output.push(c.toString()));
    child.stderr?.on("data", (c: Buffer) => output.push(c.toString()));
    await waitFor(
      `PostgreSQL on port ${port}`,
      async () => {
        if (child?.exitCode !== null) throw new Error(`postgres exited:\n${output.join("")}`);
        const client = new pg.Client({ connectionString: url });
        client.on("error", () => {});
        try {
          await client.connect();
          await client.query("SELECT 1");
          return true;
        } catch {
          return false;
        } finally {
          await client.end().catch(() => {});
        }
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    );
  };
  const stop = async () => {
    if (!child) return;
    const running = child;
    child = undefined;
    running.kill("SIGINT");
    await exited(running);
  };
  await start();
  return {
    url,
    start,
    stop,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startOwnRedis(binary: string): Promise<OwnService> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const start = async () => {
    const output: string[] = [];
    child = spawn(
      binary,
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout?.on("data", (c: Buffer) => output.push(c.toString()));
    await waitFor(
      `Redis on port ${port}`,
      () => {
        if (child?.exitCode !== null) throw new Error(`redis-server exited:\n${output.join("")}`);
        return output.join("").includes("Ready to accept connections");
      },
      { timeoutMs: 15_000, intervalMs: 20 },
    );
  };
  const stop = async () => {
    if (!child) return;
    const running = child;
    child = undefined;
    running.kill("SIGTERM");
    await exited(running);
  };
  await start();
  return { url, start, stop, destroy: stop };
}
