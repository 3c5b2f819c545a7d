/**
 * Start-up checks, made before anything is opened or written: a mistake in the port, the
 * database or Redis stops the process with one line that names it, instead of a stack trace, a
 * server that answers but cannot work, or a schema migrated into the wrong database.
 *
 * A PostgreSQL database that does not exist is reported with the command that creates it, not
 * created: a typo in the URL would otherwise start the server on a new, empty database.
 */
import { accessSync, closeSync, constants, openSync, statSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import type { Config } from "./config.ts";

/** Stable codes of the start-up mistakes. */
export const PREFLIGHT_CODES = [
  "PORT_IN_USE",
  "PORT_NOT_PERMITTED",
  "HOST_NOT_AVAILABLE",
  "DATABASE_NOT_NAMED",
  "DATABASE_NOT_FOUND",
  "DATABASE_UNREACHABLE",
  "SQLITE_READ_ONLY",
  "SQLITE_BAD_PATH",
  "REDIS_UNREACHABLE",
] as const;
export type PreflightCode = (typeof PREFLIGHT_CODES)[number];

/** A start-up mistake; the message is one line saying what is wrong and what to do. */
export class PreflightError extends Error {
  override readonly name = "PreflightError";
  constructor(
    readonly code: PreflightCode,
    message: string,
  ) {
    super(message);
  }
}

export interface PreflightOptions {
  /** Longest wait for PostgreSQL or Redis to answer. @default 5000 */
  readonly timeoutMs?: number;
}

/** Runs every check that applies to the configuration; throws the first mistake found. */
export async function preflight(config: Config, options: PreflightOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 5000;
  await checkPort(config.host, config.port);
  if (config.databaseProvider === "sqlite") checkSqliteFile(config.databaseUrl);
  else await checkPostgres(config.databaseUrl, timeoutMs);
  if (config.redisUrl) await checkRedis(config.redisUrl, timeoutMs);
}

/** The URL with its password hidden, for messages. */
export function redactUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = "***";
    return url.toString().replace(/\/$/, "");
  } catch {
    return raw;
  }
}

const REASONS: Record<string, string> = {
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOTDIR: "a part of the path is not a directory",
  ECONNREFUSED: "connection refused",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  ETIMEDOUT: "timed out",
  EHOSTUNREACH: "host unreachable",
};

function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code && REASONS[code]) return REASONS[code]!;
  return error instanceof Error ? error.message : String(error);
}

/**
 * The one line for an error of `listen()`, or undefined for an error it does not know.
 * Used by the port check and by the entry when listening fails after it (a port taken between).
 */
export function explainListenError(
  error: unknown,
  host: string,
  port: number,
): PreflightError | undefined {
  switch ((error as NodeJS.ErrnoException)?.code) {
    case "EADDRINUSE":
      return new PreflightError(
        "PORT_IN_USE",
        `port ${port} on ${host} is already in use: stop the process listening there or set PORT to a free port`,
      );
    case "EACCES":
      return new PreflightError(
        "PORT_NOT_PERMITTED",
        `port ${port} on ${host} needs privileges this process does not have: set PORT to 1024 or above`,
      );
    case "EADDRNOTAVAIL":
      return new PreflightError(
        "HOST_NOT_AVAILABLE",
        `HOST ${host} is not an address of this machine: set HOST to one of its addresses or 0.0.0.0`,
      );
    default:
      return undefined;
  }
}

/** Binds the port once and lets it go, so that a taken port is found before the database. */
export async function checkPort(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (error) => reject(explainListenError(error, host, port) ?? error));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

function statOrUndefined(file: string) {
  try {
    return statSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * The SQLite file can be opened for writing, or created: its path leads through directories,
 * and the file and its directory (where SQLite keeps the write-ahead log) are writable.
 * The check opens the file rather than reading its mode bits, so it answers for this process
 * (root included) and for read-only mounts.
 */
export function checkSqliteFile(databaseUrl: string): void {
  const file = databaseUrl.replace(/^file:/, "");
  if (file === "" || file.startsWith(":memory:")) return;
  const shown = `DATABASE_URL file:${file}`;
  const badPath = (what: string) => new PreflightError("SQLITE_BAD_PATH", `${shown}: ${what}`);
  let ancestor = path.dirname(file);
  let stats = statOrUndefined(ancestor);
  while (!stats && path.dirname(ancestor) !== ancestor) {
    ancestor = path.dirname(ancestor);
    stats = statOrUndefined(ancestor);
  }
  if (stats && !stats.isDirectory()) {
    throw badPath(
      `${ancestor} is a file, not a directory, so the database cannot be created under it`,
    );
  }
  const existing = statOrUndefined(file);
  if (existing?.isDirectory()) throw badPath(`${file} is a directory, not a database file`);
  if (existing) {
    try {
      closeSync(openSync(file, "r+"));
    } catch (error) {
      throw new PreflightError(
        "SQLITE_READ_ONLY",
        `the SQLite database ${file} is read-only (${reason(error)}): the server writes to it; make it writable or set DATABASE_URL to another file`,
      );
    }
  }
  try {
    accessSync(ancestor, constants.W_OK);
  } catch (error) {
    throw new PreflightError(
      "SQLITE_READ_ONLY",
      existing
        ? `the directory ${ancestor} of the SQLite database is read-only (${reason(error)}): SQLite writes its journal beside the file; make the directory writable`
        : `${shown} cannot be created: the directory ${ancestor} is read-only (${reason(error)})`,
    );
  }
}

/** The URL names a database, and PostgreSQL answers and has it. */
export async function checkPostgres(databaseUrl: string, timeoutMs = 5000): Promise<void> {
  const url = new URL(databaseUrl);
  const shown = redactUrl(databaseUrl);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  const where = `${url.hostname || "localhost"}:${url.port || 5432}`;
  if (database === "") {
    throw new PreflightError(
      "DATABASE_NOT_NAMED",
      `DATABASE_URL ${shown} names no database: add its name to the URL, e.g. ${shown}/pipelines`,
    );
  }
  const client = new pg.Client({
    connectionString: databaseUrl,
    connectionTimeoutMillis: timeoutMs,
  });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "3D000") {
      const user = decodeURIComponent(url.username) || "postgres";
      throw new PreflightError(
        "DATABASE_NOT_FOUND",
        `database "${database}" does not exist on ${where}: create it with \`createdb -h ${url.hostname || "localhost"} -p ${url.port || 5432} -U ${user} ${database}\` (or CREATE DATABASE "${database}"), then start again`,
      );
    }
    const timedOut = /timeout/i.test((error as Error).message ?? "");
    throw new PreflightError(
      "DATABASE_UNREACHABLE",
      `PostgreSQL at ${where} (DATABASE_URL ${shown}) cannot be used: ${timedOut ? `no answer within ${timeoutMs} ms` : reason(error)}`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/** Redis answers a PING. */
export async function checkRedis(redisUrl: string, timeoutMs = 5000): Promise<void> {
  const client = new Redis(redisUrl, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  let lastError: unknown;
  client.on("error", (error) => {
    lastError = error;
  });
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new PreflightError(
      "REDIS_UNREACHABLE",
      `Redis does not answer at ${redactUrl(redisUrl)} (REDIS_URL): ${reason(lastError ?? error)}; start it, or unset REDIS_URL to run one instance without Redis`,
    );
  } finally {
    client.disconnect();
  }
}
