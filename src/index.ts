/** Entry point: `npm start`. */
import { ConfigError, loadConfig } from "./config.ts";
import { buildApp } from "./server/app.ts";

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`configuration error: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
  const app = await buildApp(config);
  const { url } = await app.start();
  app.logger.info(
    { url, database: config.databaseProvider, redis: Boolean(config.redisUrl) },
    `GraphQL API and GraphiQL at ${url}`,
  );
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      app.logger.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    app.logger.info({ signal, graceMs: config.shutdownGraceMs }, "shutting down");
    app.stop().then(
      () => {
        app.logger.info("stopped");
        // Logs are written asynchronously: let them reach stdout before exiting.
        app.logger.flush(() => process.exit(0));
      },
      (error: unknown) => {
        app.logger.error({ err: error }, "shutdown failed");
        app.logger.flush(() => process.exit(1));
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

main().catch((error: unknown) => {
  console.error(`failed to start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
