/**
 * validatePipeline and compilePipeline on invalid pipelines: one case or more per validation
 * code (the cases live in helpers/validation-cases-*.ts), the order of the rules, and the
 * message that sums the errors up.
 */
import { describe, expect, it } from "vitest";
import { normalizeDefinition } from "../src/domain/definition.ts";
import {
  type ActionCatalog,
  VALIDATION_CODES,
  validationFailureMessage,
} from "../src/domain/validation.ts";
import { compilePipeline, validatePipeline } from "../src/engine/dag.ts";
import {
  type CodeCase,
  chain,
  delay,
  edge,
  err,
  node,
  pass,
  pipeline,
  trigger,
} from "./helpers/definitions.ts";
import { configCases } from "./helpers/validation-cases-config.ts";
import { structureCases } from "./helpers/validation-cases-structure.ts";

/** At least one case per validation code; a test below checks that none is missing. */
const codeCases: CodeCase[] = [...structureCases, ...configCases];

describe("validation codes", () => {
  it.each(codeCases)("reports $title", ({ definition, options, errors }) => {
    expect(validatePipeline(definition, options)).toEqual(errors);
    const outcome = compilePipeline(definition, options);
    expect(outcome.valid).toBe(false);
    expect(outcome.errors).toEqual(errors);
  });

  it("has a case above for every code in VALIDATION_CODES", () => {
    const covered = new Set(codeCases.flatMap((c) => c.errors.map((e) => e.code)));
    expect([...covered].sort()).toEqual(Object.keys(VALIDATION_CODES).sort());
  });

  it("describes every code in one line", () => {
    for (const [code, description] of Object.entries(VALIDATION_CODES)) {
      expect(code).toMatch(/^[A-Z_]+$/);
      expect(description).toMatch(/^[^\n]+$/);
    }
  });

  it("reports every problem, in the order of the rules", () => {
    const definition = normalizeDefinition({
      name: "",
      maxRetriesPerNode: 0,
      nodes: [
        pass("a"),
        node("bad.id", "PARALLEL"),
        pass("a"),
        node("w", "AGENT"),
        delay("d", -5),
        { ...pass("b"), timeoutMs: 0 },
      ],
      edges: [
        edge("a", "ghost"),
        edge("a", "a"),
        edge("a", "b", "TRUE"),
        edge("a", "b"),
        edge("a", "b"),
        edge("b", "a"),
      ],
    });
    expect(validatePipeline(definition)).toEqual([
      err("INVALID_NAME", "pipeline name must be 1 to 200 characters"),
      err("INVALID_SETTING", "maxRetriesPerNode must be 1 to 100, got 0"),
      err("INVALID_NODE_ID", 'node id "bad.id" must be 1 to 128 letters, digits, _ or -'),
      err("DUPLICATE_NODE_ID", 'node id "a" is used more than once', "a"),
      err("MISSING_AGENT_ID", 'node "w": AGENT needs config.agentId (a non-empty string)', "w"),
      err("MISSING_TASK", 'node "w": AGENT needs config.task (a non-empty string)', "w"),
      err("INVALID_DELAY", 'node "d": DELAY needs config.seconds, a number ≥ 0', "d"),
      err("INVALID_TIMEOUT", 'node "b": timeoutMs must be 1 to 86400000, got 0', "b"),
      err("MISSING_TRIGGER", "the pipeline needs at least one TRIGGER node"),
      err("UNKNOWN_EDGE_NODE", 'edge "a" → "ghost" names unknown node "ghost"', "ghost"),
      err("SELF_LOOP", 'edge "a" → "a" leads from node "a" to itself', "a"),
      err(
        "INVALID_BRANCH",
        'edge "a" → "b" (TRUE) has a branch but "a" is a PARALLEL, not a CONDITION',
        "a",
      ),
      err("DUPLICATE_EDGE", 'edge "a" → "b" appears more than once', "a"),
      err("CYCLE", 'cycle: "a" → "b" → "a"', "a"),
    ]);
  });

  it("uses the catalog it is given for action names and settings", () => {
    const catalog: ActionCatalog = {
      has: (name) => name === "slack",
      check: (name, config) =>
        typeof config.channel === "string" ? [] : [`${name} needs config.channel`],
    };
    const definition = pipeline(
      [
        trigger(),
        node("s", "ACTION", { action: "slack" }),
        node("ok", "ACTION", { action: "slack", channel: "#ops" }),
        node("h", "ACTION", { action: "http", url: "http://x/" }),
      ],
      chain("t", "s", "ok", "h"),
    );
    expect(validatePipeline(definition, { actions: catalog })).toEqual([
      err("INVALID_ACTION_CONFIG", 'node "s": slack needs config.channel', "s"),
      err("UNKNOWN_ACTION", 'node "h": unknown action "http"', "h"),
    ]);
  });
});

// ---------------------------------------------------------------------------------------------

describe("validationFailureMessage", () => {
  it("joins the errors with their codes after 'Validation failed:'", () => {
    const errors = validatePipeline(normalizeDefinition({ name: "", nodes: [pass("a")] }));
    expect(validationFailureMessage(errors)).toBe(
      "Validation failed: [INVALID_NAME] pipeline name must be 1 to 200 characters; " +
        "[MISSING_TRIGGER] the pipeline needs at least one TRIGGER node",
    );
  });

  it("formats a single error", () => {
    expect(validationFailureMessage([err("CYCLE", 'cycle: "a" → "b" → "a"', "a")])).toBe(
      'Validation failed: [CYCLE] cycle: "a" → "b" → "a"',
    );
  });
});
