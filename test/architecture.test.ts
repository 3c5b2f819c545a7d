/**
 * The shape of src/: imports run one way, entry → server → schema → engine → store → domain,
 * with config.ts at the ground (anyone may read it); and no source file passes 400 lines.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const SRC = path.resolve(import.meta.dirname, "../src");
const LAYERS = ["domain", "store", "engine", "schema", "server", "entry"] as const;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "generated" ? [] : sources(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

/** The layer of a file under src/, or "config" for the ground. */
function layerOf(file: string): (typeof LAYERS)[number] | "config" {
  const relative = path.relative(SRC, file);
  if (relative === "config.ts") return "config";
  const top = relative.split(path.sep)[0]!;
  return (LAYERS as readonly string[]).includes(top) ? (top as (typeof LAYERS)[number]) : "entry";
}

const files = sources(SRC);

describe("src/ layout", () => {
  it("imports only from its own layer, the layers below it, and config.ts", () => {
    const upward: string[] = [];
    for (const file of files) {
      const from = layerOf(file);
      const text = readFileSync(file, "utf8");
      for (const [, spec] of text.matchAll(/(?:from|import)\s+"(\.{1,2}\/[^"]+)"/g)) {
        const target = layerOf(path.resolve(path.dirname(file), spec!));
        if (target === "config") continue;
        if (from === "config" || LAYERS.indexOf(target) > LAYERS.indexOf(from))
          upward.push(`${path.relative(SRC, file)} → ${spec}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it("keeps every source file under 400 lines", () => {
    const long = files
      .map((file) => [
        path.relative(SRC, file),
        readFileSync(file, "utf8").trimEnd().split("\n").length,
      ])
      .filter(([, lines]) => (lines as number) > 400);
    expect(long).toEqual([]);
  });
});
