/**
 * The CLI's commands. Each writes what the user reads to `out` (results) or `err`
 * (problems) and resolves with the process's exit code.
 */
import { CliError, type Client, GraphQLRequestError } from "./client.ts";
import {
  type Definition,
  definitionOf,
  type FileFormat,
  formatDefinition,
  readDefinition,
  type StoredPipeline,
} from "./files.ts";

/** Exit codes, documented in the README. */
export const EXIT = {
  ok: 0,
  /** The command failed: invalid pipeline, not found, server error or unreachable. */
  failed: 1,
  usage: 2,
  runFailed: 3,
  runCancelled: 4,
  runTimedOut: 5,
} as const;

export interface Output {
  write(text: string): void;
}

export interface CommandContext {
  readonly client: Client;
  readonly out: Output;
  readonly err: Output;
}

interface ValidationError {
  readonly code: string;
  readonly message: string;
  readonly nodeId: string | null;
}
interface ValidationResult {
  readonly valid: boolean;
  readonly errors: readonly ValidationError[];
}

const FIND = `query FindPipelines($after: String) {
  pipelines(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node { id name version runCount successCount errorCount validation { valid } } }
  }
}`;

const VALIDATE = `mutation Validate($input: PipelineInput!) {
  validatePipeline(definition: $input) { valid errors { code message nodeId } }
}`;

const SAVED = "id name version validation { valid errors { code message nodeId } }";
const CREATE = `mutation Create($input: PipelineInput!) { createPipeline(input: $input) { ${SAVED} } }`;
const UPDATE = `mutation Update($id: ID!, $input: PipelineInput!) {
  updatePipeline(id: $id, input: $input) { ${SAVED} }
}`;

const SETTINGS = "failureThreshold recoveryTimeoutMs";
const EXPORT = `query Export($id: ID!) {
  pipeline(id: $id) {
    name maxRetriesPerNode timeoutSeconds maxConcurrency breaker { ${SETTINGS} }
    nodes { id type name config timeoutMs continueOnFail
      retry { maxAttempts initialDelayMs maxDelayMs jitter } breaker { ${SETTINGS} } }
    edges { source target branch }
  }
}`;

export interface PipelineSummary {
  readonly id: string;
  readonly name: string;
  readonly version: number;
  readonly runCount: number;
  readonly successCount: number;
  readonly errorCount: number;
  readonly validation: { readonly valid: boolean };
}

interface PipelinePage {
  readonly pageInfo: { readonly hasNextPage: boolean; readonly endCursor: string | null };
  readonly edges: readonly { readonly node: PipelineSummary }[];
}

/** Every stored pipeline, newest first, page by page. */
export async function listPipelines(client: Client): Promise<PipelineSummary[]> {
  const all: PipelineSummary[] = [];
  let after: string | null = null;
  // Bounded: 1,000 pages of 100.
  for (let page = 0; page < 1000; page++) {
    const { pipelines }: { pipelines: PipelinePage } = await client.request(FIND, { after });
    all.push(...pipelines.edges.map((edge) => edge.node));
    if (!pipelines.pageInfo.hasNextPage) break;
    after = pipelines.pageInfo.endCursor;
  }
  return all;
}

/** The pipeline of that name; several of one name are refused as ambiguous. */
export async function findPipeline(
  client: Client,
  name: string,
): Promise<PipelineSummary | undefined> {
  const matches = (await listPipelines(client)).filter((p) => p.name === name);
  if (matches.length > 1) {
    throw new CliError(
      `${matches.length} pipelines are named "${name}" (${matches.map((p) => p.id).join(", ")}): rename all but one`,
      "AMBIGUOUS_NAME",
    );
  }
  return matches[0];
}

/** The pipeline of that name, or a NOT_FOUND error. */
export async function requirePipeline(client: Client, name: string): Promise<PipelineSummary> {
  const found = await findPipeline(client, name);
  if (!found) throw new CliError(`no pipeline is named "${name}" (see \`list\`)`, "NOT_FOUND");
  return found;
}

function printErrors(err: Output, source: string, errors: readonly ValidationError[]): void {
  err.write(`${source}: ${errors.length} problem${errors.length === 1 ? "" : "s"}\n`);
  for (const e of errors)
    err.write(`  ${e.nodeId ? `[${e.nodeId}] ` : ""}${e.code}: ${e.message}\n`);
}

type Item = Record<string, unknown>;

/**
 * Which nodes or edges a GraphQL input error is about, as `[id]` labels. The server reports a
 * bad enum value or an unknown field by type, not by position, so the labels come from matching
 * the message against the definition.
 */
function locate(message: string, definition: Definition): string {
  const list = (key: string) => (Array.isArray(definition[key]) ? (definition[key] as Item[]) : []);
  const label = (item: Item, index: number, key: string) =>
    typeof item.id === "string" ? item.id : `${key}[${index}]`;
  const find = (key: string, test: (item: Item) => boolean) =>
    list(key)
      .map((item, index) => (test(item) ? label(item, index, key) : undefined))
      .filter((found): found is string => found !== undefined);
  const has = (value: unknown, field: string) =>
    typeof value === "object" && value !== null && field in value;
  let found: string[] = [];
  const unknownField = /Field "([^"]+)" is not defined by type "(\w+)"/.exec(message);
  const missing = /Field "(\w+)" of required type "[^"]+" was not provided/.exec(message);
  const enumValue = /Value "?([^"]*?)"? does not exist in "(\w+)" enum/.exec(message);
  if (unknownField) {
    const [, field, type] = unknownField as unknown as [string, string, string];
    if (type === "PipelineNodeInput") found = find("nodes", (n) => has(n, field));
    else if (type === "PipelineEdgeInput") found = find("edges", (e) => has(e, field));
    else if (type === "RetryPolicyInput") found = find("nodes", (n) => has(n.retry, field));
    else if (type === "BreakerSettingsInput") found = find("nodes", (n) => has(n.breaker, field));
  } else if (missing) {
    found = [
      ...find("nodes", (n) => !has(n, missing[1]!)),
      ...find("edges", (e) => !has(e, missing[1]!)),
    ];
  } else if (enumValue?.[2] === "NodeType") {
    found = find("nodes", (n) => String(n.type) === enumValue[1]);
  } else if (enumValue?.[2] === "EdgeBranch") {
    found = find("edges", (e) => String(e.branch) === enumValue[1]);
  }
  return found.length > 0 ? `${found.map((id) => `[${id}]`).join(" ")} ` : "";
}

function inputErrors(file: string, definition: Definition, error: GraphQLRequestError): CliError {
  const lines = error.errors.map((e) => `  ${locate(e.message, definition)}${e.message}`);
  return new CliError(`${file}: not a pipeline definition\n${lines.join("\n")}`, error.code);
}

async function checked(ctx: CommandContext, file: string, definition: Definition) {
  try {
    const { validatePipeline } = await ctx.client.request<{ validatePipeline: ValidationResult }>(
      VALIDATE,
      { input: definition },
    );
    return validatePipeline;
  } catch (error) {
    if (error instanceof GraphQLRequestError && error.code === "GRAPHQL_VALIDATION_FAILED")
      throw inputErrors(file, definition, error);
    throw error;
  }
}

/** `validate <file>`: the server's verdict on a definition, nothing stored. */
export async function validateCommand(ctx: CommandContext, file: string): Promise<number> {
  const definition = readDefinition(file);
  const result = await checked(ctx, file, definition);
  if (!result.valid) {
    printErrors(ctx.err, file, result.errors);
    return EXIT.failed;
  }
  ctx.out.write(`${file}: pipeline "${definition.name}" is valid\n`);
  return EXIT.ok;
}

/**
 * `apply <file>`: creates the pipeline of the file's name, or updates the one of that name.
 * An invalid definition is not stored unless `draft` is set (the server keeps drafts).
 */
export async function applyCommand(
  ctx: CommandContext,
  file: string,
  options: { readonly draft?: boolean } = {},
): Promise<number> {
  const definition = readDefinition(file);
  const result = await checked(ctx, file, definition);
  if (!result.valid) {
    printErrors(ctx.err, file, result.errors);
    if (!options.draft) {
      ctx.err.write(`${file}: nothing stored (--draft stores an invalid pipeline)\n`);
      return EXIT.failed;
    }
  }
  const existing = await findPipeline(ctx.client, definition.name);
  type Saved = { id: string; name: string; version: number; validation: ValidationResult };
  const saved = existing
    ? (
        await ctx.client.request<{ updatePipeline: Saved }>(UPDATE, {
          id: existing.id,
          input: definition,
        })
      ).updatePipeline
    : (await ctx.client.request<{ createPipeline: Saved }>(CREATE, { input: definition }))
        .createPipeline;
  const verb = existing ? "updated" : "created";
  const draft = saved.validation.valid ? "" : ", stored as an invalid draft";
  ctx.out.write(
    `${verb} pipeline "${saved.name}" (id ${saved.id}, version ${saved.version}${draft})\n`,
  );
  return saved.validation.valid ? EXIT.ok : EXIT.failed;
}

/** `export <name>`: the stored definition as YAML or JSON. */
export async function exportCommand(
  ctx: CommandContext,
  name: string,
  format: FileFormat,
): Promise<number> {
  const { id } = await requirePipeline(ctx.client, name);
  const { pipeline } = await ctx.client.request<{ pipeline: StoredPipeline | null }>(EXPORT, {
    id,
  });
  if (!pipeline) throw new CliError(`pipeline "${name}" was deleted meanwhile`, "NOT_FOUND");
  ctx.out.write(formatDefinition(definitionOf(pipeline), format));
  return EXIT.ok;
}

/** `list`: one line per pipeline, or JSON. */
export async function listCommand(ctx: CommandContext, json: boolean): Promise<number> {
  const pipelines = await listPipelines(ctx.client);
  if (json) {
    ctx.out.write(`${JSON.stringify(pipelines, null, 2)}\n`);
    return EXIT.ok;
  }
  const rows = [
    ["NAME", "VERSION", "VALID", "RUNS", "COMPLETED", "FAILED", "ID"],
    ...pipelines.map((p) => [
      p.name,
      String(p.version),
      p.validation.valid ? "yes" : "no",
      String(p.runCount),
      String(p.successCount),
      String(p.errorCount),
      p.id,
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) {
    ctx.out.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join("  ")
        .trimEnd()}\n`,
    );
  }
  return EXIT.ok;
}
