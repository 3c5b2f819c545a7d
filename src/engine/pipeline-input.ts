/**
 * Client input to a pipeline definition: the size limits a document must meet before anything
 * else looks at it, JSON bounds on every node config, and the defaults filled in. What is
 * refused here is never stored; what passes may still fail validation (and is stored as an
 * invalid draft).
 */
import {
  type NodeDefinition,
  normalizeDefinition,
  type PipelineDefinition,
  type PipelineInput,
} from "../domain/definition.ts";
import { AppError, assertJsonWithinLimits, type JsonLimits } from "../domain/errors.ts";
import type { JsonObject } from "../domain/json.ts";

export interface InputLimits extends JsonLimits {
  readonly maxNodes: number;
  readonly maxEdges: number;
}

/**
 * @param countLimits false to let too many nodes or edges through (validatePipeline reports
 * them as findings instead of refusing the request)
 * @throws {AppError} PIPELINE_TOO_LARGE, JSON_TOO_DEEP or JSON_TOO_LARGE
 */
export function definitionFromInput(
  input: PipelineInput,
  limits: InputLimits,
  countLimits = true,
): PipelineDefinition {
  if (countLimits && input.nodes.length > limits.maxNodes) {
    throw new AppError(
      "PIPELINE_TOO_LARGE",
      `${input.nodes.length} nodes; the limit is ${limits.maxNodes}`,
    );
  }
  if (countLimits && (input.edges?.length ?? 0) > limits.maxEdges) {
    throw new AppError(
      "PIPELINE_TOO_LARGE",
      `${input.edges?.length} edges; the limit is ${limits.maxEdges}`,
    );
  }
  const nodes = input.nodes.map((node): NodeDefinition => {
    const config = node.config ?? {};
    assertJsonWithinLimits(config, limits, `config of node "${node.id}"`);
    return {
      id: node.id,
      type: node.type,
      name: node.name ?? null,
      config: config as JsonObject,
      retry: node.retry ?? null,
      timeoutMs: node.timeoutMs ?? null,
      continueOnFail: node.continueOnFail ?? false,
      breaker: node.breaker ?? null,
    };
  });
  return normalizeDefinition({ ...input, nodes });
}
