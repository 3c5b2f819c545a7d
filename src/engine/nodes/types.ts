/** What a node handler receives and returns. */
import type { Logger } from "pino";
import type { JsonValue, NodeDefinition } from "../definition.ts";
import type { CompiledExpression } from "../expressions.ts";
import { renderString, renderValue, type TemplateView } from "../templates.ts";

export interface NodeContext {
  readonly runId: string;
  readonly pipelineId: string;
  readonly node: NodeDefinition;
  /** Output of each live predecessor, by node id. */
  readonly inputs: Readonly<Record<string, JsonValue>>;
  readonly trigger: JsonValue;
  /** 1 for the first call. */
  readonly attempt: number;
  /** Fires on cancel, run timeout and the attempt's own timeout: stop at once. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** The compiled expression of a CONDITION node. */
  readonly expression?: CompiledExpression;
}

/** A node type's behaviour. Throw a RetryableError or PermanentError to fail. */
export type NodeHandler = (context: NodeContext) => Promise<JsonValue> | JsonValue;

/** The value of `input`: the sole predecessor's output, or null. */
export function soleInput(inputs: Readonly<Record<string, JsonValue>>): JsonValue {
  const keys = Object.keys(inputs);
  return keys.length === 1 ? inputs[keys[0]!]! : null;
}

export function templateView(context: NodeContext): TemplateView {
  return {
    inputs: context.inputs,
    input: soleInput(context.inputs),
    trigger: context.trigger,
    run: { id: context.runId },
    node: { id: context.node.id },
  };
}

/** Renders templates in a string or a JSON value with the node's inputs. */
export function render<T extends JsonValue>(value: T, context: NodeContext): T {
  const view = templateView(context);
  return (typeof value === "string" ? renderString(value, view) : renderValue(value, view)) as T;
}
