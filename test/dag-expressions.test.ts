/** compileExpression: the CEL conditions of CONDITION nodes, compiled and evaluated. */
import { describe, expect, it } from "vitest";
import { compileExpression, MAX_EXPRESSION_LENGTH } from "../src/engine/expressions.ts";

describe("compileExpression", () => {
  const context = (
    input: unknown,
    inputs: Record<string, unknown> = {},
    trigger: unknown = null,
  ) => ({
    inputs,
    input,
    trigger,
  });

  function expression(source: string) {
    const result = compileExpression(source);
    if (!result.ok) throw new Error(`expected ${source} to compile: ${result.message}`);
    expect(result.expression.source).toBe(source);
    return result.expression;
  }

  it('evaluates "true" and "false"', () => {
    expect(expression("true").evaluate(context(null))).toBe(true);
    expect(expression("false").evaluate(context({ result: true }))).toBe(false);
  });

  it('evaluates "input.result" by truthiness', () => {
    const e = expression("input.result");
    const cases: [unknown, boolean][] = [
      [true, true],
      [false, false],
      ["yes", true],
      ["", false],
      [0, false],
      [1, true],
      [2.5, true],
      [null, false],
      [[], false],
      [[0], true],
    ];
    for (const [result, expected] of cases) {
      expect(e.evaluate(context({ result })), JSON.stringify(result)).toBe(expected);
    }
  });

  it("compares a JS number with an int literal", () => {
    const e = expression("inputs.fetch.status == 200");
    expect(e.evaluate(context(null, { fetch: { status: 200 } }))).toBe(true);
    expect(e.evaluate(context(null, { fetch: { status: 404 } }))).toBe(false);
  });

  it("sees trigger data and the inputs map", () => {
    expect(expression("trigger.priority > 2").evaluate(context(null, {}, { priority: 3 }))).toBe(
      true,
    );
    expect(expression("trigger.priority > 2").evaluate(context(null, {}, { priority: 2 }))).toBe(
      false,
    );
    expect(expression("size(inputs) == 2").evaluate(context(null, { a: 1, b: 2 }))).toBe(true);
  });

  it("throws at evaluate time on a missing key", () => {
    const e = expression("inputs.fetch.status == 200");
    expect(() => e.evaluate(context(null, {}))).toThrow("No such key: fetch");
    expect(() => expression("input.result").evaluate(context({}))).toThrow("No such key: result");
  });

  it("rejects syntax errors with a one-line message", () => {
    expect(compileExpression("true &&")).toEqual({ ok: false, message: "Unexpected token: EOF" });
    expect(compileExpression("inputs.")).toEqual({
      ok: false,
      message: "Expected IDENTIFIER, got EOF",
    });
  });

  it("rejects unknown variables and non-bool types", () => {
    expect(compileExpression("result == 1")).toEqual({
      ok: false,
      message: "Unknown variable: result",
    });
    expect(compileExpression("1 + 2")).toEqual({
      ok: false,
      message: "expression must return a bool, it returns int",
    });
    expect(compileExpression("'abc'")).toEqual({
      ok: false,
      message: "expression must return a bool, it returns string",
    });
  });

  it("rejects empty expressions", () => {
    expect(compileExpression("")).toEqual({ ok: false, message: "expression is empty" });
    expect(compileExpression(" \n ")).toEqual({ ok: false, message: "expression is empty" });
  });

  it("accepts MAX_EXPRESSION_LENGTH characters and rejects one more", () => {
    expect(MAX_EXPRESSION_LENGTH).toBe(4096);
    const longest = `true${" ".repeat(MAX_EXPRESSION_LENGTH - 4)}`;
    expect(expression(longest).evaluate(context(null))).toBe(true);
    expect(compileExpression(`${longest} `)).toEqual({
      ok: false,
      message: "expression is longer than 4096 characters",
    });
  });
});
