/** Entry point: `npm start`. */
// First: stops an old Node.js with one line before any native addon is loaded.
import "./node-version.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { explainListenError, preflight } from "./preflight.ts";
import { buildApp } from "./server/app.ts";
import { AuthSetupError } from "./server/auth.ts";
import { createServices } from "./services.ts";

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
  await preflight(config);
  const services = await createServices(config);
  const app = buildApp(config, services);
  const { logger } = services;
  const { url, dashboardUrl } = await app.start().catch(async (error: unknown) => {
    if (error instanceof AuthSetupError) {
      console.error(error.message);
      await services.close(0);
      process.exit(1);
    }
    throw explainListenError(error, config.host, config.port) ?? error;
  });
  logger.info(
    { url, dashboardUrl, database: config.databaseProvider, redis: Boolean(config.redisUrl) },
    `GraphQL API${config.security.graphiql ? " and GraphiQL" : ""} at ${url}, dashboard at ${dashboardUrl}`,
  );
  // AUTH=off is a choice that leaves the port open to anyone: a warning, not an info line.
  if (config.security.auth === "off") logger.warn(await app.describeAuth());
  else logger.info(await app.describeAuth());
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      logger.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, graceMs: config.shutdownGraceMs }, "shutting down");
    app.stop().then(
      () => {
        logger.info("stopped");
        // Logs are written asynchronously: let them reach stdout before exiting.
        logger.flush(() => process.exit(0));
      },
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        logger.flush(() => process.exit(1));
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
