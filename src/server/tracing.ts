/** A span per GraphQL operation (@envelop/opentelemetry), when tracing is on. */
import { useOpenTelemetry } from "@envelop/opentelemetry";
import { SpanKind, type TracerProvider } from "@opentelemetry/api";
import type { Plugin } from "graphql-yoga";

/**
 * The yoga plugin: one SERVER span per operation, named `<type>.<name>`, whose context is the
 * current one while the operation resolves (so that a run started by it is linked to it).
 * Variables and results are not recorded (they may hold secrets); the document is, unless it
 * has inline arguments.
 */
export function useOperationTracing(provider: TracerProvider): Plugin {
  return useOpenTelemetry(
    { resolvers: false, variables: false, result: false },
    provider,
    SpanKind.SERVER,
    {},
    "pipeline-server",
  ) as Plugin;
}
