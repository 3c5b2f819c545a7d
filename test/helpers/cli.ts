/** The CLI as a process (`node --import tsx src/cli/index.ts …`), for tests. */
import { runToExit } from "./process.ts";

export interface CliResult {
  readonly code: number | string;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs one CLI command line against `url` and waits for its end. */
export function cli(url: string, args: readonly string[], env: Record<string, string> = {}) {
  return runToExit(process.execPath, ["--import", "tsx", "src/cli/index.ts", ...args], {
    PIPELINES_URL: url,
    ...env,
  });
}

/** The run id from the first line `run <id> of "<name>" RUNNING`. */
export function runIdOf(stdout: string): string {
  const match = /^run (\S+) of "[^"]+" (RUNNING|QUEUED)\n/.exec(stdout);
  if (!match) throw new Error(`no run line in:\n${stdout}`);
  return match[1]!;
}
