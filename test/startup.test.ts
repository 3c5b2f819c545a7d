/**
 * Start-up mistakes, each through the real entry (`node src/index.ts` in a child process): the
 * process exits with code 1 and prints exactly one line on stderr that names the mistake, and
 * nothing on stdout (it opened, migrated and served nothing).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { freePort, repoRoot, runToExit } from "./helpers/process.ts";
import { POSTGRES_URL, serviceAvailable } from "./helpers/services.ts";

// Each test starts processes (a tsx start is a few seconds on a loaded 2-core machine).
vi.setConfig({ testTimeout: 90_000, hookTimeout: 180_000 });

const ENTRY = ["--import", "tsx", "src/index.ts"];

async function start(env: Record<string, string>, preload: string[] = []) {
  const port = String(await freePort());
  return runToExit(process.execPath, [...preload, ...ENTRY], {
    LOG_LEVEL: "info",
    HOST: "127.0.0.1",
    PORT: port,
    ...env,
  });
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "pipelines-startup-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("start-up mistakes", () => {
  it("refuses a PostgreSQL URL without a database name", async () => {
    const url = new URL(POSTGRES_URL);
    const bare = `postgresql://${url.username}@${url.host}`;
    const result = await start({ DATABASE_URL: bare });
    expect(result).toEqual({
      code: 1,
      stdout: "",
      stderr: `failed to start: DATABASE_URL ${bare} names no database: add its name to the URL, e.g. ${bare}/pipelines\n`,
    });
  });

  it("hides the password of a URL it prints", async () => {
    const result = await start({ DATABASE_URL: "postgresql://app:s3cret@127.0.0.1:5432/" });
    expect(result.stderr).toBe(
      "failed to start: DATABASE_URL postgresql://app:***@127.0.0.1:5432 names no database: add its name to the URL, e.g. postgresql://app:***@127.0.0.1:5432/pipelines\n",
    );
    expect(result.code).toBe(1);
  });

  it("refuses a file: path under a regular file", async () => {
    const file = path.join(dir, "not-a-directory");
    writeFileSync(file, "");
    const result = await start({ DATABASE_URL: `file:${file}/pipelines.db` });
    expect(result).toEqual({
      code: 1,
      stdout: "",
      stderr: `failed to start: DATABASE_URL file:${file}/pipelines.db: ${file} is a file, not a directory, so the database cannot be created under it\n`,
    });
  });

  it("refuses a read-only SQLite file, naming it", async () => {
    const roDir = mkdtempSync(path.join(dir, "ro-"));
    const file = path.join(roDir, "pipelines.db");
    writeFileSync(file, "");
    const env = { LOG_LEVEL: "info", HOST: "127.0.0.1", PORT: String(await freePort()) };
    let result: Awaited<ReturnType<typeof runToExit>>;
    let reason: string;
    if (process.getuid?.() === 0) {
      // Root writes through file modes: make the directory a read-only mount instead, as a
      // container's read-only volume would be, in a private mount namespace.
      reason = "read-only file system";
      result = await runToExit(
        "unshare",
        [
          "-r",
          "-m",
          "sh",
          "-c",
          'mount --bind "$RO_DIR" "$RO_DIR" && mount -o remount,bind,ro "$RO_DIR" && exec "$NODE" "$@"',
          "sh",
          ...ENTRY,
        ],
        { ...env, RO_DIR: roDir, NODE: process.execPath, DATABASE_URL: `file:${file}` },
      );
    } else {
      const { chmodSync } = await import("node:fs");
      chmodSync(file, 0o444);
      reason = "permission denied";
      result = await runToExit(process.execPath, ENTRY, { ...env, DATABASE_URL: `file:${file}` });
    }
    expect(result).toEqual({
      code: 1,
      stdout: "",
      stderr: `failed to start: the SQLite database ${file} is read-only (${reason}): the server writes to it; make it writable or set DATABASE_URL to another file\n`,
    });
  });

  describe("a busy port", () => {
    let taken: Server;
    let port: number;
    beforeAll(async () => {
      taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
      port = (taken.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((resolve) => taken.close(() => resolve())));

    it("says which port, in one line", async () => {
      const result = await runToExit(process.execPath, ENTRY, {
        LOG_LEVEL: "info",
        HOST: "127.0.0.1",
        PORT: String(port),
        DATABASE_URL: "file::memory:",
      });
      expect(result).toEqual({
        code: 1,
        stdout: "",
        stderr: `failed to start: port ${port} on 127.0.0.1 is already in use: stop the process listening there or set PORT to a free port\n`,
      });
    });
  });

  it("names PostgreSQL and its address when it does not answer", async () => {
    const port = await freePort();
    const url = `postgresql://postgres@127.0.0.1:${port}/pipelines`;
    const result = await start({ DATABASE_URL: url });
    expect(result).toEqual({
      code: 1,
      stdout: "",
      stderr: `failed to start: PostgreSQL at 127.0.0.1:${port} (DATABASE_URL ${url}) cannot be used: connection refused\n`,
    });
  });

  it("names Redis and its URL when Redis does not answer", async () => {
    const port = await freePort();
    const result = await start({
      DATABASE_URL: "file::memory:",
      REDIS_URL: `redis://127.0.0.1:${port}`,
    });
    expect(result).toEqual({
      code: 1,
      stdout: "",
      stderr: `failed to start: Redis does not answer at redis://127.0.0.1:${port} (REDIS_URL): connection refused; start it, or unset REDIS_URL to run one instance without Redis\n`,
    });
  });

  it("checks the Node.js version before any native addon is loaded", async () => {
    // The preload reports an old version and prints a line for each native addon loaded.
    const preload = ["--import", "./test/fixtures/pretend-node.mjs"];
    const old = await start(
      { DATABASE_URL: "file::memory:", PRETEND_NODE_VERSION: "18.20.4" },
      preload,
    );
    expect(old).toEqual({
      code: 1,
      stdout: "",
      stderr:
        'failed to start: Node.js 18.20.4 is too old: this server needs Node.js >=20.19 (package.json "engines"); install a newer Node.js and start again\n',
    });
    // The same preload with a supported version: the server starts and loads the addon (when it
    // opens the database), so the absence of that line above means something.
    const child = spawn(process.execPath, [...preload, ...ENTRY], {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH ?? "",
        PRETEND_NODE_VERSION: "20.19.0",
        DATABASE_URL: "file::memory:",
        HOST: "127.0.0.1",
        PORT: String(await freePort()),
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    await new Promise<void>((resolve, reject) => {
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString("utf8");
        if (stderr.includes("\n")) resolve();
      });
      child.once("exit", () => reject(new Error(`exited early: ${stderr}`)));
    }).finally(() => child.kill("SIGKILL"));
    expect(stderr).toMatch(/^native addon loaded: .*better_sqlite3\.node\n/);
  });
});

const postgres = await serviceAvailable("postgres");

describe.skipIf(!postgres)("start-up mistakes on PostgreSQL", () => {
  it("says how to create a database that does not exist, and creates nothing", async () => {
    const name = `missing_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    const url = new URL(POSTGRES_URL);
    url.pathname = `/${name}`;
    const result = await start({ DATABASE_URL: url.toString() });
    expect(result).toEqual({
      code: 1,
      stdout: "",
      stderr: `failed to start: database "${name}" does not exist on ${url.hostname}:${url.port || 5432}: create it with \`createdb -h ${url.hostname} -p ${url.port || 5432} -U ${url.username || "postgres"} ${name}\` (or CREATE DATABASE "${name}"), then start again\n`,
    });
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    const { rows } = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    await admin.end();
    expect(rows).toEqual([]);
  });
});
