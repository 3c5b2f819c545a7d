/**
 * The command line of `pipelines` (npm run cli -- …): pipelines as files, and runs from a
 * shell, through a running server's GraphQL API. commands.ts and run.ts do the work.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { CliError, createClient, type Transport } from "./client.ts";
import {
  applyCommand,
  type CommandContext,
  EXIT,
  exportCommand,
  listCommand,
  validateCommand,
} from "./commands.ts";
import { runCommand } from "./run.ts";

const DEFAULT_URL = "http://127.0.0.1:4000/graphql";

export const USAGE = `Usage: pipelines <command> [options]

Commands:
  apply <file>       create the pipeline of the file (YAML or JSON), or update the one of its name
  validate <file>    check a pipeline file; nothing is stored
  run <name>         start a run; --follow streams its events and waits for the end
  export <name>      print a stored pipeline as YAML (--format json for JSON)
  list               the stored pipelines

Options:
  --url <url>        the server's GraphQL endpoint (default ${DEFAULT_URL}, or PIPELINES_URL)
  --key <key>        API key, sent as Authorization: Bearer (or PIPELINES_API_KEY)
  --data <json>      run: the trigger data, as JSON or @file.json
  --follow, -f       run: stream the events and exit with the run's status
  --transport <t>    run: ws (graphql-ws, the default) or sse
  --format <f>       export: yaml (default) or json; list: table (default) or json
  --draft            apply: store a pipeline even when it does not validate
  --help, -h         this text

Exit codes: 0 done (run COMPLETED), 1 failed (invalid pipeline, not found, server error),
2 usage, 3 run FAILED, 4 run CANCELLED, 5 run TIMED_OUT.
`;

function usage(message: string): CliError {
  return new CliError(`${message}\n\n${USAGE}`, "USAGE", EXIT.usage);
}

function parseData(raw: string | undefined): unknown {
  if (raw === undefined) return undefined;
  const text = raw.startsWith("@") ? readFileSync(raw.slice(1), "utf8") : raw;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw usage(`--data is not JSON: ${(error as Error).message}`);
  }
}

function parseCommandLine(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      url: { type: "string" },
      key: { type: "string" },
      data: { type: "string" },
      follow: { type: "boolean", short: "f" },
      transport: { type: "string" },
      format: { type: "string" },
      draft: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
}

/**
 * Runs one command line; resolves with the exit code. `env` is read for the two defaults a
 * shell may set (PIPELINES_URL, PIPELINES_API_KEY): the CLI is a program of its own, not the
 * server, whose configuration lives in config.ts.
 */
export async function main(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: Pick<CommandContext, "out" | "err"> & { readonly tty: boolean },
): Promise<number> {
  try {
    let parsed: ReturnType<typeof parseCommandLine>;
    try {
      parsed = parseCommandLine(argv);
    } catch (error) {
      throw usage((error as Error).message);
    }
    const { values, positionals } = parsed;
    const [command, target, ...extra] = positionals;
    if (values.help || !command) {
      io.out.write(USAGE);
      return values.help ? EXIT.ok : EXIT.usage;
    }
    if (!["apply", "validate", "run", "export", "list"].includes(command))
      throw usage(`unknown command "${command}"`);
    const needsTarget = command !== "list";
    if (needsTarget && !target) {
      const what = command === "apply" || command === "validate" ? "file" : "pipeline name";
      throw usage(`${command} needs a ${what}`);
    }
    if (extra.length > 0 || (!needsTarget && target))
      throw usage(`unexpected argument "${extra[0] ?? target}"`);
    const transport = (values.transport ?? "ws") as Transport;
    if (transport !== "ws" && transport !== "sse")
      throw usage(`--transport must be ws or sse, got "${values.transport}"`);
    const ctx: CommandContext = {
      client: createClient({
        url: values.url ?? env.PIPELINES_URL ?? DEFAULT_URL,
        key: values.key ?? env.PIPELINES_API_KEY,
      }),
      out: io.out,
      err: io.err,
    };
    switch (command) {
      case "apply":
        return await applyCommand(ctx, target!, { draft: values.draft ?? false });
      case "validate":
        return await validateCommand(ctx, target!);
      case "export": {
        const format = values.format ?? "yaml";
        if (format !== "yaml" && format !== "json")
          throw usage(`--format must be yaml or json, got "${format}"`);
        return await exportCommand(ctx, target!, format);
      }
      case "list": {
        const format = values.format ?? "table";
        if (format !== "table" && format !== "json")
          throw usage(`--format must be table or json, got "${format}"`);
        return await listCommand(ctx, format === "json");
      }
      case "run":
        return await runCommand(ctx, target!, {
          data: parseData(values.data),
          follow: values.follow ?? false,
          transport,
          tty: io.tty,
        });
      default:
        throw usage(`unknown command "${command}"`);
    }
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    io.err.write(`${error.message}\n`);
    return error.exitCode;
  }
}
