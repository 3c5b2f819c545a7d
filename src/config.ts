/**
 * Configuration, read once from the environment and validated. Nothing else in the code reads
 * `process.env`: every module receives the part of {@link Config} it needs.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** Log levels understood by the structured logger. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  /** HTTP, WebSocket and SSE port. @default 4000 */
  readonly port: number;
  /** Interface to listen on. @default "127.0.0.1" */
  readonly host: string;
  /** `file:` URL of a SQLite database, or a `postgres://` / `postgresql://` URL. */
  readonly databaseUrl: string;
  /** Which database `databaseUrl` selects. */
  readonly databaseProvider: "sqlite" | "postgresql";
  /** PostgreSQL: statements prepared per connection (off behind a pooler that cannot keep them). */
  readonly databasePreparedStatements: boolean;
  /** Set: live events and cancel signals go through Redis, so several instances can serve. */
  readonly redisUrl: string | undefined;
  /** @default "info" */
  readonly logLevel: LogLevel;
  /** Node executions at once in this process. @default 64 */
  readonly maxConcurrentNodes: number;
  /** JSON file declaring the agents AGENT nodes can call. */
  readonly agentsFile: string | undefined;
  /** The agents of `agentsFile`, with their API keys read from the environment. */
  readonly agents: readonly AgentConfig[];
  /** Hosts the `http` action may reach besides public addresses. */
  readonly httpActionAllowlist: readonly string[];
  /** Size limits for pipeline definitions. */
  readonly limits: DefinitionLimits;
  /** Runs executed at once by this instance; more wait QUEUED for any instance. @default 256 */
  readonly maxActiveRuns: number;
  /** How long a run's lease lasts without a heartbeat before another instance may take it. */
  readonly leaseMs: number;
  /** On SIGTERM, how long running nodes may take to finish before their runs are handed over. */
  readonly shutdownGraceMs: number;
  /** This process's identity in run leases. */
  readonly instanceId: string;
  /** OpenTelemetry tracing; undefined (the default) leaves it off. */
  readonly tracing: TracingConfig | undefined;
  /** Authentication, document and rate limits, secrets, retention. */
  readonly security: SecurityConfig;
}

/** See the README's "Security" section. */
export interface SecurityConfig {
  /** `auto`: on when a key exists, JWT is set or the bind is not loopback. @default "auto" */
  readonly auth: "auto" | "on" | "off";
  /** JWT verification (Authorization: Bearer <token>); undefined: off. */
  readonly jwt: JwtConfig | undefined;
  /** AES-256-GCM key of stored secrets (SECRETS_KEY: 32 bytes, hex or base64). */
  readonly secretsKey: Buffer | undefined;
  readonly graphiql: boolean;
  readonly introspection: boolean;
  /** Limits on GraphQL documents (graphql-armor's; see server/limits.ts). */
  readonly document: Readonly<
    Record<"maxDepth" | "maxAliases" | "maxDirectives" | "maxTokens" | "maxCost", number>
  >;
  /** runPipeline/rerunRun per key (or address) and minute; 0: none. @default 600 */
  readonly runsPerMinute: number;
  /** Other mutations per key (or address) and minute; 0: none. @default 600 */
  readonly writesPerMinute: number;
  readonly maxSubscriptionsPerKey: number;
  readonly maxPipelines: number;
  /** Finished runs older than this are deleted in the background; undefined: kept. */
  readonly runRetentionMs: number | undefined;
  /** Finished runs kept at most (the newest); undefined: no cap. */
  readonly maxRetainedRuns: number | undefined;
  readonly retentionIntervalMs: number;
}

export interface JwtConfig {
  /** HS256 shared secret (JWT_SECRET), or a JWKS URL of RS256 keys (JWT_JWKS_URL). */
  readonly secret: string | undefined;
  readonly jwksUrl: string | undefined;
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
  /** The claim holding viewer, operator or admin. @default "role" */
  readonly roleClaim: string;
}

/** Where spans go, from the standard OTEL_* variables. */
export interface TracingConfig {
  /** `otlp`: OTLP over HTTP (JSON) to `endpoint`; `console`: one block per span on stdout. */
  readonly exporter: "otlp" | "console";
  /** The OTLP traces URL, e.g. `http://127.0.0.1:4318/v1/traces`. */
  readonly endpoint: string;
  /** @default "pipeline-server" */
  readonly serviceName: string;
}

/** An agent reachable over an OpenAI-compatible chat-completions endpoint. */
export interface AgentConfig {
  readonly id: string;
  readonly provider: "openai";
  /** e.g. `https://api.openai.com/v1`; `/chat/completions` is appended. */
  readonly baseUrl: string;
  readonly model: string;
  /** Read from the environment variable the file names in `apiKeyEnv`. */
  readonly apiKey: string | undefined;
  /** The secret holding the key (`"apiKey": "{{secrets.NAME}}"` in the file). */
  readonly apiKeySecret?: string;
  readonly systemPrompt: string | undefined;
  readonly temperature: number | undefined;
  readonly maxTokens: number | undefined;
  /** Limit of one call. @default 60000 */
  readonly timeoutMs: number;
}

export interface DefinitionLimits {
  /** @default 10000 */
  readonly maxNodes: number;
  /** @default 50000 */
  readonly maxEdges: number;
  /** Largest JSON document accepted as a node's `config` or a run's `triggerData`, in bytes. @default 65536 */
  readonly maxConfigBytes: number;
  /** Deepest nesting of a JSON value. @default 32 */
  readonly maxJsonDepth: number;
  /** Largest HTTP request body, in bytes. @default 16 MiB */
  readonly maxRequestBytes: number;
  /** Largest stored output of one node (its own data; outputs it passes on are references). @default 10 MiB */
  readonly maxOutputBytes: number;
  /** Output bytes one run may store in all, node runs and events. @default 64 MiB */
  readonly maxRunOutputBytes: number;
}

/** A configuration value that cannot be used; the message is one readable line. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly code = "INVALID_CONFIG";
}

type Env = Readonly<Record<string, string | undefined>>;
const MiB = 1024 * 1024;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  if (!/^\d+$/.test(raw.trim())) {
    throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  }
  const value = Number(raw.trim());
  if (value < min || value > max) {
    throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

function databaseFrom(env: Env, cwd: string): Pick<Config, "databaseUrl" | "databaseProvider"> {
  const raw = env.DATABASE_URL?.trim();
  if (!raw) {
    return {
      databaseUrl: `file:${path.join(cwd, "data", "pipelines.db")}`,
      databaseProvider: "sqlite",
    };
  }
  if (/^postgres(ql)?:\/\//.test(raw)) {
    try {
      new URL(raw);
    } catch {
      throw new ConfigError(`DATABASE_URL is not a valid URL: "${raw}"`);
    }
    return { databaseUrl: raw, databaseProvider: "postgresql" };
  }
  if (raw.startsWith("file:")) {
    const file = raw.slice("file:".length);
    if (file === "") throw new ConfigError(`DATABASE_URL "file:" names no file`);
    const absolute = file === ":memory:" ? file : path.resolve(cwd, file);
    return { databaseUrl: `file:${absolute}`, databaseProvider: "sqlite" };
  }
  throw new ConfigError(
    `DATABASE_URL must start with "file:" (SQLite) or "postgresql://" (PostgreSQL), got "${raw}"`,
  );
}

/**
 * Tracing is on when OTEL_TRACES_EXPORTER names an exporter, or when an OTLP endpoint is set
 * (and OTEL_TRACES_EXPORTER is not `none`). Unlike the OpenTelemetry SDK's own default, an
 * unconfigured server sends nothing anywhere.
 */
function tracingFrom(env: Env): TracingConfig | undefined {
  const exporter = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() || undefined;
  const tracesEndpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || undefined;
  const baseEndpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim().replace(/\/+$/, "") || undefined;
  if (exporter === "none") return undefined;
  if (exporter !== undefined && exporter !== "otlp" && exporter !== "console") {
    throw new ConfigError(
      `OTEL_TRACES_EXPORTER must be otlp, console or none, got "${env.OTEL_TRACES_EXPORTER}"`,
    );
  }
  if (!exporter && !tracesEndpoint && !baseEndpoint) return undefined;
  const endpoint =
    tracesEndpoint ??
    (baseEndpoint ? `${baseEndpoint}/v1/traces` : "http://localhost:4318/v1/traces");
  if (!/^https?:\/\//.test(endpoint))
    throw new ConfigError(`the OTLP endpoint must be an http(s) URL, got "${endpoint}"`);
  return {
    exporter: exporter === "console" ? "console" : "otlp",
    endpoint,
    serviceName: env.OTEL_SERVICE_NAME?.trim() || "pipeline-server",
  };
}

function agentsFrom(file: string | undefined, env: Env): AgentConfig[] {
  if (!file) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new ConfigError(
      `AGENTS_FILE "${file}" cannot be read as JSON: ${(error as Error).message}`,
    );
  }
  const list = Array.isArray(parsed) ? parsed : (parsed as { agents?: unknown })?.agents;
  if (!Array.isArray(list))
    throw new ConfigError(`AGENTS_FILE "${file}" must hold {"agents": [...]} or an array`);
  const seen = new Set<string>();
  return list.map((raw, i) => {
    const at = `AGENTS_FILE agent #${i + 1}`;
    const a = (raw ?? {}) as Record<string, unknown>;
    if (typeof a.id !== "string" || a.id === "") throw new ConfigError(`${at} needs an "id"`);
    if (seen.has(a.id)) throw new ConfigError(`${at}: id "${a.id}" is declared twice`);
    seen.add(a.id);
    const provider = a.provider ?? "openai";
    if (provider !== "openai")
      throw new ConfigError(
        `${at} ("${a.id}"): provider must be "openai", got "${String(provider)}"`,
      );
    if (typeof a.baseUrl !== "string" || !/^https?:\/\//.test(a.baseUrl)) {
      throw new ConfigError(
        `${at} ("${a.id}"): baseUrl must be an http(s) URL, got "${String(a.baseUrl)}"`,
      );
    }
    if (typeof a.model !== "string" || a.model === "")
      throw new ConfigError(`${at} ("${a.id}") needs a "model"`);
    let apiKey: string | undefined;
    const secret = /^\{\{\s*secrets\.([A-Za-z_]\w{0,63})\s*\}\}$/.exec(String(a.apiKey ?? ""))?.[1];
    if (a.apiKey !== undefined && !secret)
      throw new ConfigError(`${at} ("${a.id}"): apiKey must be "{{secrets.NAME}}"`);
    if (a.apiKeyEnv !== undefined) {
      if (typeof a.apiKeyEnv !== "string")
        throw new ConfigError(`${at} ("${a.id}"): apiKeyEnv must name a variable`);
      apiKey = env[a.apiKeyEnv];
      if (!apiKey)
        throw new ConfigError(`${at} ("${a.id}"): environment variable ${a.apiKeyEnv} is not set`);
    }
    const optionalNumber = (key: string) => {
      const value = a[key];
      if (value === undefined) return undefined;
      if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
        throw new ConfigError(
          `${at} ("${a.id}"): ${key} must be a number ≥ 0, got ${JSON.stringify(value)}`,
        );
      }
      return value;
    };
    return {
      id: a.id,
      provider: "openai",
      baseUrl: a.baseUrl.replace(/\/+$/, ""),
      model: a.model,
      apiKey,
      apiKeySecret: secret,
      systemPrompt: typeof a.systemPrompt === "string" ? a.systemPrompt : undefined,
      temperature: optionalNumber("temperature"),
      maxTokens: optionalNumber("maxTokens"),
      timeoutMs: optionalNumber("timeoutMs") ?? 60_000,
    } satisfies AgentConfig;
  });
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (!raw) return fallback;
  if (/^(1|true|on|0|false|off)$/.test(raw)) return /^(1|true|on)$/.test(raw);
  throw new ConfigError(`${name} must be on or off, got "${env[name]}"`);
}

/** "90s", "15m", "12h", "30d" or milliseconds. */
function duration(env: Env, name: string): number | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(raw);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
  if (!match || Number(match[1]) === 0)
    throw new ConfigError(`${name} must be a duration such as 90s, 15m, 12h or 30d, got "${raw}"`);
  return Number(match[1]) * unit[(match[2] ?? "ms") as keyof typeof unit];
}

function secretsKeyFrom(env: Env): Buffer | undefined {
  const raw = env.SECRETS_KEY?.trim();
  if (!raw) return undefined;
  const key = /^[0-9a-fA-F]{64}$/.test(raw) ? Buffer.from(raw, "hex") : Buffer.from(raw, "base64");
  if (key.length === 32) return key;
  throw new ConfigError(`SECRETS_KEY must be 32 bytes, hex or base64, got ${key.length} bytes`);
}

function jwtFrom(env: Env): JwtConfig | undefined {
  const [secret, jwksUrl, issuer, audience] = ["SECRET", "JWKS_URL", "ISSUER", "AUDIENCE"].map(
    (name) => env[`JWT_${name}`]?.trim() || undefined,
  );
  if (!secret && !jwksUrl) return undefined;
  if (jwksUrl && !/^https?:\/\//.test(jwksUrl))
    throw new ConfigError(`JWT_JWKS_URL must be an http(s) URL, got "${jwksUrl}"`);
  return { secret, jwksUrl, issuer, audience, roleClaim: env.JWT_ROLE_CLAIM?.trim() || "role" };
}

function securityFrom(env: Env): SecurityConfig {
  const auth = (env.AUTH?.trim().toLowerCase() || "auto") as SecurityConfig["auth"];
  if (!["auto", "on", "off"].includes(auth))
    throw new ConfigError(`AUTH must be auto, on or off, got "${env.AUTH}"`);
  const retained = int(env, "MAX_RETAINED_RUNS", 0, 0, 1_000_000_000);
  return {
    auth,
    jwt: jwtFrom(env),
    secretsKey: secretsKeyFrom(env),
    graphiql: flag(env, "GRAPHIQL", true),
    introspection: flag(env, "INTROSPECTION", true),
    document: {
      maxDepth: int(env, "MAX_QUERY_DEPTH", 20, 2, 1000),
      maxAliases: int(env, "MAX_QUERY_ALIASES", 30, 1, 100_000),
      maxDirectives: int(env, "MAX_QUERY_DIRECTIVES", 50, 1, 100_000),
      maxTokens: int(env, "MAX_QUERY_TOKENS", 100_000, 100, 10_000_000),
      maxCost: int(env, "MAX_QUERY_COST", 100_000, 100, 1_000_000_000),
    },
    runsPerMinute: int(env, "RATE_LIMIT_RUNS", 600, 0, 100_000_000),
    writesPerMinute: int(env, "RATE_LIMIT_WRITES", 600, 0, 100_000_000),
    maxSubscriptionsPerKey: int(env, "MAX_SUBSCRIPTIONS_PER_KEY", 1000, 1, 1_000_000),
    maxPipelines: int(env, "MAX_PIPELINES", 100_000, 1, 1_000_000_000),
    runRetentionMs: duration(env, "RUN_RETENTION"),
    maxRetainedRuns: retained === 0 ? undefined : retained,
    retentionIntervalMs: int(env, "RETENTION_INTERVAL_MS", 60_000, 100, 86_400_000),
  };
}

/**
 * Reads and validates the configuration.
 * @throws {ConfigError} naming the variable and the bad value
 */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const logLevel = (env.LOG_LEVEL?.trim() || "info") as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(
      `LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got "${env.LOG_LEVEL}"`,
    );
  }
  const redisUrl = env.REDIS_URL?.trim() || undefined;
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) {
    throw new ConfigError(`REDIS_URL must start with "redis://" or "rediss://", got "${redisUrl}"`);
  }
  const host = env.HOST?.trim() || "127.0.0.1";
  if (/\s|\//.test(host))
    throw new ConfigError(`HOST must be a host name or address, got "${host}"`);
  const allowlist = (env.HTTP_ACTION_ALLOWLIST ?? "")
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  const agentsFile = env.AGENTS_FILE?.trim()
    ? path.resolve(cwd, env.AGENTS_FILE.trim())
    : undefined;
  return {
    port: int(env, "PORT", 4000, 0, 65535),
    host,
    ...databaseFrom(env, cwd),
    databasePreparedStatements: flag(env, "DATABASE_PREPARED_STATEMENTS", true),
    redisUrl,
    logLevel,
    maxConcurrentNodes: int(env, "MAX_CONCURRENT_NODES", 64, 1, 100_000),
    agentsFile,
    agents: agentsFrom(agentsFile, env),
    httpActionAllowlist: allowlist,
    limits: {
      maxNodes: int(env, "MAX_PIPELINE_NODES", 10_000, 1, 1_000_000),
      maxEdges: int(env, "MAX_PIPELINE_EDGES", 50_000, 0, 5_000_000),
      maxConfigBytes: int(env, "MAX_CONFIG_BYTES", 64 * 1024, 256, 64 * 1024 * 1024),
      maxJsonDepth: int(env, "MAX_JSON_DEPTH", 32, 2, 1000),
      maxRequestBytes: int(env, "MAX_REQUEST_BYTES", 16 * MiB, 1024, 1024 * MiB),
      maxOutputBytes: int(env, "MAX_OUTPUT_BYTES", 10 * MiB, 1024, 1024 * MiB),
      maxRunOutputBytes: int(env, "MAX_RUN_OUTPUT_BYTES", 64 * MiB, 1024, 64 * 1024 * MiB),
    },
    maxActiveRuns: int(env, "MAX_ACTIVE_RUNS", 256, 1, 1_000_000),
    leaseMs: int(env, "RUN_LEASE_MS", 5_000, 500, 3_600_000),
    shutdownGraceMs: int(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 3_600_000),
    instanceId:
      env.INSTANCE_ID?.trim() || `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
    tracing: tracingFrom(env),
    security: securityFrom(env),
  };
}
