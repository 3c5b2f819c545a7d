/**
 * The container image without Docker: the Dockerfile's runtime stage is assembled in a temp
 * directory from its own COPY lines (dist/ compiled with the build stage's `npm run build`
 * configuration), started with its CMD and ENV under plain node (no tsx), and must migrate a
 * fresh database, serve GraphQL, run a pipeline through the compiled CLI, and stop on SIGTERM.
 */
import { execFileSync, spawn } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createTestDatabase } from "./helpers/databases.ts";
import { freePort, repoRoot, request, runToExit } from "./helpers/process.ts";
import { serviceAvailable } from "./helpers/services.ts";

// Each test starts processes (a tsx start is a few seconds on a loaded 2-core machine).
vi.setConfig({ testTimeout: 90_000, hookTimeout: 180_000 });

interface Stage {
  readonly from: string;
  readonly lines: string[];
}

/** The Dockerfile's stages, with continuation lines joined and comments left out. */
function stages(dockerfile: string): Stage[] {
  const lines = dockerfile
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#"));
  const result: Stage[] = [];
  for (const line of lines) {
    if (/^FROM /i.test(line)) result.push({ from: line, lines: [] });
    else result.at(-1)?.lines.push(line);
  }
  return result;
}

const postgres = await serviceAvailable("postgres");
const dockerfile = readFileSync(path.join(repoRoot, "Dockerfile"), "utf8");
const [build, runtime] = stages(dockerfile) as [Stage, Stage];
let root: string;
let app: string;

function runtimeEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of runtime.lines.filter((l) => l.startsWith("ENV "))) {
    for (const [, key, value] of line.slice(4).matchAll(/(\w+)=(\S+)/g)) env[key!] = value!;
  }
  return env;
}

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), "pipelines-image-"));
  // The build stage's `npm run build`, with dist/ written outside the work tree.
  expect(build.lines).toContain("RUN npm run build && npm prune --omit=dev --no-audit --no-fund");
  const built = path.join(root, "build");
  execFileSync(
    process.execPath,
    [
      path.join(repoRoot, "node_modules/typescript/bin/tsc"),
      "-p",
      "tsconfig.build.json",
      "--outDir",
      path.join(built, "dist"),
    ],
    { cwd: repoRoot, stdio: "pipe" },
  );
  // The runtime stage: every `COPY --from=build /app/<from> ./<to>` into the image's /app.
  app = path.join(root, "app");
  mkdirSync(app);
  for (const line of runtime.lines.filter((l) => l.startsWith("COPY "))) {
    const [, from, to] = /^COPY --from=build \/app\/(\S+) \.\/(\S+)$/.exec(line) ?? [];
    if (!from || !to) throw new Error(`unexpected COPY in the runtime stage: ${line}`);
    const target = path.join(app, to);
    mkdirSync(path.dirname(target), { recursive: true });
    if (from === "dist") cpSync(path.join(built, "dist"), target, { recursive: true });
    // The work tree's node_modules has the development dependencies too; the imports of
    // dist/ are checked against "dependencies" below.
    else if (from === "node_modules") symlinkSync(path.join(repoRoot, "node_modules"), target);
    else cpSync(path.join(repoRoot, from), target, { recursive: true });
  }
}, 180_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("the container image", () => {
  it("runs as an unprivileged user and starts with plain node", () => {
    expect(runtime.lines).toContain("USER node");
    expect(runtime.lines.at(-1)).toBe('CMD ["node", "dist/index.js"]');
    expect(runtimeEnv()).toEqual({
      NODE_ENV: "production",
      HOST: "0.0.0.0",
      PORT: "4000",
      DATABASE_URL: "file:/data/pipelines.db",
    });
  });

  it("imports only production dependencies from dist/", () => {
    const manifest = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8"));
    const allowed = new Set(Object.keys(manifest.dependencies));
    const builtins = new Set(builtinModules);
    const imported = new Set<string>();
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file);
        else if (file.endsWith(".js")) {
          const text = readFileSync(file, "utf8");
          for (const [, spec] of text.matchAll(/(?:from|import)\s*\(?\s*"([^".][^"]*)"/g)) {
            const name = spec!.startsWith("@")
              ? spec!.split("/").slice(0, 2).join("/")
              : spec!.split("/")[0]!;
            if (!spec!.startsWith("node:") && !builtins.has(name)) imported.add(name);
          }
        }
      }
    };
    walk(path.join(app, "dist"));
    expect([...imported].filter((name) => !allowed.has(name))).toEqual([]);
    expect(imported.has("tsx")).toBe(false);
  });

  async function startImage(env: Record<string, string>) {
    const port = await freePort();
    const child = spawn(process.execPath, ["dist/index.js"], {
      cwd: app,
      env: {
        PATH: process.env.PATH ?? "",
        ...runtimeEnv(),
        // The image listens on 0.0.0.0:4000; here only on loopback, on a free port.
        HOST: "127.0.0.1",
        PORT: String(port),
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const logs: string[] = [];
    child.stdout.on("data", (chunk: Buffer) => logs.push(chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => logs.push(chunk.toString("utf8")));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    const url = `http://127.0.0.1:${port}/graphql`;
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`exited: ${logs.join("")}`);
      const ready = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined);
      if (ready?.ok) break;
      if (i > 300) throw new Error(`not ready: ${logs.join("")}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { url, logs, exited, stop: () => child.kill("SIGTERM") };
  }

  it("migrates a fresh SQLite database, serves, runs a pipeline with the compiled CLI", async () => {
    const data = path.join(root, "data");
    const image = await startImage({ DATABASE_URL: `file:${data}/pipelines.db` });
    try {
      const migrated = image.logs
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { msg: string; applied?: string[] })
        .find((entry) => entry.msg === "database migrated");
      expect(migrated?.applied).toEqual(
        readdirSync(path.join(repoRoot, "prisma/migrations/sqlite")).filter((name) =>
          existsSync(path.join(repoRoot, "prisma/migrations/sqlite", name, "migration.sql")),
        ),
      );
      const file = path.join(root, "hello.yaml");
      writeFileSync(
        file,
        "name: hello\nnodes:\n  - { id: start, type: TRIGGER }\n  - { id: say, type: ACTION, config: { action: log, message: hi } }\nedges:\n  - { source: start, target: say }\n",
      );
      const bin = path.join(app, "dist/cli/index.js");
      const applied = await runToExit(
        process.execPath,
        [bin, "apply", file, "--url", image.url],
        {},
      );
      expect(applied.stdout).toMatch(/^created pipeline "hello" \(id \S+, version 1\)\n$/);
      const ran = await runToExit(
        process.execPath,
        [bin, "run", "hello", "-f", "--url", image.url],
        {},
      );
      expect(ran.stderr).toBe("");
      expect(ran.code).toBe(0);
      expect(ran.stdout).toMatch(
        /\nrun \S+ COMPLETED\n {2}start {2}COMPLETED\n {2}say {4}COMPLETED\n$/,
      );
      const { pipelines } = await request<{
        pipelines: { edges: { node: { successCount: number } }[] };
      }>(image.url, "{ pipelines { edges { node { successCount } } } }");
      expect(pipelines.edges.map((e) => e.node.successCount)).toEqual([1]);
    } finally {
      image.stop();
    }
    expect(await image.exited).toBe(0);
  });

  it.skipIf(!postgres)("migrates and serves on PostgreSQL", async () => {
    const db = await createTestDatabase("postgresql");
    try {
      const image = await startImage({ DATABASE_URL: db.url });
      image.stop();
      expect(await image.exited).toBe(0);
      expect(image.logs.join("")).toContain('"msg":"database migrated"');
    } finally {
      await db.drop();
    }
  });
});
