/** A `{ __typename }` probe every few ms against a server, from a child process (../probe-child.ts). */
import { fork } from "node:child_process";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

export interface ProbeOptions {
  readonly url: string;
  readonly intervalMs: number;
}

export interface ProbeSample {
  /** When the probe was due, ms since the epoch (performance.timeOrigin based). */
  readonly at: number;
  /** From due to answered. */
  readonly ms: number;
  /** Answered `{ __typename: "Query" }`. */
  readonly ok: boolean;
}

const child = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../probe-child.ts");

/** Starts probing; `stop()` resolves with every sample. */
export async function startProbe(
  options: ProbeOptions,
): Promise<{ stop(): Promise<ProbeSample[]> }> {
  const probe = fork(child, [], { execArgv: ["--import", "tsx"], stdio: "inherit" });
  const exited = new Promise<never>((_, reject) =>
    probe.once("exit", (code) => reject(new Error(`probe process exited (${code})`))),
  );
  exited.catch(() => {});
  const started = new Promise<void>((resolve) => probe.once("message", () => resolve()));
  probe.send(options);
  await Promise.race([started, exited]);
  return {
    async stop() {
      const samples = new Promise<ProbeSample[]>((resolve) =>
        probe.once("message", (message) => resolve(message as ProbeSample[])),
      );
      probe.send("stop");
      return Promise.race([samples, exited]);
    },
  };
}

/** The wall-clock time (ms since the epoch) matching ProbeSample.at. */
export const wallNow = (): number => performance.timeOrigin + performance.now();
