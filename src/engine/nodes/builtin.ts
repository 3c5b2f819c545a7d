/** TRIGGER, PARALLEL, CONDITION and DELAY: the node types that need nothing outside. */
import type { NodeType } from "../../domain/definition.ts";
import { sleep } from "../errors.ts";
import { type NodeHandler, soleInput } from "./types.ts";

/** Output: the run's trigger data. */
export const triggerHandler: NodeHandler = (context) => context.trigger ?? {};

/**
 * Pass-through: the sole predecessor's output, or the map of all of them when several join.
 * Fan-out is the topology, not the node.
 */
export const parallelHandler: NodeHandler = (context) => {
  const keys = Object.keys(context.inputs);
  return keys.length === 1 ? soleInput(context.inputs) : { ...context.inputs };
};

/**
 * Output `{ result }`; edges follow TRUE or FALSE. Evaluation errors throw; the executor
 * records NODE_FAILED and takes the FALSE branch.
 */
export const conditionHandler: NodeHandler = (context) => {
  if (!context.expression) throw new Error(`node "${context.node.id}" has no compiled expression`);
  const result = context.expression.evaluate({
    inputs: context.inputs,
    input: soleInput(context.inputs),
    trigger: context.trigger ?? null,
  });
  return { result };
};

/**
 * Waits `config.seconds` (cancellable), then passes its input on like PARALLEL. A DELAY taken
 * over from another instance waits only what remains since it first started there.
 */
export const delayHandler: NodeHandler = async (context) => {
  const waited = context.startedBefore ? Date.now() - context.startedBefore.getTime() : 0;
  const remaining = Number(context.node.config.seconds) * 1000 - Math.max(0, waited);
  if (remaining > 0) await sleep(remaining, context.signal);
  return parallelHandler(context);
};

/** Every node type's handler: the built-in ones, and the registries' for ACTION and AGENT. */
export function nodeHandlers(
  actions: { readonly handler: NodeHandler },
  agents: { readonly handler: NodeHandler },
): Record<NodeType, NodeHandler> {
  return {
    TRIGGER: triggerHandler,
    PARALLEL: parallelHandler,
    CONDITION: conditionHandler,
    DELAY: delayHandler,
    ACTION: actions.handler,
    AGENT: agents.handler,
  };
}
