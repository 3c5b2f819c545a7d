/** Validation rules of one node: its type's config, its retry, timeout and breaker settings. */

import type { NodeDefinition, PipelineDefinition } from "../domain/definition.ts";
import type { JsonObject } from "../domain/json.ts";
import type { ActionCatalog, ValidationCode } from "../domain/validation.ts";
import { type CompiledExpression, compileExpression } from "./expressions.ts";

const MAX_DELAY_SECONDS = 7 * 24 * 3600;
const MAX_TIMEOUT_MS = 24 * 3600 * 1000;
export const MAX_ATTEMPTS = 100;

type Report = (code: ValidationCode, message: string) => void;

export function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function isWhole(value: unknown, min: number, max: number): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= min && value <= max;
}

export function checkNodeConfig(
  node: NodeDefinition,
  definition: PipelineDefinition,
  actions: ActionCatalog,
  conditions: Map<string, CompiledExpression>,
  report: Report,
): void {
  const config = node.config;
  const at = `node "${node.id}"`;
  switch (node.type) {
    case "AGENT":
      if (typeof config.agentId !== "string" || config.agentId.trim() === "") {
        report("MISSING_AGENT_ID", `${at}: AGENT needs config.agentId (a non-empty string)`);
      }
      if (typeof config.task !== "string" || config.task.trim() === "") {
        report("MISSING_TASK", `${at}: AGENT needs config.task (a non-empty string)`);
      }
      break;
    case "CONDITION": {
      if (typeof config.expression !== "string") {
        report("MISSING_EXPRESSION", `${at}: CONDITION needs config.expression (a CEL string)`);
        break;
      }
      const compiled = compileExpression(config.expression);
      if (compiled.ok) conditions.set(node.id, compiled.expression);
      else report("INVALID_EXPRESSION", `${at}: expression does not compile: ${compiled.message}`);
      break;
    }
    case "ACTION": {
      if (typeof config.action !== "string" || config.action === "") {
        report("MISSING_ACTION", `${at}: ACTION needs config.action (e.g. "http" or "log")`);
      } else if (!actions.has(config.action)) {
        report("UNKNOWN_ACTION", `${at}: unknown action "${config.action}"`);
      } else {
        for (const problem of actions.check(config.action, config)) {
          report("INVALID_ACTION_CONFIG", `${at}: ${problem}`);
        }
      }
      break;
    }
    case "DELAY": {
      const seconds = config.seconds;
      if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) {
        report("INVALID_DELAY", `${at}: DELAY needs config.seconds, a number ≥ 0`);
      } else if (seconds > MAX_DELAY_SECONDS) {
        report(
          "INVALID_DELAY",
          `${at}: delay of ${seconds} s is longer than ${MAX_DELAY_SECONDS} s`,
        );
      } else if (seconds > definition.timeoutSeconds) {
        report(
          "INVALID_DELAY",
          `${at}: delay of ${seconds} s is longer than the pipeline's timeout of ${definition.timeoutSeconds} s`,
        );
      }
      break;
    }
    case "TRIGGER":
    case "PARALLEL":
      break;
  }
}

export function checkNodePolicies(node: NodeDefinition, report: Report): void {
  const at = `node "${node.id}"`;
  const retry = node.retry;
  if (retry) {
    if (retry.maxAttempts != null && !isWhole(retry.maxAttempts, 1, MAX_ATTEMPTS)) {
      report(
        "INVALID_RETRY",
        `${at}: retry.maxAttempts must be 1 to ${MAX_ATTEMPTS}, got ${retry.maxAttempts}`,
      );
    }
    for (const field of ["initialDelayMs", "maxDelayMs"] as const) {
      const value = retry[field];
      if (value != null && !isWhole(value, 0, MAX_TIMEOUT_MS)) {
        report(
          "INVALID_RETRY",
          `${at}: retry.${field} must be 0 to ${MAX_TIMEOUT_MS}, got ${value}`,
        );
      }
    }
    if (
      retry.initialDelayMs != null &&
      retry.maxDelayMs != null &&
      retry.initialDelayMs > retry.maxDelayMs
    ) {
      report(
        "INVALID_RETRY",
        `${at}: retry.initialDelayMs (${retry.initialDelayMs}) is above retry.maxDelayMs (${retry.maxDelayMs})`,
      );
    }
  }
  if (node.timeoutMs != null && !isWhole(node.timeoutMs, 1, MAX_TIMEOUT_MS)) {
    report(
      "INVALID_TIMEOUT",
      `${at}: timeoutMs must be 1 to ${MAX_TIMEOUT_MS}, got ${node.timeoutMs}`,
    );
  }
  if (node.breaker) checkBreaker(node.breaker, `${at}: breaker`, report);
}

export function checkBreaker(
  breaker: { failureThreshold?: number | null; recoveryTimeoutMs?: number | null },
  at: string,
  report: Report,
): void {
  if (breaker.failureThreshold != null && !isWhole(breaker.failureThreshold, 1, 10_000)) {
    report(
      "INVALID_BREAKER",
      `${at}.failureThreshold must be 1 to 10000, got ${breaker.failureThreshold}`,
    );
  }
  if (breaker.recoveryTimeoutMs != null && !isWhole(breaker.recoveryTimeoutMs, 0, MAX_TIMEOUT_MS)) {
    report(
      "INVALID_BREAKER",
      `${at}.recoveryTimeoutMs must be 0 to ${MAX_TIMEOUT_MS}, got ${breaker.recoveryTimeoutMs}`,
    );
  }
}
