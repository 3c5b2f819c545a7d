/** Validation and compilation of 10,000-node graphs: chains in either order, and cycles. */
import { describe, expect, it } from "vitest";
import { validatePipeline } from "../src/engine/dag.ts";
import { chain, compiled, edge, err, pass, pipeline, trigger } from "./helpers/definitions.ts";

describe("large graphs", () => {
  const size = 10_000;
  const ids = Array.from({ length: size }, (_, i) => `n${i}`);
  const nodes = ids.map((id, i) => (i === 0 ? trigger(id) : pass(id)));

  it("compiles a 10,000-node chain", () => {
    const p = compiled(pipeline(nodes, chain(...ids)));
    expect(p.order).toEqual(ids);
  });

  it("compiles a 10,000-node chain defined in reverse order", () => {
    const p = compiled(pipeline([...nodes].reverse(), chain(...ids)));
    expect(p.order).toEqual(ids);
  });

  it("reports a 10,000-node chain closed into a cycle as one cycle", () => {
    const errors = validatePipeline(
      pipeline(nodes, [...chain(...ids), edge(ids[size - 1]!, "n1")]),
    );
    const onCycle = ids.slice(1);
    expect(errors).toEqual([
      err("CYCLE", `cycle: ${[...onCycle, "n1"].map((id) => `"${id}"`).join(" → ")}`, "n1"),
    ]);
  });

  it("reports a 10,000-node cycle no trigger reaches", () => {
    const loop = pipeline(
      [trigger(), ...ids.map(pass)],
      [...chain(...ids), edge(ids[size - 1]!, ids[0]!)],
    );
    const errors = validatePipeline(loop, { maxNodes: size + 1 });
    expect(errors).toEqual([
      err("CYCLE", `cycle: ${[...ids, "n0"].map((id) => `"${id}"`).join(" → ")}`, "n0"),
      ...ids.map((id) =>
        err("UNREACHABLE_NODE", `node "${id}" cannot be reached from a TRIGGER`, id),
      ),
    ]);
  });
});
