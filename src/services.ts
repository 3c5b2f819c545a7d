/**
 * createServices(config): what the server runs on, opened in order and closed in reverse —
 * the logger, the store (migrated), the bus (Redis or in-process), tracing, the engine with
 * its observers (metrics, tracing, run log lines). The HTTP side (server/app.ts) receives
 * them; tests pass their own store, bus, logger or span processor.
 */
import type { SpanProcessor } from "@opentelemetry/sdk-trace-node";
import type { Logger } from "pino";
import type { Config } from "./config.ts";
import { createMemoryBus, type EventBus } from "./engine/bus.ts";
import { Engine } from "./engine/engine.ts";
import { combineHooks } from "./engine/hooks.ts";
import { createRedisBus } from "./engine/redis-bus.ts";
import { SecretVault } from "./engine/secrets.ts";
import { createLogger } from "./observability/logger.ts";
import { createEngineMetrics, type EngineMetrics } from "./observability/metrics.ts";
import { createRunLogHooks } from "./observability/run-log.ts";
import { startTracing, type Tracing } from "./observability/tracing.ts";
import { startRetention } from "./retention.ts";
import { openStore } from "./store/index.ts";
import type { Store } from "./store/types.ts";

export interface Services {
  readonly logger: Logger;
  readonly store: Store;
  readonly bus: EventBus;
  readonly engine: Engine;
  /** Named secrets, encrypted under SECRETS_KEY. */
  readonly secrets: SecretVault;
  /** The registry `/metrics` serves, and the engine observer filling it. */
  readonly metrics: EngineMetrics;
  /** Set when tracing is configured. */
  readonly tracing: Tracing | undefined;
  /**
   * Stops the engine (running nodes get `graceMs` to finish, then their runs are handed
   * over), then closes the bus and the store.
   */
  close(graceMs: number): Promise<void>;
}

export interface ServiceOverrides {
  /** Use this store instead of opening the configured database; it is closed with the rest. */
  readonly store?: Store;
  readonly bus?: EventBus;
  readonly logger?: Logger;
  /** With tracing configured: where spans go instead of the configured exporter. */
  readonly spanProcessor?: SpanProcessor;
}

/** Opens everything the configuration names. Nothing runs until `engine.start()`. */
export async function createServices(
  config: Config,
  overrides: ServiceOverrides = {},
): Promise<Services> {
  const logger = overrides.logger ?? createLogger(config);
  const store =
    overrides.store ??
    (await openStore({
      databaseUrl: config.databaseUrl,
      provider: config.databaseProvider,
      preparedStatements: config.databasePreparedStatements,
      logger,
      onMigrated: ({ applied, changed }) => {
        if (applied.length > 0) logger.info({ applied }, "database migrated");
        if (changed.length > 0)
          logger.warn({ changed }, "applied migrations differ from the files on disk");
      },
    }));
  let bus: EventBus;
  try {
    bus =
      overrides.bus ??
      (config.redisUrl ? await createRedisBus(config.redisUrl, logger) : createMemoryBus());
  } catch (error) {
    await store.close();
    throw error;
  }
  const tracing = config.tracing
    ? startTracing(config.tracing, { spanProcessor: overrides.spanProcessor })
    : undefined;
  const secrets = new SecretVault(store.admin, config.security.secretsKey);
  const metrics = createEngineMetrics({ store, logger });
  const engineLogger = logger.child({ component: "engine" });
  const hooks = combineHooks(engineLogger, [
    metrics.hooks,
    createRunLogHooks(engineLogger),
    ...(tracing ? [tracing.hooks] : []),
  ]);
  const engine = new Engine({
    store,
    bus,
    logger: engineLogger,
    instanceId: config.instanceId,
    maxConcurrentNodes: config.maxConcurrentNodes,
    maxActiveRuns: config.maxActiveRuns,
    leaseMs: config.leaseMs,
    limits: config.limits,
    outputLimits: config.limits,
    httpAllowlist: config.httpActionAllowlist,
    agents: config.agents,
    hooks,
    secrets,
  });
  const retention = startRetention(store, config.security, logger);
  metrics.observe(engine);
  let closing: Promise<void> | undefined;
  return {
    logger,
    store,
    bus,
    engine,
    secrets,
    metrics,
    tracing,
    close(graceMs) {
      closing ??= (async () => {
        retention.stop();
        await engine.stop(graceMs);
        await retention.idle();
        await bus.close();
        await store.close();
        await tracing?.shutdown();
      })();
      return closing;
    },
  };
}
