/**
 * Start-up and the keys CLI through real processes: beyond loopback with nothing to
 * authenticate, the server refuses with one line and exit code 1; AUTH=off starts with a
 * warning; `npm run keys -- create --role admin` on a SQLite file prints a key that works
 * against a server on that file, `list` shows it, and once `revoke`d it is refused.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { freePort, runToExit, type ServerProcess, startServerProcess } from "./helpers/process.ts";

// Each test starts processes (a tsx start is a few seconds on a loaded 2-core machine).
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

let dir: string;
let databaseUrl: string;
let running: ServerProcess | undefined;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "pipelines-sec-startup-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  if (running && running.child.exitCode === null) {
    running.kill("SIGTERM");
    await running.exited;
  }
  running = undefined;
});
let databases = 0;
const freshDatabase = () => {
  databaseUrl = `file:${path.join(dir, `db-${++databases}.db`)}`;
  return databaseUrl;
};

const REFUSAL =
  "refusing to listen on 0.0.0.0 without authentication: create an admin key (npm run keys -- create --role admin), set JWT_SECRET or JWT_JWKS_URL, or set AUTH=off (unsafe: anyone who reaches the port may do everything)";

async function ask(server: ServerProcess, query: string, key?: string) {
  const response = await fetch(server.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(key ? { authorization: `Bearer ${key}` } : {}),
    },
    body: JSON.stringify({ query }),
  });
  const body = (await response.json()) as {
    data?: unknown;
    errors?: { message: string; extensions?: { code?: string } }[];
  };
  return { status: response.status, data: body.data, code: body.errors?.[0]?.extensions?.code };
}

const logLines = (server: ServerProcess) =>
  server.logs.flatMap((line) => {
    try {
      return [JSON.parse(line) as { level: number; msg: string }];
    } catch {
      return [];
    }
  });

describe("binding beyond loopback", () => {
  it("refuses HOST=0.0.0.0 with no key or JWT, with one line and exit code 1", async () => {
    const result = await runToExit(process.execPath, ["--import", "tsx", "src/index.ts"], {
      LOG_LEVEL: "info",
      HOST: "0.0.0.0",
      PORT: String(await freePort()),
      DATABASE_URL: freshDatabase(),
    });
    expect([result.code, result.stderr]).toEqual([1, `${REFUSAL}\n`]);
    // It never listened: no start line on stdout.
    expect(result.stdout).not.toMatch(/GraphQL API/);
  });

  it("starts with AUTH=off and says so in a warning line; a request without a key acts as admin", async () => {
    running = await startServerProcess("open", {
      HOST: "0.0.0.0",
      AUTH: "off",
      DATABASE_URL: freshDatabase(),
    });
    const warnings = logLines(running).filter((l) => l.level === 40);
    expect(warnings.map((l) => l.msg)).toContain(
      "auth is off (AUTH=off, unsafe): every client that reaches the port may do everything",
    );
    expect(await ask(running, "{ viewer { kind role } }")).toEqual({
      status: 200,
      data: { viewer: { kind: "local", role: "admin" } },
      code: undefined,
    });
  });

  it("starts with JWT_SECRET set, and refuses a request without credentials", async () => {
    running = await startServerProcess("jwt", {
      HOST: "0.0.0.0",
      JWT_SECRET: "a-shared-secret-of-the-test-0123456789",
      DATABASE_URL: freshDatabase(),
    });
    expect(logLines(running).map((l) => l.msg)).toContain("auth is on: API keys and JWTs");
    expect(await ask(running, "{ viewer { role } }")).toMatchObject({
      status: 401,
      code: "UNAUTHENTICATED",
    });
  });
});

describe("npm run keys on a SQLite file", () => {
  const keys = (args: string[]) =>
    runToExit("npm", ["run", "--silent", "keys", "--", ...args], { DATABASE_URL: databaseUrl });

  it("creates an admin key a server on the same file accepts, lists it, and revokes it", async () => {
    freshDatabase();
    const created = await keys(["create", "--role", "admin", "--label", "ops"]);
    expect(created.code).toBe(0);
    const key = /^(psk_\S+)\n$/.exec(created.stdout)?.[1];
    expect(key).toBeDefined();
    const id = /^created admin key (\S+) \("ops"\): the key above is shown only now\n$/.exec(
      created.stderr,
    )?.[1];
    expect(id).toBeDefined();

    // Beyond loopback: the key is what lets the server start, and auth stays on whatever
    // happens to the key (on loopback, revoking the last key would turn auth off).
    running = await startServerProcess("keyed", { HOST: "0.0.0.0", DATABASE_URL: databaseUrl });
    expect(await ask(running, "{ viewer { kind role label } }", key)).toEqual({
      status: 200,
      data: { viewer: { kind: "key", role: "admin", label: "ops" } },
      code: undefined,
    });
    expect(await ask(running, "{ viewer { role } }")).toMatchObject({
      status: 401,
      code: "UNAUTHENTICATED",
    });
    const created2 = await ask(
      running,
      'mutation { createPipeline(input: { name: "k", nodes: [{ id: "t", type: TRIGGER }], edges: [] }) { name } }',
      key,
    );
    expect(created2).toEqual({
      status: 200,
      data: { createPipeline: { name: "k" } },
      code: undefined,
    });

    const listed = await keys(["list"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout.split("\n").filter(Boolean)).toEqual([
      expect.stringMatching(
        new RegExp(`^${id}\\t${key!.slice(0, 8)}\\S*\\tadmin\\tactive\\t-\\tops$`),
      ),
    ]);

    const revoked = await keys(["revoke", id!]);
    expect([revoked.code, revoked.stdout]).toEqual([0, `revoked ${id} ("ops")\n`]);
    const refused = await ask(running, "{ viewer { role } }", key);
    expect([refused.status, refused.code]).toEqual([401, "UNAUTHENTICATED"]);
    expect((await keys(["list"])).stdout).toMatch(/\tadmin\trevoked\t-\tops\n$/);
    expect(await keys(["revoke", "no-such-id"])).toMatchObject({
      code: 1,
      stderr: 'no API key with id "no-such-id"\n',
    });
  });
});
