/**
 * OpenTelemetry tracing, off unless configured (config.ts `tracing`). When on:
 *
 * - every GraphQL operation is a span (server/tracing.ts), a child of the caller's span when
 *   the request carries a W3C `traceparent`;
 * - every run executed here is a span of its own trace, linked to the operation that started
 *   it: a run outlives that request and may execute on another instance, so it is not its
 *   child (a run taken from the queue, or resumed after a hand-over, has no such link);
 * - every node attempt is a child span of its run, and the `http` action and agents send the
 *   attempt's context as `traceparent` to the services they call.
 */
import {
  type Attributes,
  type Context,
  context,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  type Span,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  NodeTracerProvider,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import { LRUCache } from "lru-cache";
import type { TracingConfig } from "../config.ts";
import type { RunEventData } from "../domain/events.ts";
import type { RunEventRecord, RunRecord } from "../domain/records.ts";
import { TERMINAL_EVENT_TYPES } from "../domain/status.ts";
import type { EngineHooks } from "../engine/hooks.ts";

/** Name of the tracer of this server's spans. */
export const TRACER_NAME = "pipeline-server";

export interface Tracing {
  readonly provider: TracerProvider;
  /** The engine observer making the run and node-attempt spans. */
  readonly hooks: EngineHooks;
  /** Sends what is buffered and stops; the global registration is undone. */
  shutdown(): Promise<void>;
}

export interface StartTracingOptions {
  /** Instead of the exporter the configuration names (tests pass an in-memory one). */
  readonly spanProcessor?: SpanProcessor;
  readonly serviceVersion?: string;
}

/**
 * Creates the tracer provider and registers it globally, with the AsyncLocalStorage context
 * manager (so that a resolver's work sees its operation's span) and the W3C propagator.
 */
export function startTracing(config: TracingConfig, options: StartTracingOptions = {}): Tracing {
  const processor =
    options.spanProcessor ??
    new BatchSpanProcessor(
      config.exporter === "console"
        ? new ConsoleSpanExporter()
        : new OTLPTraceExporter({ url: config.endpoint }),
    );
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: config.serviceName,
      ...(options.serviceVersion ? { [ATTR_SERVICE_VERSION]: options.serviceVersion } : {}),
    }),
    spanProcessors: [processor],
  });
  provider.register();
  return {
    provider,
    hooks: createTracingHooks(provider.getTracer(TRACER_NAME)),
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}

interface TracedRun {
  readonly span: Span;
  readonly context: Context;
  /** The span of each node's attempt under way, by node id. */
  readonly attempts: Map<string, { readonly attempt: number; readonly span: Span }>;
}

const propagator = new W3CTraceContextPropagator();

/** The run and node-attempt spans, made from the engine's events. */
export function createTracingHooks(tracer: Tracer): EngineHooks {
  // Bounded: a re-run created here but queued for another instance is never ended here.
  const runs = new LRUCache<string, TracedRun>({
    max: 100_000,
    dispose: (traced, _runId, reason) => {
      if (reason === "evict") traced.span.end();
    },
  });

  const runOf = (runId: string, run?: RunRecord): TracedRun => {
    let traced = runs.get(runId);
    if (!traced) {
      // The operation that started the run, when it is being handled now.
      const starter = trace.getSpan(context.active())?.spanContext();
      const span = tracer.startSpan("run", {
        root: true,
        attributes: { "pipeline.run.id": runId },
        links: starter ? [{ context: starter }] : [],
      });
      traced = { span, context: trace.setSpan(ROOT_CONTEXT, span), attempts: new Map() };
      runs.set(runId, traced);
    }
    // A re-run's first events come before its record reaches the observer.
    if (run) {
      traced.span.updateName(`run ${run.definition.name}`);
      traced.span.setAttributes({
        "pipeline.id": run.pipelineId,
        "pipeline.name": run.definition.name,
        "pipeline.version": run.pipelineVersion,
      } satisfies Attributes);
    }
    return traced;
  };

  const endAttempt = (traced: TracedRun, nodeId: string, at: Date, error?: string) => {
    const current = traced.attempts.get(nodeId);
    if (!current) return false;
    traced.attempts.delete(nodeId);
    if (error !== undefined) current.span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    current.span.end(at);
    return true;
  };

  const endRun = (runId: string, at: Date, status: string, error?: string) => {
    const traced = runs.get(runId);
    if (!traced) return;
    runs.delete(runId);
    for (const nodeId of [...traced.attempts.keys()])
      endAttempt(traced, nodeId, at, `run ${status}`);
    traced.span.setAttribute("pipeline.run.status", status);
    if (status === "COMPLETED") traced.span.setStatus({ code: SpanStatusCode.OK });
    else if (status !== "CANCELLED" && status !== "ABANDONED")
      traced.span.setStatus({ code: SpanStatusCode.ERROR, message: error ?? status });
    traced.span.end(at);
  };

  const onEvent = (event: RunEventRecord) => {
    const nodeId = event.nodeId ?? "";
    if (TERMINAL_EVENT_TYPES.has(event.type)) {
      const data = (event.data ?? {}) as { error?: string; reason?: string };
      endRun(event.runId, event.at, event.type.slice("RUN_".length), data.error ?? data.reason);
      return;
    }
    const traced = runOf(event.runId);
    switch (event.type) {
      case "NODE_STARTED": {
        endAttempt(traced, nodeId, event.at);
        const { type } = event.data as RunEventData["NODE_STARTED"];
        const attempt = event.attempt ?? 1;
        const span = tracer.startSpan(
          `node ${nodeId}`,
          {
            startTime: event.at,
            attributes: {
              "pipeline.run.id": event.runId,
              "pipeline.node.id": nodeId,
              "pipeline.node.type": type,
              "pipeline.node.attempt": attempt,
            },
          },
          traced.context,
        );
        traced.attempts.set(nodeId, { attempt, span });
        return;
      }
      case "NODE_RETRYING": {
        const { delayMs, error } = event.data as RunEventData["NODE_RETRYING"];
        traced.attempts.get(nodeId)?.span.setAttribute("pipeline.node.retry_delay_ms", delayMs);
        endAttempt(traced, nodeId, event.at, error);
        return;
      }
      case "NODE_COMPLETED":
        endAttempt(traced, nodeId, event.at);
        return;
      case "NODE_FAILED": {
        const { error, code } = event.data as RunEventData["NODE_FAILED"];
        traced.attempts.get(nodeId)?.span.setAttribute("pipeline.node.error_code", code);
        // A node refused without an attempt (its breaker open) shows on the run's span.
        if (!endAttempt(traced, nodeId, event.at, error))
          traced.span.addEvent(
            "node failed",
            { "pipeline.node.id": nodeId, code, error },
            event.at,
          );
        return;
      }
      case "NODE_SKIPPED":
        traced.span.addEvent("node skipped", { "pipeline.node.id": nodeId }, event.at);
        return;
    }
  };

  return {
    onRunExecuting(run, resumed) {
      runOf(run.id, run).span.setAttribute("pipeline.run.resumed", resumed);
    },
    onEvent,
    onRunDone(runId, outcome) {
      // After the terminal event this finds nothing; a hand-over ends the span here.
      endRun(runId, new Date(), outcome, "handed over to another instance");
    },
    outgoingHeaders(runId, nodeId, attempt) {
      const current = runs.get(runId)?.attempts.get(nodeId);
      if (!current || current.attempt !== attempt) return undefined;
      const carrier: Record<string, string> = {};
      propagator.inject(trace.setSpan(ROOT_CONTEXT, current.span), carrier, defaultTextMapSetter);
      return carrier;
    },
  };
}
