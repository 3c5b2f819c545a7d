/**
 * The context a handler gets for one attempt (see NodeContext), built as one object shape for
 * every node of every run.
 *
 * Its `signal` is made only when the handler reads it (see AbortGroup), which takes an
 * accessor. An object literal with a getter of its own gets a new getter closure each time,
 * and V8 keeps every such object in dictionary mode: about 1 KB each and slow to read, for
 * each attempt of each node. Here the accessor is one shared descriptor defined on each
 * instance: the objects keep one fast shape, and a handler that spreads its context
 * (`{ ...context }`) still copies `signal`.
 */
import type { NodeDefinition } from "../domain/definition.ts";
import type { JsonObject, JsonValue } from "../domain/json.ts";
import type { CompiledExpression } from "./expressions.ts";
import type { NodeContext } from "./nodes/types.ts";

/** What a context's signal comes from: read on first use. */
export interface SignalSource {
  readonly signal: AbortSignal;
}

export type ContextFields = Omit<NodeContext, "signal" | "config">;

class AttemptContext implements NodeContext {
  static readonly #signal: PropertyDescriptor = {
    enumerable: true,
    get(this: AttemptContext) {
      return this.#source.signal;
    },
  };

  readonly runId: string;
  readonly pipelineId: string;
  readonly node: NodeDefinition;
  readonly config: JsonObject;
  readonly inputs: Readonly<Record<string, JsonValue>>;
  readonly upstream?: (nodeId: string) => JsonValue | undefined;
  readonly trigger: JsonValue;
  readonly attempt: number;
  declare readonly signal: AbortSignal;
  readonly logger: NodeContext["logger"];
  readonly expression?: CompiledExpression;
  readonly startedBefore?: Date;
  readonly #source: SignalSource;

  constructor(fields: ContextFields, source: SignalSource) {
    this.runId = fields.runId;
    this.pipelineId = fields.pipelineId;
    this.node = fields.node;
    this.config = fields.node.config;
    this.inputs = fields.inputs;
    this.upstream = fields.upstream;
    this.trigger = fields.trigger;
    this.attempt = fields.attempt;
    this.#source = source;
    Object.defineProperty(this, "signal", AttemptContext.#signal);
    this.logger = fields.logger;
    this.expression = fields.expression;
    this.startedBefore = fields.startedBefore;
  }
}

/** A handler's context for one attempt; `source.signal` is read only if the handler asks. */
export function nodeContext(fields: ContextFields, source: SignalSource): NodeContext {
  return new AttemptContext(fields, source);
}
