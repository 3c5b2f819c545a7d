/** HTTP load with autocannon, from a child process (see ../load-child.ts). */
import { fork } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface LoadOptions {
  readonly url: string;
  /** A JSON request body, sent with POST. */
  readonly body: string;
  readonly connections: number;
  readonly durationSeconds: number;
}

export interface LoadSummary {
  /** Responses received. */
  readonly requests: number;
  /** Requests sent, those still unanswered when the time was up included. */
  readonly sent: number;
  readonly ok: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly durationSeconds: number;
  /** 2xx responses per second. */
  readonly requestsPerSecond: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly bytesPerSecond: number;
}

const child = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../load-child.ts");

export function runLoad(options: LoadOptions): Promise<LoadSummary> {
  const process = fork(child, [], { execArgv: ["--import", "tsx"], stdio: "inherit" });
  return new Promise<LoadSummary>((resolve, reject) => {
    const timer = setTimeout(
      () => {
        process.kill();
        reject(new Error(`autocannon did not finish within ${options.durationSeconds + 30} s`));
      },
      (options.durationSeconds + 30) * 1000,
    );
    process.once("message", (summary: LoadSummary) => {
      clearTimeout(timer);
      resolve(summary);
    });
    process.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`autocannon process exited (${code}) without a result`));
    });
    process.send(options);
  });
}
