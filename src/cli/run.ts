/**
 * `run <name>`: starts a run and, with `--follow`, streams its events to the end: a progress
 * bar on a terminal, one line per event otherwise, then the final status and every node's.
 * The exit code tells the run's status (see EXIT).
 */
import { Presets, SingleBar } from "cli-progress";
import { CliError, type Transport } from "./client.ts";
import { type CommandContext, EXIT, requirePipeline } from "./commands.ts";

export interface RunOptions {
  /** The run's triggerData. */
  readonly data?: unknown;
  readonly follow?: boolean;
  /** @default "ws" */
  readonly transport?: Transport;
  /** Draw a progress bar rather than event lines (a terminal). */
  readonly tty?: boolean;
}

interface RunEvent {
  readonly seq: number;
  readonly type: string;
  readonly nodeId: string | null;
  readonly attempt: number | null;
  readonly data: Record<string, unknown> | null;
}

interface FinishedRun {
  readonly id: string;
  readonly status: string;
  readonly error: string | null;
  readonly nodeRuns: readonly {
    nodeId: string;
    status: string;
    attempts: number;
    error: string | null;
  }[];
}

const RUN = `mutation Run($id: ID!, $data: JSON) { runPipeline(id: $id, triggerData: $data) { id status } }`;
const EVENTS = `subscription Events($runId: ID!, $after: Int) {
  runEvents(runId: $runId, after: $after) { seq type nodeId attempt data }
}`;
const FINISHED = `query Finished($id: ID!) {
  run(id: $id) { id status error nodeRuns { nodeId status attempts error } }
}`;

const STATUS_EXIT: Record<string, number> = {
  COMPLETED: EXIT.ok,
  FAILED: EXIT.runFailed,
  CANCELLED: EXIT.runCancelled,
  TIMED_OUT: EXIT.runTimedOut,
};

const SETTLED = new Set(["NODE_COMPLETED", "NODE_FAILED", "NODE_SKIPPED"]);

/** One readable line per event; `types` (node id → type) shows a condition's result. */
export function describeEvent(
  event: RunEvent,
  types: ReadonlyMap<string, string> = new Map(),
): string {
  const data = event.data ?? {};
  const parts = [String(event.seq).padStart(3), event.type];
  if (event.nodeId) parts.push(event.nodeId);
  if (event.attempt && event.attempt > 1) parts.push(`(attempt ${event.attempt})`);
  if (event.type === "RUN_STARTED") parts.push(`${data.nodeCount} nodes`);
  if (event.type === "NODE_RETRYING") parts.push(`retry in ${data.delayMs} ms: ${data.error}`);
  if (event.type === "NODE_FAILED") {
    parts.push(`${data.error}${data.continueOnFail ? " (continueOnFail: the run goes on)" : ""}`);
  }
  const output = data.output as { result?: unknown } | undefined;
  if (event.type === "NODE_COMPLETED" && event.nodeId && types.get(event.nodeId) === "CONDITION")
    parts.push(`→ ${output?.result ? "TRUE" : "FALSE"}`);
  if (event.type === "NODE_SKIPPED" && data.reason) parts.push(`(${data.reason})`);
  if (/^RUN_(FAILED|TIMED_OUT|CANCELLED)$/.test(event.type) && data.error)
    parts.push(String(data.error));
  return parts.join(" ");
}

/**
 * Reads the run's events to the terminal one. A dropped connection is resumed from the last
 * seq seen (the server replays from there), a bounded number of times.
 */
async function follow(
  ctx: CommandContext,
  runId: string,
  transport: Transport,
  onEvent: (event: RunEvent) => void,
): Promise<void> {
  let after = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      for await (const { runEvents } of ctx.client.subscribe<{ runEvents: RunEvent }>(
        EVENTS,
        { runId, after },
        transport,
      )) {
        after = runEvents.seq;
        onEvent(runEvents);
      }
      return;
    } catch (error) {
      if (!(error instanceof CliError) || error.code !== "SERVER_UNREACHABLE" || attempt >= 3)
        throw error;
      ctx.err.write(`connection lost after event ${after}; resuming\n`);
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
    }
  }
}

function progressBar(ctx: CommandContext) {
  const bar = new SingleBar(
    {
      format: "{bar} {value}/{total} nodes  {last}",
      hideCursor: true,
      clearOnComplete: false,
      // On a terminal, `out` is process.stdout, which the bar redraws in place.
      stream: ctx.out as NodeJS.WriteStream,
    },
    Presets.shades_classic,
  );
  let total = 0;
  const settled = new Set<string>();
  return {
    onEvent(event: RunEvent) {
      if (event.type === "RUN_STARTED") {
        total = Number(event.data?.nodeCount ?? 0);
        bar.start(total, 0, { last: "" });
        return;
      }
      if (event.nodeId && SETTLED.has(event.type)) settled.add(event.nodeId);
      const last = event.nodeId
        ? `${event.nodeId} ${event.type.replace(/^NODE_/, "").toLowerCase()}`
        : "";
      bar.update(settled.size, { last });
    },
    stop() {
      bar.stop();
    },
  };
}

/** `run <name>`. */
export async function runCommand(
  ctx: CommandContext,
  name: string,
  options: RunOptions = {},
): Promise<number> {
  const { id } = await requirePipeline(ctx.client, name);
  const { runPipeline } = await ctx.client.request<{ runPipeline: { id: string; status: string } }>(
    RUN,
    { id, data: options.data ?? null },
  );
  ctx.out.write(`run ${runPipeline.id} of "${name}" ${runPipeline.status}\n`);
  if (!options.follow) return EXIT.ok;

  const bar = options.tty ? progressBar(ctx) : undefined;
  const types = new Map<string, string>();
  await follow(ctx, runPipeline.id, options.transport ?? "ws", (event) => {
    if (event.type === "NODE_STARTED" && event.nodeId)
      types.set(event.nodeId, String(event.data?.type));
    if (bar) bar.onEvent(event);
    else ctx.out.write(`${describeEvent(event, types)}\n`);
  });
  bar?.stop();

  const { run } = await ctx.client.request<{ run: FinishedRun | null }>(FINISHED, {
    id: runPipeline.id,
  });
  if (!run) throw new CliError(`run ${runPipeline.id} was deleted meanwhile`, "NOT_FOUND");
  ctx.out.write(`run ${run.id} ${run.status}${run.error ? `: ${run.error}` : ""}\n`);
  const width = Math.max(...run.nodeRuns.map((n) => n.nodeId.length));
  for (const node of run.nodeRuns) {
    const attempts = node.attempts > 1 ? ` after ${node.attempts} attempts` : "";
    const error = node.error && node.status === "FAILED" ? `: ${node.error}` : "";
    ctx.out.write(`  ${node.nodeId.padEnd(width)}  ${node.status}${attempts}${error}\n`);
  }
  return STATUS_EXIT[run.status] ?? EXIT.failed;
}
