/**
 * Validation cases on what a pipeline configures: node configs by type, retry, timeout and
 * breaker policies, and pipeline settings. test/dag-validation.test.ts runs them after the
 * cases of validation-cases-structure.ts.
 */
import type { JsonObject } from "../../src/domain/json.ts";
import { MAX_EXPRESSION_LENGTH } from "../../src/engine/expressions.ts";
import {
  agent,
  type CodeCase,
  chain,
  condition,
  delay,
  edge,
  err,
  log,
  node,
  pipeline,
  registry,
  trigger,
} from "./definitions.ts";

/** Invalid configs and settings, each with exactly the errors it must get. */
export const configCases: CodeCase[] = [
  {
    title: "a config that is an array",
    definition: pipeline(
      [trigger(), node("a", "ACTION", [] as unknown as JsonObject)],
      [edge("t", "a")],
    ),
    errors: [err("INVALID_CONFIG", 'node "a": config must be a JSON object', "a")],
  },
  {
    title: "a config that is a string (policies are not checked then)",
    definition: pipeline(
      [trigger(), { ...node("a", "PARALLEL", "x" as unknown as JsonObject), timeoutMs: 0 }],
      [edge("t", "a")],
    ),
    errors: [err("INVALID_CONFIG", 'node "a": config must be a JSON object', "a")],
  },
  {
    title: "a config larger than maxConfigBytes, counted in bytes, not characters",
    // {"action":"log","message":"é…"}: 27 + 2 bytes around 30 two-byte characters.
    definition: pipeline(
      [trigger(), node("a", "ACTION", { action: "log", message: "é".repeat(30) })],
      [edge("t", "a")],
    ),
    options: { maxConfigBytes: 88 },
    errors: [err("INVALID_CONFIG", 'node "a": config is 89 bytes; the limit is 88', "a")],
  },
  {
    title: "a config larger than the default 64 KiB",
    definition: pipeline(
      [trigger(), node("a", "PARALLEL", { m: "x".repeat(65_536 - 8 + 1) })],
      [edge("t", "a")],
    ),
    errors: [err("INVALID_CONFIG", 'node "a": config is 65537 bytes; the limit is 65536', "a")],
  },
  {
    title: "an AGENT without agentId and task",
    definition: pipeline([trigger(), node("w", "AGENT")], [edge("t", "w")]),
    errors: [
      err("MISSING_AGENT_ID", 'node "w": AGENT needs config.agentId (a non-empty string)', "w"),
      err("MISSING_TASK", 'node "w": AGENT needs config.task (a non-empty string)', "w"),
    ],
  },
  {
    title: "an AGENT with a blank agentId",
    definition: pipeline(
      [trigger(), node("w", "AGENT", { agentId: "  ", task: "t" })],
      [edge("t", "w")],
    ),
    errors: [
      err("MISSING_AGENT_ID", 'node "w": AGENT needs config.agentId (a non-empty string)', "w"),
    ],
  },
  {
    title: "an AGENT whose agentId is a number and whose task is blank",
    definition: pipeline(
      [trigger(), node("w", "AGENT", { agentId: 7, task: "" })],
      [edge("t", "w")],
    ),
    errors: [
      err("MISSING_AGENT_ID", 'node "w": AGENT needs config.agentId (a non-empty string)', "w"),
      err("MISSING_TASK", 'node "w": AGENT needs config.task (a non-empty string)', "w"),
    ],
  },
  {
    title: "a CONDITION without expression",
    definition: pipeline([trigger(), node("c", "CONDITION")], [edge("t", "c")]),
    errors: [
      err("MISSING_EXPRESSION", 'node "c": CONDITION needs config.expression (a CEL string)', "c"),
    ],
  },
  {
    title: "a CONDITION whose expression is a boolean, not a string",
    definition: pipeline(
      [trigger(), node("c", "CONDITION", { expression: true })],
      [edge("t", "c")],
    ),
    errors: [
      err("MISSING_EXPRESSION", 'node "c": CONDITION needs config.expression (a CEL string)', "c"),
    ],
  },
  {
    title: "an expression with a syntax error",
    definition: pipeline([trigger(), condition("c", "true &&")], [edge("t", "c")]),
    errors: [
      err(
        "INVALID_EXPRESSION",
        'node "c": expression does not compile: Unexpected token: EOF',
        "c",
      ),
    ],
  },
  {
    title: "an expression of type int",
    definition: pipeline([trigger(), condition("c", "1 + 2")], [edge("t", "c")]),
    errors: [
      err(
        "INVALID_EXPRESSION",
        'node "c": expression does not compile: expression must return a bool, it returns int',
        "c",
      ),
    ],
  },
  {
    title: "an empty expression",
    definition: pipeline([trigger(), condition("c", " ")], [edge("t", "c")]),
    errors: [
      err("INVALID_EXPRESSION", 'node "c": expression does not compile: expression is empty', "c"),
    ],
  },
  {
    title: "an expression naming an unknown variable",
    definition: pipeline([trigger(), condition("c", "result == 1")], [edge("t", "c")]),
    errors: [
      err(
        "INVALID_EXPRESSION",
        'node "c": expression does not compile: Unknown variable: result',
        "c",
      ),
    ],
  },
  {
    title: "an expression longer than MAX_EXPRESSION_LENGTH",
    definition: pipeline(
      [trigger(), condition("c", `true${" || true".repeat(MAX_EXPRESSION_LENGTH / 8)}`)],
      [edge("t", "c")],
    ),
    errors: [
      err(
        "INVALID_EXPRESSION",
        `node "c": expression does not compile: expression is longer than ${MAX_EXPRESSION_LENGTH} characters`,
        "c",
      ),
    ],
  },
  {
    title: "an ACTION without action",
    definition: pipeline([trigger(), node("a", "ACTION", { url: "http://x" })], [edge("t", "a")]),
    errors: [
      err("MISSING_ACTION", 'node "a": ACTION needs config.action (e.g. "http" or "log")', "a"),
    ],
  },
  {
    title: "an ACTION with an empty action",
    definition: pipeline([trigger(), node("a", "ACTION", { action: "" })], [edge("t", "a")]),
    errors: [
      err("MISSING_ACTION", 'node "a": ACTION needs config.action (e.g. "http" or "log")', "a"),
    ],
  },
  {
    title: "an unknown action",
    definition: pipeline([trigger(), node("a", "ACTION", { action: "slack" })], [edge("t", "a")]),
    errors: [err("UNKNOWN_ACTION", 'node "a": unknown action "slack"', "a")],
  },
  {
    title: "an http action without url (action registry)",
    definition: pipeline([trigger(), node("a", "ACTION", { action: "http" })], [edge("t", "a")]),
    options: { actions: registry() },
    errors: [err("INVALID_ACTION_CONFIG", 'node "a": http needs config.url', "a")],
  },
  {
    title: "an http action with a bad method (action registry)",
    definition: pipeline(
      [trigger(), node("a", "ACTION", { action: "http", url: "http://x/", method: "FETCH" })],
      [edge("t", "a")],
    ),
    options: { actions: registry() },
    errors: [
      err(
        "INVALID_ACTION_CONFIG",
        'node "a": config.method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS',
        "a",
      ),
    ],
  },
  {
    title: "an http action without url and with a bad method: one error each",
    definition: pipeline(
      [trigger(), node("a", "ACTION", { action: "http", method: 5 })],
      [edge("t", "a")],
    ),
    options: { actions: registry() },
    errors: [
      err("INVALID_ACTION_CONFIG", 'node "a": http needs config.url', "a"),
      err(
        "INVALID_ACTION_CONFIG",
        'node "a": config.method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS',
        "a",
      ),
    ],
  },
  {
    title: "an http action with an ftp url (action registry)",
    definition: pipeline(
      [trigger(), node("a", "ACTION", { action: "http", url: "ftp://example.com/x" })],
      [edge("t", "a")],
    ),
    options: { actions: registry() },
    errors: [
      err("INVALID_ACTION_CONFIG", 'node "a": config.url must be http or https, got ftp:', "a"),
    ],
  },
  {
    title: "a DELAY without seconds",
    definition: pipeline([trigger(), node("d", "DELAY")], [edge("t", "d")]),
    errors: [err("INVALID_DELAY", 'node "d": DELAY needs config.seconds, a number ≥ 0', "d")],
  },
  {
    title: "a negative DELAY",
    definition: pipeline([trigger(), delay("d", -1)], [edge("t", "d")]),
    errors: [err("INVALID_DELAY", 'node "d": DELAY needs config.seconds, a number ≥ 0', "d")],
  },
  {
    title: "a DELAY given as a string",
    definition: pipeline([trigger(), delay("d", "5")], [edge("t", "d")]),
    errors: [err("INVALID_DELAY", 'node "d": DELAY needs config.seconds, a number ≥ 0', "d")],
  },
  {
    title: "a DELAY longer than 7 days",
    definition: pipeline([trigger(), delay("d", 604_801)], [edge("t", "d")], {
      timeoutSeconds: 30 * 24 * 3600,
    }),
    errors: [err("INVALID_DELAY", 'node "d": delay of 604801 s is longer than 604800 s', "d")],
  },
  {
    title: "a DELAY longer than the pipeline's timeoutSeconds",
    definition: pipeline([trigger(), delay("d", 3601)], [edge("t", "d")]),
    errors: [
      err(
        "INVALID_DELAY",
        'node "d": delay of 3601 s is longer than the pipeline\'s timeout of 3600 s',
        "d",
      ),
    ],
  },
  {
    title: "retry.maxAttempts out of range",
    definition: pipeline(
      [
        trigger(),
        { ...log("a"), retry: { maxAttempts: 0 } },
        { ...log("b"), retry: { maxAttempts: 101 } },
        { ...log("c"), retry: { maxAttempts: 1.5 } },
      ],
      chain("t", "a", "b", "c"),
    ),
    errors: [
      err("INVALID_RETRY", 'node "a": retry.maxAttempts must be 1 to 100, got 0', "a"),
      err("INVALID_RETRY", 'node "b": retry.maxAttempts must be 1 to 100, got 101', "b"),
      err("INVALID_RETRY", 'node "c": retry.maxAttempts must be 1 to 100, got 1.5', "c"),
    ],
  },
  {
    title: "retry delays out of range",
    definition: pipeline(
      [trigger(), { ...log("a"), retry: { initialDelayMs: -1, maxDelayMs: 86_400_001 } }],
      [edge("t", "a")],
    ),
    errors: [
      err("INVALID_RETRY", 'node "a": retry.initialDelayMs must be 0 to 86400000, got -1', "a"),
      err("INVALID_RETRY", 'node "a": retry.maxDelayMs must be 0 to 86400000, got 86400001', "a"),
    ],
  },
  {
    title: "retry.initialDelayMs above retry.maxDelayMs",
    definition: pipeline(
      [trigger(), { ...agent("a"), retry: { initialDelayMs: 500, maxDelayMs: 100 } }],
      [edge("t", "a")],
    ),
    errors: [
      err(
        "INVALID_RETRY",
        'node "a": retry.initialDelayMs (500) is above retry.maxDelayMs (100)',
        "a",
      ),
    ],
  },
  {
    title: "timeoutMs out of range",
    definition: pipeline(
      [trigger(), { ...log("a"), timeoutMs: 0 }, { ...log("b"), timeoutMs: 86_400_001 }],
      chain("t", "a", "b"),
    ),
    errors: [
      err("INVALID_TIMEOUT", 'node "a": timeoutMs must be 1 to 86400000, got 0', "a"),
      err("INVALID_TIMEOUT", 'node "b": timeoutMs must be 1 to 86400000, got 86400001', "b"),
    ],
  },
  {
    title: "a node's breaker out of range",
    definition: pipeline(
      [trigger(), { ...log("a"), breaker: { failureThreshold: 0, recoveryTimeoutMs: -1 } }],
      [edge("t", "a")],
    ),
    errors: [
      err("INVALID_BREAKER", 'node "a": breaker.failureThreshold must be 1 to 10000, got 0', "a"),
      err(
        "INVALID_BREAKER",
        'node "a": breaker.recoveryTimeoutMs must be 0 to 86400000, got -1',
        "a",
      ),
    ],
  },
  {
    title: "the pipeline's breaker out of range",
    definition: pipeline([trigger()], [], {
      breaker: { failureThreshold: 10_001, recoveryTimeoutMs: 86_400_001 },
    }),
    errors: [
      err("INVALID_BREAKER", "breaker.failureThreshold must be 1 to 10000, got 10001"),
      err("INVALID_BREAKER", "breaker.recoveryTimeoutMs must be 0 to 86400000, got 86400001"),
    ],
  },
  {
    title: "pipeline settings below their ranges",
    definition: pipeline([trigger()], [], {
      maxRetriesPerNode: 0,
      timeoutSeconds: 0,
      maxConcurrency: 0,
    }),
    errors: [
      err("INVALID_SETTING", "maxRetriesPerNode must be 1 to 100, got 0"),
      err("INVALID_SETTING", "timeoutSeconds must be 1 to 2592000, got 0"),
      err("INVALID_SETTING", "maxConcurrency must be 1 to 100000, got 0"),
    ],
  },
  {
    title: "pipeline settings above their ranges or fractional",
    definition: pipeline([trigger()], [], {
      maxRetriesPerNode: 101,
      timeoutSeconds: 2_592_001,
      maxConcurrency: 2.5,
    }),
    errors: [
      err("INVALID_SETTING", "maxRetriesPerNode must be 1 to 100, got 101"),
      err("INVALID_SETTING", "timeoutSeconds must be 1 to 2592000, got 2592001"),
      err("INVALID_SETTING", "maxConcurrency must be 1 to 100000, got 2.5"),
    ],
  },
];
