/** `{{…}}` templates in action settings and agent tasks. */
import { describe, expect, it } from "vitest";
import { renderString, renderValue, templateProblem } from "../src/engine/templates.ts";

const view = {
  inputs: { fetch: { status: 200, body: { id: 7, tags: ["a", "b"], html: "<b>&</b>" } } },
  input: { status: 200 },
  trigger: { item: 42, name: "Zoë" },
  run: { id: "run-1" },
  node: { id: "write" },
};

describe("templates", () => {
  it("renders values into strings: numbers as text, objects as JSON, nothing HTML-escaped", () => {
    expect(
      renderString(
        "item {{trigger.item}} by {{trigger.name}}: {{inputs.fetch.body.tags}} {{inputs.fetch.body.html}}",
        view,
      ),
    ).toBe('item 42 by Zoë: ["a","b"] <b>&</b>');
    expect(renderString("run {{run.id}} node {{node.id}} status {{input.status}}", view)).toBe(
      "run run-1 node write status 200",
    );
  });

  it("renders a missing value as an empty string and leaves text without templates as it is", () => {
    expect(renderString("[{{inputs.nope.x}}]", view)).toBe("[]");
    expect(renderString("no templates {here}", view)).toBe("no templates {here}");
  });

  it("keeps the type of a value when a string is one template and nothing else", () => {
    expect(
      renderValue(
        {
          body: "{{inputs.fetch.body}}",
          id: "{{ inputs.fetch.body.id }}",
          text: "id={{inputs.fetch.body.id}}",
          list: ["{{trigger.item}}", 1, null, true],
          missing: "{{inputs.nope}}",
        },
        view,
      ),
    ).toEqual({
      body: { id: 7, tags: ["a", "b"], html: "<b>&</b>" },
      id: 7,
      text: "id=7",
      list: [42, 1, null, true],
      missing: "",
    });
  });

  it("reports a template that does not parse, and accepts one that does", () => {
    expect(templateProblem("{{#open}} never closed")).toBe('Unclosed section "open" at 22');
    expect(templateProblem("fine {{inputs.fetch.body}}")).toBeNull();
  });
});
