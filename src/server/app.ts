/**
 * buildApp(config, services): GraphQL over HTTP, SSE and WebSocket on one port and path, with
 * GraphiQL, health and readiness, on the services the entry composed (services.ts). Nothing
 * listens until start(); stop() closes the HTTP side, then the services.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { useCSRFPrevention } from "@graphql-yoga/plugin-csrf-prevention";
import type { TracerProvider } from "@opentelemetry/api";
import type { ExecutionArgs, GraphQLError, execute as graphqlExecute } from "graphql";
import { NoSchemaIntrospectionCustomRule } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { createYoga, type Plugin, useReadinessCheck, type YogaServerInstance } from "graphql-yoga";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { WebSocketServer } from "ws";
import type { Config } from "../config.ts";
import type { Principal } from "../domain/access.ts";
import type { Engine } from "../engine/engine.ts";
import type { SecretVault } from "../engine/secrets.ts";
import { createLoaders, type GraphQLContext, schema } from "../schema/index.ts";
import type { Store } from "../store/types.ts";
import { AuthSetupError, createAuthenticator, isLoopback } from "./auth.ts";
import { useBodyLimits } from "./body-limits.ts";
import { createDashboardHandler, DASHBOARD_PATH } from "./dashboard.ts";
import { createMaskError, RETRY_AFTER_SECONDS } from "./errors.ts";
import { graphiqlOptions, renderPipelineGraphiQL } from "./graphiql.ts";
import { createSubscriptionCap, useRateLimits } from "./guards.ts";
import { jwtPayloadOf, useJwtVerification } from "./jwt.ts";
import { useDocumentLimits } from "./limits.ts";
import { useMetrics } from "./metrics.ts";
import { REQUEST_ID_HEADER, requestIdOf, withRequest } from "./request-context.ts";
import { useOperationTracing } from "./tracing.ts";

/** What the app runs on (composed at the entry, see services.ts); the app closes them on stop. */
export interface AppServices {
  readonly logger: Logger;
  readonly store: Store;
  readonly engine: Engine;
  readonly secrets: SecretVault;
  /** Served on `/metrics`, with the GraphQL figures added. */
  readonly metrics?: { readonly registry: Registry };
  /** Set when tracing is on: GraphQL operations become spans. */
  readonly tracing?: { readonly provider: TracerProvider };
  close(graceMs: number): Promise<void>;
}

export interface App {
  readonly config: Config;
  readonly services: AppServices;
  readonly yoga: YogaServerInstance<Record<string, unknown>, GraphQLContext>;
  /** Listens; resolves with the port actually bound (pass 0 for any free port). */
  start(port?: number, host?: string): Promise<{ port: number; url: string; dashboardUrl: string }>;
  /** One line for the start log: whether auth is on, and why. */
  describeAuth(): Promise<string>;
  /** Graceful stop: no new requests or runs, running nodes get the grace period, then hand-over. */
  stop(graceMs?: number): Promise<void>;
}

export const GRAPHQL_PATH = "/graphql";

type Operation = (args: ExecutionArgs) => ReturnType<typeof graphqlExecute>;
interface EnvelopedRoot {
  readonly execute: Operation;
  readonly subscribe: Operation;
  /** The WebSocket connection's request id. */
  readonly requestId: string;
  readonly headers: IncomingMessage["headers"];
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** Builds the HTTP side; the app owns the services from here on (stop() closes them). */
export function buildApp(config: Config, services: AppServices): App {
  const { logger, store, engine } = services;
  const { security } = config;
  let listenHost = config.host;
  const authenticator = createAuthenticator({
    config,
    admin: store.admin,
    logger,
    host: () => listenHost,
  });
  const subscriptions = createSubscriptionCap(security.maxSubscriptionsPerKey);
  const contextOf = (initial: Record<string, unknown>): GraphQLContext => {
    const request = initial.request as Request | undefined;
    const connectionParams = initial.connectionParams as Record<string, unknown> | undefined;
    const peer = (initial.req ?? (initial.extra as { request?: unknown })?.request) as
      | IncomingMessage
      | undefined;
    const address = peer?.socket?.remoteAddress ?? "local";
    let principal: Promise<Principal> | undefined;
    const auth: GraphQLContext["auth"] = {
      current: undefined,
      principal() {
        principal ??= (
          initial.principal
            ? Promise.resolve(initial.principal as Principal)
            : authenticator.authenticate(
                connectionParams
                  ? connectionParams.authorization
                  : request?.headers.get("authorization"),
                address,
                () => jwtPayloadOf(initial),
              )
        ).then((p) => {
          (auth as { current: Principal }).current = p;
          return p;
        });
        return principal;
      },
      keysChanged: () => authenticator.keysChanged(),
    };
    return {
      store,
      engine,
      secrets: services.secrets,
      loaders: createLoaders(store),
      auth,
      limits: {
        maxPipelines: security.maxPipelines,
        subscription: async (open) => subscriptions.track((await auth.principal()).id, open),
      },
    };
  };
  const yoga = createYoga<Record<string, unknown>, GraphQLContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    healthCheckEndpoint: "/health",
    landingPage: false,
    graphiql: security.graphiql ? graphiqlOptions : false,
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
    context: contextOf,
    plugins: [
      // A request a browser sends without a preflight (a form, a plain GET) must carry a
      // header no simple request can: the CSRF header, or Authorization.
      useCSRFPrevention({ requestHeaders: ["x-graphql-yoga-csrf", "authorization"] }),
      ...(security.jwt ? [useJwtVerification(security.jwt)] : []),
      ...(services.tracing ? [useOperationTracing(services.tracing.provider)] : []),
      ...(services.metrics ? [useMetrics(services.metrics.registry)] : []),
      useBodyLimits({ maxRequestBytes: config.limits.maxRequestBytes }),
      ...useDocumentLimits(security),
      ...(security.introspection
        ? []
        : [
            {
              onValidate: ({ addValidationRule }: { addValidationRule: (r: unknown) => void }) =>
                addValidationRule(NoSchemaIntrospectionCustomRule),
            } as Plugin,
          ]),
      useRateLimits(security),
      useReadinessCheck({
        endpoint: "/ready",
        // Ready when the database accepts a write (a full disk or a read-only database still
        // answers reads) and the bus carries messages. Outages are logged once by the engine
        // and the bus, not at every check.
        check: async () => {
          const unavailable = (reason: string) =>
            Response.json(
              { status: "unavailable", reason },
              { status: 503, headers: { "retry-after": String(RETRY_AFTER_SECONDS) } },
            );
          try {
            await store.probe(engine.instanceId);
          } catch (error) {
            if (!engine.availability.report(error))
              logger.warn({ err: error }, "readiness check failed");
            return unavailable(
              `database: ${error instanceof Error ? error.message : String(error)}`,
            );
          }
          const bus = engine.bus.health();
          if (!bus.available) return unavailable(bus.reason ?? "the bus is unavailable");
          return Response.json({ status: "ready", activeRuns: engine.activeRuns });
        },
      }),
    ],
  });

  let stopping = false;
  const dashboard = createDashboardHandler();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (stopping) {
      res.setHeader("connection", "close");
      return json(res, 503, {
        errors: [
          { message: "server is shutting down", extensions: { code: "SERVICE_UNAVAILABLE" } },
        ],
      });
    }
    const requestId = requestIdOf(req.headers);
    res.setHeader(REQUEST_ID_HEADER, requestId);
    if (dashboard(req, res)) return;
    withRequest(requestId, req.headers, () => void yoga.requestListener(req, res));
  };
  const server: Server = createServer(handle);
  // noServer: with `server`, ws re-emits the HTTP server's errors (a port in use) on the
  // WebSocket server, where graphql-ws prints them as a stack before start() can report them.
  const wss = new WebSocketServer({
    noServer: true,
    path: GRAPHQL_PATH,
    maxPayload: config.limits.maxRequestBytes,
  });
  const principals = new WeakMap<object, Principal>();
  const isJwtCandidate = (value: unknown) =>
    Boolean(security.jwt) && typeof value === "string" && !/^Bearer\s+psk_/i.test(value);
  const jwtCandidate = (ctx: { connectionParams?: Readonly<Record<string, unknown>> }) =>
    isJwtCandidate(ctx.connectionParams?.authorization);
  // One request id per WebSocket connection, for every operation it carries.
  const connectionIds = new WeakMap<object, string>();
  server.on("upgrade", (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      connectionIds.set(ws, requestIdOf(req.headers));
      wss.emit("connection", ws, req);
    }),
  );
  const wsServer = useServer(
    {
      // The enveloped execute/subscribe travel in rootValue (set in onSubscribe below).
      execute: (args) => {
        const root = args.rootValue as EnvelopedRoot;
        return withRequest(root.requestId, root.headers, () => root.execute(args));
      },
      subscribe: (args) => {
        const root = args.rootValue as EnvelopedRoot;
        return withRequest(root.requestId, root.headers, () => root.subscribe(args));
      },
      // Authenticated once per connection, from connectionParams.authorization; a connection
      // that auth refuses is closed with 4401 and the reason.
      onConnect: async (ctx) => {
        const principal = await authenticator.authenticate(
          ctx.connectionParams?.authorization,
          ctx.extra.request.socket.remoteAddress ?? "unknown",
          // A JWT is verified per operation by the plugin; let it through to there.
          () => undefined,
        );
        if (principal.role === null && !isJwtCandidate(ctx.connectionParams?.authorization)) {
          const reason =
            principal.failure ?? "authentication required: connectionParams.authorization";
          ctx.extra.socket.close(4401, `Unauthorized: ${reason}`.slice(0, 120));
          return false;
        }
        principals.set(ctx.extra.socket, principal);
        return true;
      },
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
          ...(jwtCandidate(ctx) ? {} : { principal: principals.get(ctx.extra.socket) }),
        });
        let contextValue: Awaited<ReturnType<typeof contextFactory>>;
        try {
          contextValue = await contextFactory();
        } catch (error) {
          // A JWT that does not verify (jwt.ts): the connection is refused as a bad key is.
          if ((error as GraphQLError)?.extensions?.code !== "UNAUTHENTICATED") throw error;
          ctx.extra.socket.close(4401, `Unauthorized: ${(error as Error).message}`.slice(0, 120));
          return [error as GraphQLError];
        }
        const args = {
          schema: envelopedSchema,
          operationName: params.operationName,
          document: parse(params.query),
          variableValues: params.variables,
          contextValue,
          rootValue: {
            execute,
            subscribe,
            requestId: connectionIds.get(ctx.extra.socket) ?? requestIdOf({}),
            headers: ctx.extra.request.headers,
          },
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
    services,
    yoga,
    async start(port = config.port, host = config.host) {
      listenHost = host;
      // Beyond loopback, a server nobody can authenticate to would be open to anyone.
      if (
        security.auth === "auto" &&
        !isLoopback(host) &&
        !security.jwt &&
        !(await store.admin.hasActiveApiKey(new Date()))
      )
        throw new AuthSetupError(host);
      // Listen first: a port that cannot be bound stops the start before any run is taken.
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve();
        });
      });
      engine.start();
      const bound = (server.address() as AddressInfo).port;
      const shownHost = host.includes(":") ? `[${host}]` : host;
      const origin = `http://${shownHost}:${bound}`;
      return {
        port: bound,
        url: `${origin}${GRAPHQL_PATH}`,
        dashboardUrl: `${origin}${DASHBOARD_PATH}`,
      };
    },
    describeAuth: () => authenticator.describe(),
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
      await services.close(graceMs);
    },
  };
}
