/**
 * buildApp(): the whole server (store, engine, GraphQL over HTTP, SSE and WebSocket on one
 * port and path) as an object with start() and stop().
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { ExecutionArgs, execute as graphqlExecute } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { createYoga, type YogaServerInstance } from "graphql-yoga";
import pino, { type Logger } from "pino";
import { WebSocketServer } from "ws";
import type { Config } from "../config.ts";
import { createMemoryBus, createRedisBus, type EventBus } from "../engine/bus.ts";
import { Engine } from "../engine/engine.ts";
import { createLoaders, type GraphQLContext, schema } from "../schema/index.ts";
import { openStore } from "../store/index.ts";
import type { Store } from "../store/types.ts";
import { createMaskError } from "./errors.ts";
import { graphiqlOptions, renderPipelineGraphiQL } from "./graphiql.ts";
import { useDocumentLimits } from "./limits.ts";

export interface App {
  readonly config: Config;
  readonly store: Store;
  readonly engine: Engine;
  readonly logger: Logger;
  readonly yoga: YogaServerInstance<Record<string, unknown>, GraphQLContext>;
  /** Listens; resolves with the port actually bound (pass 0 for any free port). */
  start(port?: number, host?: string): Promise<{ port: number; url: string }>;
  /** Graceful stop: no new requests or runs, running nodes get the grace period, then hand-over. */
  stop(graceMs?: number): Promise<void>;
}

export interface BuildAppOptions {
  /** Use this store instead of opening the configured database (tests). */
  readonly store?: Store;
  readonly bus?: EventBus;
  readonly logger?: Logger;
}

export const GRAPHQL_PATH = "/graphql";

type Operation = (args: ExecutionArgs) => ReturnType<typeof graphqlExecute>;
interface EnvelopedRoot {
  readonly execute: Operation;
  readonly subscribe: Operation;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** Builds everything; nothing listens until start(). */
export async function buildApp(config: Config, options: BuildAppOptions = {}): Promise<App> {
  const logger =
    options.logger ?? pino({ level: config.logLevel, base: { instance: config.instanceId } });
  const store =
    options.store ??
    (await openStore({
      databaseUrl: config.databaseUrl,
      provider: config.databaseProvider,
      onMigrated: ({ applied, changed }) => {
        if (applied.length > 0) logger.info({ applied }, "database migrated");
        if (changed.length > 0)
          logger.warn({ changed }, "applied migrations differ from the files on disk");
      },
    }));
  const bus =
    options.bus ?? (config.redisUrl ? await createRedisBus(config.redisUrl) : createMemoryBus());
  const engine = new Engine({
    store,
    bus,
    logger: logger.child({ component: "engine" }),
    instanceId: config.instanceId,
    maxConcurrentNodes: config.maxConcurrentNodes,
    maxActiveRuns: config.maxActiveRuns,
    leaseMs: config.leaseMs,
    validation: config.limits,
    httpAllowlist: config.httpActionAllowlist,
    agents: config.agents,
    jsonLimits: config.limits,
  });

  const yoga = createYoga<Record<string, unknown>, GraphQLContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    healthCheckEndpoint: "/health",
    landingPage: false,
    graphiql: graphiqlOptions,
    renderGraphiQL: renderPipelineGraphiQL,
    maskedErrors: { maskError: createMaskError(logger) },
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(" ")),
      info: (...args) => logger.info(args.map(String).join(" ")),
      warn: (...args) => logger.warn(args.map(String).join(" ")),
      // Yoga reports every GraphQL error here, client mistakes included; the unexpected ones
      // are logged at error level by maskError.
      error: (...args) => logger.debug(args.map(String).join(" ")),
    },
    context: () => ({
      store,
      engine,
      limits: config.limits,
      actions: engine.actions,
      loaders: createLoaders(store),
    }),
    plugins: [
      useDocumentLimits(),
      {
        // Readiness: the database answers.
        onRequest: async ({ request, endResponse, fetchAPI }) => {
          if (new URL(request.url).pathname !== "/ready") return;
          try {
            await store.listPipelines({ first: 1 });
            endResponse(Response.json({ status: "ready", activeRuns: engine.activeRuns }));
          } catch (error) {
            logger.warn({ err: error }, "readiness check failed");
            endResponse(
              new fetchAPI.Response(JSON.stringify({ status: "unavailable" }), {
                status: 503,
                headers: { "content-type": "application/json" },
              }),
            );
          }
        },
      },
    ],
  });

  let stopping = false;
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (stopping) {
      res.setHeader("connection", "close");
      return json(res, 503, {
        errors: [
          { message: "server is shutting down", extensions: { code: "SERVICE_UNAVAILABLE" } },
        ],
      });
    }
    if (req.method === "POST") {
      const length = req.headers["content-length"];
      if (length === undefined) {
        return json(res, 411, {
          errors: [
            {
              message: "a request body needs a Content-Length header",
              extensions: { code: "LENGTH_REQUIRED" },
            },
          ],
        });
      }
      if (Number(length) > config.limits.maxRequestBytes) {
        req.resume();
        res.setHeader("connection", "close");
        return json(res, 413, {
          errors: [
            {
              message: `request body of ${length} bytes is over the limit of ${config.limits.maxRequestBytes}`,
              extensions: { code: "PAYLOAD_TOO_LARGE" },
            },
          ],
        });
      }
    }
    void yoga.requestListener(req, res);
  };
  const server: Server = createServer(handle);
  const wss = new WebSocketServer({
    server,
    path: GRAPHQL_PATH,
    maxPayload: config.limits.maxRequestBytes,
  });
  const wsServer = useServer(
    {
      // The enveloped execute/subscribe travel in rootValue (set in onSubscribe below).
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args),
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args),
      onSubscribe: async (ctx, _id, params) => {
        const {
          schema: envelopedSchema,
          execute,
          subscribe,
          contextFactory,
          parse,
          validate,
        } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
        });
        const args = {
          schema: envelopedSchema,
          operationName: params.operationName,
          document: parse(params.query),
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        const errors = validate(args.schema, args.document);
        if (errors.length > 0) return errors;
        return args;
      },
    },
    wss,
  );

  return {
    config,
    store,
    engine,
    logger,
    yoga,
    async start(port = config.port, host = config.host) {
      engine.start();
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve();
        });
      });
      const bound = (server.address() as AddressInfo).port;
      const shownHost = host.includes(":") ? `[${host}]` : host;
      return { port: bound, url: `http://${shownHost}:${bound}${GRAPHQL_PATH}` };
    },
    async stop(graceMs = config.shutdownGraceMs) {
      if (stopping) return;
      stopping = true;
      const closed = new Promise<void>((resolve) =>
        server.listening ? server.close(() => resolve()) : resolve(),
      );
      server.closeIdleConnections();
      await wsServer.dispose();
      await engine.stop(graceMs);
      server.closeAllConnections();
      await closed;
      await bus.close();
      await store.close();
    },
  };
}
