/**
 * `GET /metrics`: the GraphQL figures of @graphql-yoga/plugin-prometheus (operations, their
 * phases and errors, HTTP durations) beside the engine's (observability/metrics.ts), from one
 * registry in the Prometheus text format.
 */
import { usePrometheus } from "@graphql-yoga/plugin-prometheus";
import type { Plugin } from "graphql-yoga";
import type { Registry } from "prom-client";

export const METRICS_PATH = "/metrics";

/** The yoga plugin that records the GraphQL figures in `registry` and serves it. */
export function useMetrics(registry: Registry): Plugin {
  return usePrometheus({
    registry,
    endpoint: METRICS_PATH,
    // Introspection is GraphiQL loading its schema: not traffic worth a figure.
    skipIntrospection: true,
    metrics: {
      graphql_envelop_request: true,
      graphql_envelop_request_duration: true,
      graphql_envelop_phase_parse: true,
      graphql_envelop_phase_validate: true,
      graphql_envelop_phase_execute: true,
      graphql_envelop_phase_subscribe: true,
      graphql_envelop_error_result: true,
      graphql_yoga_http_duration: true,
    },
    // The URL label would make one series per query string.
    labels: { url: false },
  });
}
