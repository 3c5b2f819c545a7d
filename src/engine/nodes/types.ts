/** What a node handler receives and returns. */
import type { Logger } from "pino";
import type { NodeDefinition } from "../../domain/definition.ts";
import type { JsonObject, JsonValue } from "../../domain/json.ts";
import type { CompiledExpression } from "../expressions.ts";
import { renderString, renderValue, type TemplateView } from "../templates.ts";

export interface NodeContext {
  readonly runId: string;
  readonly pipelineId: string;
  readonly node: NodeDefinition;
  /** The node's `config` (templates not yet rendered: call `render`). */
  readonly config: JsonObject;
  /** Output of each live predecessor, by node id. */
  readonly inputs: Readonly<Record<string, JsonValue>>;
  /**
   * Output of any completed node upstream of this one (not only direct predecessors), for
   * templates: `{{inputs.fetch.body}}` works two hops after `fetch`.
   */
  readonly upstream?: (nodeId: string) => JsonValue | undefined;
  readonly trigger: JsonValue;
  /** 1 for the first call. */
  readonly attempt: number;
  /** Fires on cancel, run timeout and the attempt's own timeout: stop at once. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** The compiled expression of a CONDITION node. */
  readonly expression?: CompiledExpression;
  /**
   * Set when the node was already under way on an instance that stopped (the run was taken
   * over): when it first started. A DELAY then waits only what remains of its time.
   */
  readonly startedBefore?: Date;
}

/** A node type's behaviour. Throw a RetryableError or PermanentError to fail. */
export type NodeHandler = (context: NodeContext) => Promise<JsonValue> | JsonValue;

/** The value of `input`: the sole predecessor's output, or null. */
export function soleInput(inputs: Readonly<Record<string, JsonValue>>): JsonValue {
  const keys = Object.keys(inputs);
  return keys.length === 1 ? inputs[keys[0]!]! : null;
}

/** `inputs` for templates: direct inputs first, then completed upstream nodes. */
function templateInputs(context: NodeContext): Readonly<Record<string, unknown>> {
  const { inputs, upstream } = context;
  if (!upstream) return inputs;
  return new Proxy(inputs, {
    get: (target, key) =>
      typeof key !== "string" ? undefined : key in target ? target[key] : upstream(key),
    has: (target, key) => typeof key === "string" && (key in target || upstream(key) !== undefined),
  });
}

export function templateView(context: NodeContext): TemplateView {
  return {
    inputs: templateInputs(context),
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
