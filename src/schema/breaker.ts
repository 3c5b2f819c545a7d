/** Circuit breakers of a pipeline's ACTION and AGENT nodes. */
import { BREAKER_NODE_TYPES, breakerSettingsOf } from "../domain/definition.ts";
import type { BreakerRecord } from "../domain/records.ts";
import { CIRCUIT_STATES } from "../domain/status.ts";
import { builder, describedValues, requires } from "./builder.ts";
import { PipelineRef } from "./pipeline.ts";

const CircuitStateEnum = builder.enumType("CircuitState", {
  description: "A circuit breaker's state.",
  values: describedValues(CIRCUIT_STATES, {
    CLOSED: "Calls go through; consecutive failed executions are counted.",
    OPEN: "failureThreshold executions failed in a row: the node fails at once, uncalled.",
    HALF_OPEN: "recoveryTimeoutMs has passed: one trial call decides (success closes it).",
  }),
});

interface BreakerView extends BreakerRecord {
  readonly recoveryTimeoutMs: number;
}

const NodeBreakerRef = builder.objectRef<BreakerView>("NodeBreaker").implement({
  description: "A node's circuit breaker, shared by all runs and instances.",
  fields: (t) => ({
    nodeId: t.exposeString("nodeId", { description: "The ACTION or AGENT node it guards." }),
    state: t.field({ type: CircuitStateEnum, description: "Its state.", resolve: (b) => b.state }),
    failureCount: t.exposeInt("failureCount", {
      description: "Failed executions counted since the breaker last closed.",
    }),
    openedAt: t.field({
      type: "DateTime",
      nullable: true,
      description: "When it last opened; null while CLOSED.",
      resolve: (b) => (b.state === "CLOSED" ? null : b.openedAt),
    }),
    halfOpenAt: t.field({
      type: "DateTime",
      nullable: true,
      description: "When an OPEN breaker lets one trial call through.",
      resolve: (b) =>
        b.state === "OPEN" && b.openedAt
          ? new Date(b.openedAt.getTime() + b.recoveryTimeoutMs)
          : null,
    }),
  }),
});

builder.objectField(PipelineRef, "breakers", (t) =>
  t.field({
    type: [NodeBreakerRef],
    description: "One per ACTION and AGENT node, in definition order.",
    resolve: async (pipeline, _args, ctx) => {
      const stored = new Map(
        (await ctx.loaders.breakers.load(pipeline.id)).map((b) => [b.nodeId, b]),
      );
      return pipeline.definition.nodes
        .filter((node) => BREAKER_NODE_TYPES.has(node.type))
        .map((node) => ({
          ...(stored.get(node.id) ?? {
            pipelineId: pipeline.id,
            nodeId: node.id,
            state: "CLOSED" as const,
            failureCount: 0,
            openedAt: null,
            trialStartedAt: null,
            updatedAt: pipeline.updatedAt,
          }),
          recoveryTimeoutMs: breakerSettingsOf(node, pipeline.definition).recoveryTimeoutMs,
        }));
    },
  }),
);

builder.mutationFields((t) => ({
  resetBreaker: t.field({
    authScopes: requires("operator"),
    type: NodeBreakerRef,
    description: "Closes a node's breaker and clears its failure count.",
    args: {
      pipelineId: t.arg.id({ required: true, description: "The pipeline of the node." }),
      nodeId: t.arg.string({ required: true, description: "The ACTION or AGENT node." }),
    },
    resolve: async (_root, { pipelineId, nodeId }, ctx) => {
      const record = await ctx.engine.resetBreaker(pipelineId, nodeId);
      const [pipeline] = await ctx.store.getPipelines([pipelineId]);
      const node = pipeline?.definition.nodes.find((n) => n.id === nodeId);
      const recoveryTimeoutMs =
        node && pipeline ? breakerSettingsOf(node, pipeline.definition).recoveryTimeoutMs : 0;
      return { ...record, recoveryTimeoutMs };
    },
  }),
}));
