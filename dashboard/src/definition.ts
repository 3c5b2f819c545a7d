/**
 * A pipeline definition pasted or uploaded as JSON or YAML, read into the object the API's
 * PipelineInput takes; the validation errors laid out by the node they name.
 */
import { parse as parseYaml } from "yaml";

export interface ValidationError {
  readonly code: string;
  readonly message: string;
  readonly nodeId: string | null;
}

/** The definition, or a message saying why the text is not one. */
export function readDefinition(
  text: string,
): { definition: Record<string, unknown> } | { error: string } {
  const trimmed = text.trim();
  if (!trimmed) return { error: "paste or upload a definition first" };
  let value: unknown;
  try {
    value = trimmed.startsWith("{") ? JSON.parse(trimmed) : parseYaml(trimmed);
  } catch (error) {
    return { error: `not JSON or YAML: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return { error: "the definition must be an object with name, nodes and edges" };
  // The variables of a createPipeline call (the README's example is written so): its input.
  const { input } = value as { input?: unknown };
  if (Object.keys(value).length === 1 && typeof input === "object" && input !== null)
    return { definition: input as Record<string, unknown> };
  return { definition: value as Record<string, unknown> };
}

/** The node ids of a definition, in its order (for showing errors beside them). */
export function nodeIdsOf(definition: Record<string, unknown>): string[] {
  const nodes = Array.isArray(definition.nodes) ? definition.nodes : [];
  return nodes
    .map((node) => (node as { id?: unknown })?.id)
    .filter((id): id is string => typeof id === "string");
}

/** Errors grouped by node id ("" for those about the whole pipeline). */
export function errorsByNode(errors: readonly ValidationError[]): Map<string, ValidationError[]> {
  const grouped = new Map<string, ValidationError[]>();
  for (const error of errors) {
    const key = error.nodeId ?? "";
    grouped.set(key, [...(grouped.get(key) ?? []), error]);
  }
  return grouped;
}
