import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.ts";

const cwd = "/srv/pipelines";

/** The ConfigError `loadConfig` throws for `env`; fails the test when it throws none. */
function configError(env: Record<string, string>, dir = cwd): ConfigError {
  try {
    loadConfig(env, dir);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig(${JSON.stringify(env)}) did not throw`);
}

describe("loadConfig defaults", () => {
  it("uses the documented defaults for an empty environment", () => {
    expect(loadConfig({}, cwd)).toEqual({
      port: 4000,
      host: "127.0.0.1",
      databaseUrl: "file:/srv/pipelines/data/pipelines.db",
      databaseProvider: "sqlite",
      databasePreparedStatements: true,
      redisUrl: undefined,
      logLevel: "info",
      maxConcurrentNodes: 64,
      agentsFile: undefined,
      agents: [],
      httpActionAllowlist: [],
      limits: {
        maxNodes: 10_000,
        maxEdges: 50_000,
        maxConfigBytes: 65_536,
        maxJsonDepth: 32,
        maxRequestBytes: 16 * 1024 * 1024,
        maxOutputBytes: 10 * 1024 * 1024,
        maxRunOutputBytes: 64 * 1024 * 1024,
      },
      maxActiveRuns: 256,
      leaseMs: 5_000,
      shutdownGraceMs: 10_000,
      instanceId: expect.stringMatching(/^\S+$/),
      tracing: undefined,
      security: {
        auth: "auto",
        jwt: undefined,
        secretsKey: undefined,
        graphiql: true,
        introspection: true,
        document: {
          maxDepth: 20,
          maxAliases: 30,
          maxDirectives: 50,
          maxTokens: 100_000,
          maxCost: 100_000,
        },
        runsPerMinute: 600,
        writesPerMinute: 600,
        maxSubscriptionsPerKey: 1000,
        maxPipelines: 100_000,
        runRetentionMs: undefined,
        maxRetainedRuns: undefined,
        retentionIntervalMs: 60_000,
      },
    });
  });

  it("treats empty and blank values as unset", () => {
    const config = loadConfig(
      { PORT: "", HOST: " ", LOG_LEVEL: "", DATABASE_URL: "  ", REDIS_URL: "", AGENTS_FILE: "" },
      cwd,
    );
    expect(config).toMatchObject({
      port: 4000,
      host: "127.0.0.1",
      logLevel: "info",
      databaseUrl: "file:/srv/pipelines/data/pipelines.db",
      databaseProvider: "sqlite",
      redisUrl: undefined,
      agentsFile: undefined,
      agents: [],
    });
  });

  it("puts the default SQLite file under data/ of the directory it is given", () => {
    expect(loadConfig({}, "/tmp/elsewhere").databaseUrl).toBe(
      "file:/tmp/elsewhere/data/pipelines.db",
    );
  });
});

describe("loadConfig tracing", () => {
  it("turns tracing on with an OTLP endpoint, the traces path appended to a base one", () => {
    expect(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }, cwd).tracing,
    ).toEqual({
      exporter: "otlp",
      endpoint: "http://collector:4318/v1/traces",
      serviceName: "pipeline-server",
    });
    expect(
      loadConfig(
        {
          OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://other:4318/traces",
          OTEL_SERVICE_NAME: "pipelines-eu",
        },
        cwd,
      ).tracing,
    ).toEqual({
      exporter: "otlp",
      endpoint: "http://other:4318/traces",
      serviceName: "pipelines-eu",
    });
  });

  it("turns it on by exporter name, and off with none whatever the endpoint", () => {
    expect(loadConfig({ OTEL_TRACES_EXPORTER: "console" }, cwd).tracing?.exporter).toBe("console");
    expect(loadConfig({ OTEL_TRACES_EXPORTER: "otlp" }, cwd).tracing?.endpoint).toBe(
      "http://localhost:4318/v1/traces",
    );
    expect(
      loadConfig(
        { OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" },
        cwd,
      ).tracing,
    ).toBeUndefined();
  });

  it("names a bad exporter or endpoint", () => {
    expect(configError({ OTEL_TRACES_EXPORTER: "zipkin" }).message).toBe(
      'OTEL_TRACES_EXPORTER must be otlp, console or none, got "zipkin"',
    );
    expect(configError({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "collector:4318" }).message).toBe(
      'the OTLP endpoint must be an http(s) URL, got "collector:4318"',
    );
  });
});

describe("loadConfig values", () => {
  it("reads every variable", () => {
    const config = loadConfig(
      {
        PORT: " 8080 ",
        HOST: "0.0.0.0",
        LOG_LEVEL: "debug",
        REDIS_URL: "redis://localhost:6379/0",
        MAX_CONCURRENT_NODES: "8",
        MAX_PIPELINE_NODES: "50",
        INSTANCE_ID: "node-a",
      },
      cwd,
    );
    expect(config).toMatchObject({
      port: 8080,
      host: "0.0.0.0",
      logLevel: "debug",
      redisUrl: "redis://localhost:6379/0",
      maxConcurrentNodes: 8,
      instanceId: "node-a",
    });
    expect(config.limits.maxNodes).toBe(50);
  });

  it("accepts PORT=0 (any free port) and the top of the range", () => {
    expect(loadConfig({ PORT: "0" }, cwd).port).toBe(0);
    expect(loadConfig({ PORT: "65535" }, cwd).port).toBe(65535);
  });

  it("selects PostgreSQL for postgresql:// and postgres:// URLs, unchanged", () => {
    expect(loadConfig({ DATABASE_URL: "postgresql://u:p@db:5432/pipes" }, cwd)).toMatchObject({
      databaseUrl: "postgresql://u:p@db:5432/pipes",
      databaseProvider: "postgresql",
    });
    expect(loadConfig({ DATABASE_URL: "postgres://db/pipes" }, cwd)).toMatchObject({
      databaseUrl: "postgres://db/pipes",
      databaseProvider: "postgresql",
    });
  });

  it("resolves a relative SQLite file against the directory and keeps :memory:", () => {
    expect(loadConfig({ DATABASE_URL: "file:./x/y.db" }, cwd)).toMatchObject({
      databaseUrl: "file:/srv/pipelines/x/y.db",
      databaseProvider: "sqlite",
    });
    expect(loadConfig({ DATABASE_URL: "file:/var/db.sqlite" }, cwd).databaseUrl).toBe(
      "file:/var/db.sqlite",
    );
    expect(loadConfig({ DATABASE_URL: "file::memory:" }, cwd).databaseUrl).toBe("file::memory:");
  });

  it("turns PostgreSQL's prepared statements off with DATABASE_PREPARED_STATEMENTS=off", () => {
    const prepared = (value: string) =>
      loadConfig({ DATABASE_PREPARED_STATEMENTS: value }, cwd).databasePreparedStatements;
    expect(["off", "0", "false", "on", " ON "].map(prepared)).toEqual([
      false,
      false,
      false,
      true,
      true,
    ]);
  });

  it("accepts rediss:// URLs", () => {
    expect(loadConfig({ REDIS_URL: "rediss://cache:6380" }, cwd).redisUrl).toBe(
      "rediss://cache:6380",
    );
  });

  it("parses HTTP_ACTION_ALLOWLIST: comma-separated, trimmed, lower-cased, empty items dropped", () => {
    expect(
      loadConfig({ HTTP_ACTION_ALLOWLIST: " 127.0.0.1, LocalHost ,,Example.COM:8080, " }, cwd)
        .httpActionAllowlist,
    ).toEqual(["127.0.0.1", "localhost", "example.com:8080"]);
    expect(loadConfig({ HTTP_ACTION_ALLOWLIST: "localhost" }, cwd).httpActionAllowlist).toEqual([
      "localhost",
    ]);
    expect(loadConfig({ HTTP_ACTION_ALLOWLIST: " , " }, cwd).httpActionAllowlist).toEqual([]);
  });
});

describe("loadConfig rejects bad values with one line naming the variable and the value", () => {
  const cases: [Record<string, string>, string][] = [
    [{ PORT: "abc" }, 'PORT must be a whole number, got "abc"'],
    [{ PORT: "70000" }, "PORT must be between 0 and 65535, got 70000"],
    [{ PORT: "-1" }, 'PORT must be a whole number, got "-1"'],
    [{ PORT: "80.5" }, 'PORT must be a whole number, got "80.5"'],
    [
      { LOG_LEVEL: "loud" },
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ],
    [
      { DATABASE_URL: "mysql://x" },
      'DATABASE_URL must start with "file:" (SQLite) or "postgresql://" (PostgreSQL), got "mysql://x"',
    ],
    [{ DATABASE_URL: "postgresql://[" }, 'DATABASE_URL is not a valid URL: "postgresql://["'],
    [{ DATABASE_URL: "file:" }, 'DATABASE_URL "file:" names no file'],
    [
      { REDIS_URL: "http://x" },
      'REDIS_URL must start with "redis://" or "rediss://", got "http://x"',
    ],
    [{ MAX_CONCURRENT_NODES: "0" }, "MAX_CONCURRENT_NODES must be between 1 and 100000, got 0"],
    [{ MAX_CONCURRENT_NODES: "many" }, 'MAX_CONCURRENT_NODES must be a whole number, got "many"'],
    [{ HOST: "http://host" }, 'HOST must be a host name or address, got "http://host"'],
    [{ MAX_PIPELINE_NODES: "0" }, "MAX_PIPELINE_NODES must be between 1 and 1000000, got 0"],
    [
      { DATABASE_PREPARED_STATEMENTS: "never" },
      'DATABASE_PREPARED_STATEMENTS must be on or off, got "never"',
    ],
  ];

  it.each(cases)("%o", (env, message) => {
    const error = configError(env);
    expect(error.message).toBe(message);
    expect(error.message).not.toContain("\n");
    expect(error.name).toBe("ConfigError");
    expect(error.code).toBe("INVALID_CONFIG");
  });
});

describe("AGENTS_FILE", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "config-test-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function agentsFile(name: string, content: unknown): string {
    const file = path.join(dir, name);
    writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
    return file;
  }

  const writer = {
    id: "writer",
    provider: "openai",
    baseUrl: "https://llm.example.com/v1///",
    model: "gpt-test",
    apiKeyEnv: "WRITER_API_KEY",
  };

  it("reads an agent, resolving its key from the given environment and trimming the base URL", () => {
    const file = agentsFile("valid.json", { agents: [writer] });
    const config = loadConfig({ AGENTS_FILE: file, WRITER_API_KEY: "sk-test-1" }, cwd);
    expect(config.agentsFile).toBe(file);
    expect(config.agents).toEqual([
      {
        id: "writer",
        provider: "openai",
        baseUrl: "https://llm.example.com/v1",
        model: "gpt-test",
        apiKey: "sk-test-1",
        systemPrompt: undefined,
        temperature: undefined,
        maxTokens: undefined,
        timeoutMs: 60_000,
      },
    ]);
  });

  it("accepts a bare array, optional settings, no key, and a path relative to the directory", () => {
    agentsFile("array.json", [
      {
        id: "local",
        baseUrl: "http://127.0.0.1:11434/v1/",
        model: "llama",
        systemPrompt: "Be brief.",
        temperature: 0.2,
        maxTokens: 256,
        timeoutMs: 5000,
      },
    ]);
    const config = loadConfig({ AGENTS_FILE: "array.json" }, dir);
    expect(config.agentsFile).toBe(path.join(dir, "array.json"));
    expect(config.agents).toEqual([
      {
        id: "local",
        provider: "openai",
        baseUrl: "http://127.0.0.1:11434/v1",
        model: "llama",
        apiKey: undefined,
        systemPrompt: "Be brief.",
        temperature: 0.2,
        maxTokens: 256,
        timeoutMs: 5000,
      },
    ]);
  });

  it("rejects an agent whose key variable is not set", () => {
    const file = agentsFile("missing-key.json", { agents: [writer] });
    expect(configError({ AGENTS_FILE: file }).message).toBe(
      'AGENTS_FILE agent #1 ("writer"): environment variable WRITER_API_KEY is not set',
    );
    expect(configError({ AGENTS_FILE: file, WRITER_API_KEY: "" }).message).toBe(
      'AGENTS_FILE agent #1 ("writer"): environment variable WRITER_API_KEY is not set',
    );
  });

  it("rejects a file that is not JSON", () => {
    const text = "{ agents: [";
    const file = agentsFile("bad.json", text);
    let parseMessage = "";
    try {
      JSON.parse(text);
    } catch (error) {
      parseMessage = (error as Error).message;
    }
    expect(parseMessage).not.toBe("");
    const error = configError({ AGENTS_FILE: file });
    expect(error.message).toBe(`AGENTS_FILE "${file}" cannot be read as JSON: ${parseMessage}`);
    expect(error.message).not.toContain("\n");
  });

  it("rejects a file that does not exist", () => {
    const file = path.join(dir, "nope.json");
    expect(configError({ AGENTS_FILE: file }).message).toBe(
      `AGENTS_FILE "${file}" cannot be read as JSON: ENOENT: no such file or directory, open '${file}'`,
    );
  });

  it("rejects JSON that holds no list of agents", () => {
    const file = agentsFile("object.json", { writer });
    expect(configError({ AGENTS_FILE: file }).message).toBe(
      `AGENTS_FILE "${file}" must hold {"agents": [...]} or an array`,
    );
  });

  it("rejects duplicate ids", () => {
    const file = agentsFile("duplicate.json", {
      agents: [writer, { ...writer, model: "other" }],
    });
    expect(configError({ AGENTS_FILE: file, WRITER_API_KEY: "k" }).message).toBe(
      'AGENTS_FILE agent #2: id "writer" is declared twice',
    );
  });

  it("rejects a provider other than openai", () => {
    const file = agentsFile("provider.json", { agents: [{ ...writer, provider: "anthropic" }] });
    expect(configError({ AGENTS_FILE: file, WRITER_API_KEY: "k" }).message).toBe(
      'AGENTS_FILE agent #1 ("writer"): provider must be "openai", got "anthropic"',
    );
  });

  it("rejects an agent without id, a bad baseUrl, no model, and a bad number", () => {
    const cases: [unknown, string][] = [
      [{ ...writer, id: "" }, 'AGENTS_FILE agent #1 needs an "id"'],
      [
        { ...writer, baseUrl: "ftp://x" },
        'AGENTS_FILE agent #1 ("writer"): baseUrl must be an http(s) URL, got "ftp://x"',
      ],
      [{ ...writer, model: "" }, 'AGENTS_FILE agent #1 ("writer") needs a "model"'],
      [
        { ...writer, temperature: -1 },
        'AGENTS_FILE agent #1 ("writer"): temperature must be a number ≥ 0, got -1',
      ],
    ];
    for (const [agent, message] of cases) {
      const file = agentsFile("one.json", { agents: [agent] });
      expect(configError({ AGENTS_FILE: file, WRITER_API_KEY: "k" }).message).toBe(message);
    }
  });
});
