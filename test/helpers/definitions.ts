/**
 * Builders of pipeline definitions for the DAG tests: a node, an edge or a whole pipeline in
 * one call, and a validation error as validatePipeline reports it.
 */
import { expect } from "vitest";
import {
  type EdgeDefinition,
  type NodeDefinition,
  type NodeType,
  normalizeDefinition,
  type PipelineDefinition,
  type PipelineInput,
} from "../../src/domain/definition.ts";
import type { JsonObject } from "../../src/domain/json.ts";
import type { ValidationCode, ValidationError } from "../../src/domain/validation.ts";
import { compilePipeline, type ValidationOptions, validatePipeline } from "../../src/engine/dag.ts";
import { ActionRegistry } from "../../src/engine/nodes/actions.ts";

/** A node of any type, even one that does not exist (`type` is not checked). */
export function node(id: string, type: NodeType | string, config: JsonObject = {}): NodeDefinition {
  return { id, type: type as NodeType, config };
}
/** A TRIGGER node, "t" unless named. */
export const trigger = (id = "t") => node(id, "TRIGGER");
/** A PARALLEL node: it passes its inputs on and needs no config. */
export const pass = (id: string) => node(id, "PARALLEL");
/** A valid ACTION node (the built-in "log" action). */
export const log = (id: string) => node(id, "ACTION", { action: "log", message: "hi" });
/** A CONDITION node; its expression is "true" unless given. */
export const condition = (id: string, expression = "true") => node(id, "CONDITION", { expression });
/** A valid AGENT node. */
export const agent = (id: string) => node(id, "AGENT", { agentId: "writer", task: "write" });
/** A DELAY node; `seconds` is not checked, so invalid values can be tried. */
export const delay = (id: string, seconds: unknown) =>
  node(id, "DELAY", { seconds: seconds as JsonObject[string] });

/** An edge; `branch` is left out when undefined and is not checked otherwise. */
export function edge(source: string, target: string, branch?: string | null): EdgeDefinition {
  return branch === undefined
    ? { source, target }
    : { source, target, branch: branch as EdgeDefinition["branch"] };
}
/** Edges along a path: chain("a", "b", "c") is a → b, b → c. */
export function chain(...ids: string[]): EdgeDefinition[] {
  return ids.slice(1).map((id, i) => edge(ids[i]!, id));
}

/** A normalised pipeline named "p" with the default settings unless `settings` says otherwise. */
export function pipeline(
  nodes: readonly NodeDefinition[],
  edges: readonly EdgeDefinition[] = [],
  settings: Partial<Omit<PipelineInput, "nodes" | "edges">> = {},
): PipelineDefinition {
  return normalizeDefinition({ name: "p", ...settings, nodes, edges });
}

/** The validation errors of a definition. */
export function errorsOf(definition: PipelineDefinition, options?: ValidationOptions) {
  return validatePipeline(definition, options);
}

/** The compiled form of a definition that must be valid (the test fails otherwise). */
export function compiled(definition: PipelineDefinition, options?: ValidationOptions) {
  const outcome = compilePipeline(definition, options);
  expect(outcome.errors).toEqual([]);
  if (!outcome.valid) throw new Error("expected a valid pipeline");
  return outcome.pipeline;
}

/** A validation error; `nodeId` is left out when not given, as validatePipeline does. */
export const err = (code: ValidationCode, message: string, nodeId?: string): ValidationError =>
  nodeId === undefined ? { code, message } : { code, message, nodeId };

/** An action registry that knows every built-in action and allows no HTTP host. */
export const registry = () => new ActionRegistry({ httpAllowlist: [] });

/** An invalid definition and exactly the errors validation must report for it. */
export interface CodeCase {
  readonly title: string;
  readonly definition: PipelineDefinition;
  readonly options?: ValidationOptions;
  readonly errors: readonly ValidationError[];
}
