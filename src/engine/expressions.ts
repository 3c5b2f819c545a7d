/**
 * CONDITION expressions in CEL (Common Expression Language): no `eval`, no loops, bounded size.
 * Variables: `inputs` (map of predecessor id to its output), `input` (the output of the sole
 * predecessor, or null) and `trigger` (the run's trigger data).
 */
import { Environment } from "@marcbachmann/cel-js";

/** Longest expression accepted, in characters. */
export const MAX_EXPRESSION_LENGTH = 4096;

const environment = new Environment({
  unlistedVariablesAreDyn: false,
  homogeneousAggregateLiterals: false,
  enableOptionalTypes: true,
  limits: { maxAstNodes: 2000, maxDepth: 64, maxListElements: 1000, maxMapEntries: 1000 },
})
  .registerVariable("inputs", "map")
  .registerVariable("input", "dyn")
  .registerVariable("trigger", "dyn");

export interface ExpressionContext {
  readonly inputs: Readonly<Record<string, unknown>>;
  readonly input: unknown;
  readonly trigger: unknown;
}

export interface CompiledExpression {
  readonly source: string;
  /**
   * Evaluates to a boolean. A non-boolean result counts by its truthiness, so the form
   * `input.result` works on any output; a missing key or a type error throws.
   */
  evaluate(context: ExpressionContext): boolean;
}

export type CompileResult =
  | { readonly ok: true; readonly expression: CompiledExpression }
  | { readonly ok: false; readonly message: string };

function firstLine(message: string): string {
  return message.split("\n")[0]?.trim() ?? message;
}

/** Truthiness with empty collections false: "", 0, null, [], {} and an empty map. */
function truthy(value: unknown): boolean {
  if (typeof value === "bigint") return value !== 0n;
  if (value instanceof Map) return value.size > 0;
  if (Array.isArray(value)) return value.length > 0;
  if (value !== null && typeof value === "object") return Object.keys(value).length > 0;
  return Boolean(value);
}

/** Parses and type-checks an expression; never throws. */
export function compileExpression(source: string): CompileResult {
  if (source.trim() === "") return { ok: false, message: "expression is empty" };
  if (source.length > MAX_EXPRESSION_LENGTH) {
    return { ok: false, message: `expression is longer than ${MAX_EXPRESSION_LENGTH} characters` };
  }
  let program: ReturnType<typeof environment.parse>;
  try {
    program = environment.parse(source);
  } catch (error) {
    return { ok: false, message: firstLine((error as Error).message) };
  }
  const checked = program.check();
  if (!checked.valid)
    return {
      ok: false,
      message: firstLine(checked.error?.message ?? "expression does not type-check"),
    };
  const type = String(checked.type);
  if (!["bool", "dyn"].includes(type)) {
    return { ok: false, message: `expression must return a bool, it returns ${type}` };
  }
  return {
    ok: true,
    expression: {
      source,
      evaluate(context) {
        let result: unknown;
        try {
          result = program({ ...context });
        } catch (error) {
          // The library's message carries a source excerpt on further lines; keep the sentence.
          throw new Error(firstLine((error as Error).message));
        }
        if (result instanceof Promise)
          throw new Error("asynchronous expressions are not supported");
        return typeof result === "boolean" ? result : truthy(result);
      },
    },
  };
}
