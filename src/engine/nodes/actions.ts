/**
 * Named actions for ACTION nodes: `http` and `log` built in, more registered in code:
 *
 *   engine.actions.register({ name: "slack", check: (c) => ..., run: async (ctx) => ... })
 */

import type { JsonObject, JsonValue } from "../../domain/json.ts";
import type { ActionCatalog } from "../../domain/validation.ts";
import { PermanentError, RetryableError } from "../errors.ts";
import type { EngineHooks } from "../hooks.ts";
import {
  mentionsSecrets,
  noSecrets,
  type SecretResolver,
  secretReferences,
  withRedaction,
} from "../secrets.ts";
import { renderJson, renderString, templateProblem } from "../templates.ts";
import { httpRequest } from "./http-client.ts";
import { type NodeContext, type NodeHandler, render, templateView } from "./types.ts";

/** What an action's `run` receives: the node's context, `config` included. */
export type ActionContext = NodeContext;

export interface ActionDefinition {
  readonly name: string;
  /** Problems with the settings, as sentences; run at validation time. */
  readonly check?: (config: JsonObject) => readonly string[];
  readonly run: (context: ActionContext) => Promise<JsonValue> | JsonValue;
}

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/** Secrets may be referenced only where `secretsAt` says (an http action's headers). */
function checkTemplates(
  value: JsonValue,
  path: string,
  problems: string[],
  secretsAt?: RegExp,
): void {
  if (typeof value === "string") {
    const problem = templateProblem(value);
    if (problem) problems.push(`${path} has a bad template: ${problem}`);
    else if (mentionsSecrets(value) && !secretsAt?.test(path))
      problems.push(`${path} references a secret: only config.headers of an http action may`);
  } else if (Array.isArray(value)) {
    for (const [i, item] of value.entries())
      checkTemplates(item, `${path}[${i}]`, problems, secretsAt);
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value))
      checkTemplates(item, `${path}.${key}`, problems, secretsAt);
  }
}

/** Where the `http` action may go, and what it adds to every request. */
export interface HttpActionOptions {
  /** Hosts exempt from the private-address check. @default [] */
  readonly httpAllowlist?: readonly string[];
  /** Source of the trace-context headers of each attempt. */
  readonly hooks?: Pick<EngineHooks, "outgoingHeaders">;
  /** Where `{{secrets.NAME}}` in headers is read. @default none: such a node fails */
  readonly secrets?: SecretResolver;
}

function httpAction({
  httpAllowlist = [],
  hooks,
  secrets = noSecrets,
}: HttpActionOptions): ActionDefinition {
  return {
    name: "http",
    check(config) {
      const problems: string[] = [];
      if (typeof config.url !== "string" || config.url === "") {
        problems.push("http needs config.url");
      } else if (!config.url.includes("{{")) {
        try {
          const url = new URL(config.url);
          if (url.protocol !== "http:" && url.protocol !== "https:")
            problems.push(`config.url must be http or https, got ${url.protocol}`);
        } catch {
          problems.push(`config.url "${config.url}" is not a valid URL`);
        }
      }
      if (
        config.method !== undefined &&
        (typeof config.method !== "string" || !METHODS.includes(config.method.toUpperCase()))
      ) {
        problems.push(`config.method must be one of ${METHODS.join(", ")}`);
      }
      if (config.headers !== undefined) {
        const headers = config.headers;
        if (
          typeof headers !== "object" ||
          headers === null ||
          Array.isArray(headers) ||
          Object.values(headers).some((v) => typeof v !== "string")
        ) {
          problems.push("config.headers must be an object of strings");
        }
      }
      if (
        config.timeoutMs !== undefined &&
        !(Number.isInteger(config.timeoutMs) && (config.timeoutMs as number) > 0)
      ) {
        problems.push("config.timeoutMs must be a whole number of milliseconds above 0");
      }
      checkTemplates(config, "config", problems, /^config\.headers\.[^.[]+$/);
      return problems;
    },
    async run(context) {
      const { config } = context;
      const method = String(config.method ?? "GET").toUpperCase();
      const configHeaders = Object.entries((config.headers ?? {}) as Record<string, string>);
      const values = await secrets.resolve(configHeaders.flatMap(([, v]) => secretReferences(v)));
      const view = { ...templateView(context), secrets: Object.fromEntries(values) };
      // The node's own headers win over the trace context.
      const headers: Record<string, string> = {
        ...hooks?.outgoingHeaders?.(context.runId, context.node.id, context.attempt),
      };
      for (const [key, value] of configHeaders)
        headers[key.toLowerCase()] = renderString(value, view);
      return withRedaction(values, () => send(context, method, headers));
    },
  };

  async function send(
    context: ActionContext,
    method: string,
    headers: Record<string, string>,
  ): Promise<JsonValue> {
    const { config } = context;
    let body: string | undefined;
    if (
      config.body !== undefined &&
      config.body !== null &&
      method !== "GET" &&
      method !== "HEAD"
    ) {
      const rendered = render(config.body, context);
      if (typeof rendered === "string") body = rendered;
      else {
        body = renderJson(rendered, "the request body");
        headers["content-type"] ??= "application/json";
      }
    }
    const response = await httpRequest({
      url: render(String(config.url), context),
      method,
      headers,
      body,
      timeoutMs: typeof config.timeoutMs === "number" ? config.timeoutMs : 30_000,
      signal: context.signal,
      allowlist: httpAllowlist,
    });
    const host = new URL(response.url).host;
    if (response.status === 429 || response.status === 408 || response.status >= 500) {
      throw new RetryableError(`HTTP ${response.status} from ${host}`, `HTTP_${response.status}`);
    }
    if (response.status >= 400) {
      throw new PermanentError(
        `HTTP ${response.status} from ${host}: ${response.body.slice(0, 200)}`,
        `HTTP_${response.status}`,
      );
    }
    let parsed: JsonValue = response.body;
    if ((response.headers["content-type"] ?? "").includes("json") && response.body !== "") {
      try {
        parsed = JSON.parse(response.body) as JsonValue;
      } catch {
        // A server that says JSON and sends something else: keep the text.
      }
    }
    return { status: response.status, headers: response.headers, body: parsed };
  }
}

const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;

const logAction: ActionDefinition = {
  name: "log",
  check(config) {
    const problems: string[] = [];
    if (config.message !== undefined && typeof config.message !== "string")
      problems.push("config.message must be a string");
    if (
      config.level !== undefined &&
      !LOG_LEVELS.includes(config.level as (typeof LOG_LEVELS)[number])
    ) {
      problems.push(`config.level must be one of ${LOG_LEVELS.join(", ")}`);
    }
    checkTemplates(config, "config", problems);
    return problems;
  },
  run(context) {
    const message = render(String(context.config.message ?? ""), context);
    const level = (context.config.level as (typeof LOG_LEVELS)[number] | undefined) ?? "info";
    context.logger[level]({ nodeId: context.node.id }, message);
    return { message, level };
  },
};

/** The registry ACTION nodes look their action up in; also the validator's catalog. */
export class ActionRegistry implements ActionCatalog {
  readonly #actions = new Map<string, ActionDefinition>();
  /** Changes with every registration: validation results depend on the set of actions. */
  generation = 0;

  constructor(options: HttpActionOptions = {}) {
    this.register(httpAction(options));
    this.register(logAction);
  }

  /** Adds or replaces an action. */
  register(action: ActionDefinition): this {
    if (!/^[A-Za-z][\w.-]*$/.test(action.name)) {
      throw new TypeError(
        `Expected an action name of letters, digits, _, . and -, got \`${action.name}\``,
      );
    }
    this.#actions.set(action.name, action);
    this.generation++;
    return this;
  }

  has(name: string): boolean {
    return this.#actions.has(name);
  }

  check(name: string, config: JsonObject): readonly string[] {
    return this.#actions.get(name)?.check?.(config) ?? [];
  }

  /** The ACTION node handler. */
  readonly handler: NodeHandler = (context) => {
    const name = String(context.node.config.action);
    const action = this.#actions.get(name);
    if (!action) throw new PermanentError(`unknown action "${name}"`, "UNKNOWN_ACTION");
    // The context as it is, not a copy: a copy would read its signal, made only when asked for.
    return action.run(context);
  };
}
