/** The machine a run was measured on, for BENCHMARKS.md and latest.json. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { Redis } from "ioredis";
import pg from "pg";
import { POSTGRES_URL, REDIS_URL } from "../../test/helpers/services.ts";

export interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
  readonly postgres: string;
  readonly redis: string;
  /** 1-minute load average when the run started: other work on the machine skews figures. */
  readonly loadAverage: number;
  /** The commit measured, `+changes` when src/ differs from it. */
  readonly commit: string;
}

function commit(): string {
  try {
    const git = (...args: string[]) => execFileSync("git", args, { encoding: "utf8" }).trim();
    const head = git("rev-parse", "--short", "HEAD");
    return git("status", "--porcelain", "--", "src", "prisma").length > 0
      ? `${head}+changes`
      : head;
  } catch {
    return "unknown";
  }
}

function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (match) return match[1]!.trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? "unknown";
}

async function postgresVersion(): Promise<string> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  try {
    await client.connect();
    const { rows } = await client.query<{ server_version: string }>("SHOW server_version");
    return rows[0]!.server_version;
  } catch (error) {
    return `unavailable (${(error as Error).message})`;
  } finally {
    await client.end().catch(() => {});
  }
}

async function redisVersion(): Promise<string> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on("error", () => {});
  try {
    await client.connect();
    const info = await client.info("server");
    return /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
  } catch (error) {
    return `unavailable (${(error as Error).message})`;
  } finally {
    client.disconnect();
  }
}

export async function machine(): Promise<Machine> {
  return {
    cpus: os.availableParallelism(),
    cpuModel: cpuModel(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    postgres: await postgresVersion(),
    redis: await redisVersion(),
    loadAverage: Math.round(os.loadavg()[0]! * 100) / 100,
    commit: commit(),
  };
}
