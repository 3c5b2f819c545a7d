/**
 * Pipeline files: a pipeline definition (the GraphQL `PipelineInput`) as YAML or JSON, and back.
 * Exports leave out what is unset, so that an exported file reads like a hand-written one and
 * applies unchanged.
 */
import { readFileSync } from "node:fs";
import { parseDocument, stringify } from "yaml";
import { CliError } from "./client.ts";

/** A definition as the API takes it: `PipelineInput`. */
export type Definition = Record<string, unknown> & { readonly name: string };

export type FileFormat = "yaml" | "json";

/** The format a file name implies: JSON for `.json`, YAML otherwise (JSON is YAML too). */
export function formatOf(file: string): FileFormat {
  return file.toLowerCase().endsWith(".json") ? "json" : "yaml";
}

/**
 * Reads a definition; a syntax error names the file, line and column.
 * @param file a path, or `-` for standard input
 */
export function readDefinition(file: string): Definition {
  let text: string;
  try {
    text = readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (error) {
    throw new CliError(`${file}: cannot be read (${(error as Error).message})`, "FILE_UNREADABLE");
  }
  let value: unknown;
  if (formatOf(file) === "json") {
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new CliError(`${file}: not JSON: ${(error as Error).message}`, "FILE_SYNTAX");
    }
  } else {
    const document = parseDocument(text);
    const [first] = document.errors;
    if (first) {
      // The message's first line already ends with "at line L, column C".
      throw new CliError(
        `${file}: not YAML: ${first.message.split("\n")[0]!.replace(/:$/, "")}`,
        "FILE_SYNTAX",
      );
    }
    value = document.toJS();
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new CliError(
      `${file}: a pipeline file holds one object (name, nodes, edges…)`,
      "FILE_SHAPE",
    );
  }
  if (typeof (value as { name?: unknown }).name !== "string") {
    throw new CliError(`${file}: the pipeline needs a "name"`, "FILE_SHAPE");
  }
  return value as Definition;
}

/**
 * The fields of one object level that are set: nulls and empty objects left out. Not applied
 * inside a node's `config`, which is the user's data (an empty `body` means something).
 */
function compact(value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    if (inner === null || inner === undefined) continue;
    if (typeof inner === "object" && !Array.isArray(inner) && Object.keys(inner).length === 0)
      continue;
    out[key] = inner;
  }
  return out;
}

const compactSettings = (value: unknown) =>
  value && typeof value === "object" ? compact(value as Record<string, unknown>) : value;

/** A stored pipeline as the API returns it (see `PIPELINE_DEFINITION` in commands.ts). */
export interface StoredPipeline {
  readonly name: string;
  readonly maxRetriesPerNode: number;
  readonly timeoutSeconds: number;
  readonly maxConcurrency: number | null;
  readonly breaker: Record<string, unknown>;
  readonly nodes: readonly (Record<string, unknown> & { continueOnFail?: boolean })[];
  readonly edges: readonly Record<string, unknown>[];
}

/** The definition of a stored pipeline, as a file would hold it. */
export function definitionOf(pipeline: StoredPipeline): Definition {
  return compact({
    name: pipeline.name,
    maxRetriesPerNode: pipeline.maxRetriesPerNode,
    timeoutSeconds: pipeline.timeoutSeconds,
    maxConcurrency: pipeline.maxConcurrency,
    breaker: compactSettings(pipeline.breaker),
    nodes: pipeline.nodes.map(({ continueOnFail, retry, breaker, ...node }) =>
      compact({
        ...node,
        retry: compactSettings(retry),
        breaker: compactSettings(breaker),
        continueOnFail: continueOnFail || null,
      }),
    ),
    edges: pipeline.edges.map(compact),
  }) as Definition;
}

/** The text of a definition in a format. */
export function formatDefinition(definition: Definition, format: FileFormat): string {
  return format === "json"
    ? `${JSON.stringify(definition, null, 2)}\n`
    : stringify(definition, { lineWidth: 100 });
}
