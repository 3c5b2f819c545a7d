/**
 * Agents for AGENT nodes. Declared in the file `AGENTS_FILE` names (provider `openai`: any
 * OpenAI-compatible chat-completions endpoint) or registered in code:
 *
 *   engine.agents.register("echo", async ({ task }) => ({ result: task }))
 *
 * A node whose agentId has no agent gets the simulated result `{result, agentId, simulated}`.
 */
import type { AgentConfig } from "../../config.ts";
import type { JsonValue } from "../../domain/json.ts";
import { abortError, PermanentError, RetryableError } from "../errors.ts";
import type { EngineHooks } from "../hooks.ts";
import { noSecrets, type SecretResolver, withRedaction } from "../secrets.ts";
import { type NodeHandler, render } from "./types.ts";

export interface AgentRequest {
  readonly agentId: string;
  /** The node's task with its templates rendered. */
  readonly task: string;
  readonly inputs: Readonly<Record<string, JsonValue>>;
  readonly signal: AbortSignal;
  /** Headers to send with the agent's calls (the W3C trace context when tracing is on). */
  readonly headers?: Readonly<Record<string, string>>;
}

export type Agent = (request: AgentRequest) => Promise<JsonValue>;

interface ChatCompletion {
  model?: string;
  choices?: { message?: { content?: string | null } }[];
  usage?: JsonValue;
}

/**
 * An agent calling `POST {baseUrl}/chat/completions`; a key given as `{{secrets.NAME}}` is
 * decrypted for each call, and cut out of what the call returns or throws.
 */
export function openAiAgent(config: AgentConfig, secrets: SecretResolver = noSecrets): Agent {
  return async (request) => {
    const values = await secrets.resolve(config.apiKeySecret ? [config.apiKeySecret] : []);
    const apiKey = config.apiKeySecret ? values.get(config.apiKeySecret) : config.apiKey;
    return withRedaction(values, () => call(request, apiKey));
  };

  async function call(
    { agentId, task, signal, headers }: AgentRequest,
    apiKey: string | undefined,
  ): Promise<JsonValue> {
    const messages = [
      ...(config.systemPrompt ? [{ role: "system", content: config.systemPrompt }] : []),
      { role: "user", content: task },
    ];
    const timeout = AbortSignal.timeout(config.timeoutMs);
    let response: Response;
    try {
      response = await fetch(`${config.baseUrl}/chat/completions`, {
        method: "POST",
        headers: {
          ...headers,
          "content-type": "application/json",
          ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
        },
        body: JSON.stringify({
          model: config.model,
          messages,
          ...(config.temperature !== undefined ? { temperature: config.temperature } : {}),
          ...(config.maxTokens !== undefined ? { max_tokens: config.maxTokens } : {}),
        }),
        signal: AbortSignal.any([signal, timeout]),
      });
    } catch (error) {
      if (signal.aborted) throw abortError(signal);
      if (timeout.aborted)
        throw new RetryableError(
          `agent "${agentId}" timed out after ${config.timeoutMs} ms`,
          "TIMEOUT",
        );
      throw new RetryableError(
        `agent "${agentId}" unreachable: ${(error as Error).message}`,
        "NETWORK",
        { cause: error },
      );
    }
    const text = await response.text().catch(() => "");
    if (response.status === 429 || response.status === 408 || response.status >= 500) {
      throw new RetryableError(
        `agent "${agentId}" answered HTTP ${response.status}`,
        `HTTP_${response.status}`,
      );
    }
    if (!response.ok) {
      throw new PermanentError(
        `agent "${agentId}" answered HTTP ${response.status}: ${text.slice(0, 200)}`,
        `HTTP_${response.status}`,
      );
    }
    let body: ChatCompletion;
    try {
      body = JSON.parse(text) as ChatCompletion;
    } catch {
      throw new RetryableError(
        `agent "${agentId}" sent a response that is not JSON`,
        "AGENT_BAD_RESPONSE",
      );
    }
    const content = body.choices?.[0]?.message?.content;
    if (typeof content !== "string") {
      throw new RetryableError(
        `agent "${agentId}" sent no choices[0].message.content`,
        "AGENT_BAD_RESPONSE",
      );
    }
    return {
      result: content,
      agentId,
      model: body.model ?? config.model,
      usage: body.usage ?? null,
    };
  }
}

export class AgentRegistry {
  readonly #agents = new Map<string, Agent>();
  readonly #hooks: Pick<EngineHooks, "outgoingHeaders"> | undefined;

  constructor(
    configs: readonly AgentConfig[] = [],
    hooks?: Pick<EngineHooks, "outgoingHeaders">,
    secrets?: SecretResolver,
  ) {
    this.#hooks = hooks;
    for (const config of configs) this.register(config.id, openAiAgent(config, secrets));
  }

  /** Adds or replaces an agent. */
  register(id: string, agent: Agent): this {
    if (id === "") throw new TypeError("Expected a non-empty agent id, got ``");
    this.#agents.set(id, agent);
    return this;
  }

  has(id: string): boolean {
    return this.#agents.has(id);
  }

  /** The AGENT node handler. */
  readonly handler: NodeHandler = async (context) => {
    const agentId = String(context.node.config.agentId);
    const task = render(String(context.node.config.task), context);
    const agent = this.#agents.get(agentId);
    if (!agent)
      return {
        result: `Simulated response of agent "${agentId}" to: ${task}`,
        agentId,
        simulated: true,
      };
    const headers = this.#hooks?.outgoingHeaders?.(context.runId, context.node.id, context.attempt);
    return agent({ agentId, task, inputs: context.inputs, signal: context.signal, headers });
  };
}
