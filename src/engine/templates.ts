/**
 * `{{inputs.fetch.body}}` templates in action settings and agent tasks, with Mustache
 * (logic-less). Values are not HTML-escaped; objects render as JSON. A string that is one
 * template and nothing else keeps the value's type, so `"body": "{{inputs.fetch.body}}"`
 * forwards an object as an object.
 */
import Mustache from "mustache";
import { type JsonValue, jsonBytes } from "../domain/json.ts";
import { PermanentError } from "./errors.ts";

export interface TemplateView {
  readonly inputs: Readonly<Record<string, unknown>>;
  readonly input: unknown;
  readonly trigger: unknown;
  readonly run: { readonly id: string };
  readonly node: { readonly id: string };
}

/**
 * Longest JSON one template value may render to. An output that holds other outputs is shared
 * in memory, but its JSON repeats what it holds: a join of joins can stand for gigabytes.
 */
export const MAX_RENDERED_BYTES = 10 * 1024 * 1024;

/** JSON of a value that is rendered into text, refused past MAX_RENDERED_BYTES. */
export function renderJson(value: JsonValue, what = "a template value"): string {
  const bytes = jsonBytes(value);
  if (bytes > MAX_RENDERED_BYTES)
    throw new PermanentError(
      `${what} would render to ${bytes} bytes of JSON; the limit is ${MAX_RENDERED_BYTES}`,
      "TEMPLATE_TOO_LARGE",
    );
  return JSON.stringify(value);
}

const config = {
  escape: (value: unknown) =>
    typeof value === "object" && value !== null ? renderJson(value as JsonValue) : String(value),
};
const WHOLE = /^\{\{\s*([\w.-]+)\s*\}\}$/;

function lookup(view: TemplateView, path: string): unknown {
  let current: unknown = view;
  for (const key of path.split(".")) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** Renders one string. */
export function renderString(template: string, view: TemplateView): string {
  if (!template.includes("{{")) return template;
  return Mustache.render(template, view, undefined, config);
}

/** Renders every string inside a JSON value. */
export function renderValue(value: JsonValue, view: TemplateView): JsonValue {
  if (typeof value === "string") {
    const whole = WHOLE.exec(value);
    if (whole) {
      const found = lookup(view, whole[1]!);
      return found === undefined ? "" : (found as JsonValue);
    }
    return renderString(value, view);
  }
  if (Array.isArray(value)) return value.map((item) => renderValue(item, view));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, renderValue(item, view)]),
    );
  }
  return value;
}

/** Template syntax errors, found at validation time. */
export function templateProblem(template: string): string | null {
  try {
    Mustache.parse(template);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}
