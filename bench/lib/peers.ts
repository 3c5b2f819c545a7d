/**
 * The engines a user would otherwise pick for durable Node.js steps, run against the local
 * services with no-op handlers: BullMQ on Redis and graphile-worker 0.17 on PostgreSQL (a
 * fresh database it migrates itself, dropped afterwards). Each helper measures one thing the
 * figures compare with: many jobs added at once, or one job from add to completion seen.
 */
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import { Queue, QueueEvents, Worker } from "bullmq";
import {
  Logger,
  makeWorkerUtils,
  type RunnerOptions,
  run as runGraphileWorker,
  type WorkerEvents,
} from "graphile-worker";
import { createTestDatabase } from "../../test/helpers/databases.ts";
import { REDIS_URL } from "../../test/helpers/services.ts";
import { withTimeout } from "./timeout.ts";

const redis = () => {
  const { hostname, port } = new URL(REDIS_URL);
  if (hostname !== "127.0.0.1" && hostname !== "localhost")
    throw new TypeError(`Expected Redis on 127.0.0.1 for the benchmark, got \`${REDIS_URL}\``);
  // BullMQ workers block on Redis and need retries unbounded per request.
  return { host: hostname, port: Number(port || 6379), maxRetriesPerRequest: null };
};

/** A BullMQ queue and its worker (no-op processor), on a queue name of their own. */
async function openBullmq(concurrency: number) {
  const name = `bench-${process.pid}-${randomUUID().slice(0, 8)}`;
  const connection = redis();
  const queue = new Queue(name, { connection });
  const worker = new Worker(name, async () => ({ ok: true }), { connection, concurrency });
  await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
  return {
    queue,
    worker,
    name,
    async close() {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
    },
  };
}

/** Resolves when `count` jobs have completed; rejects on the first failure. */
function completions(
  source: { on(event: string, listener: (...args: unknown[]) => void): unknown },
  count: number,
  events: { done: string; failed: string },
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let done = 0;
    source.on(events.done, () => {
      if (++done === count) resolve(performance.now());
    });
    source.on(events.failed, (...args: unknown[]) =>
      reject(new Error(`a peer job failed: ${String(args.at(-1))}`)),
    );
  });
}

/**
 * ms from the first of `count` `queue.add` calls made at once to the last job completed
 * (the worker's `completed` event), after `warmups` jobs. Worker concurrency as given.
 */
export async function bullmqBurst(count: number, concurrency: number): Promise<number> {
  const bull = await openBullmq(concurrency);
  try {
    const warm = completions(bull.worker, 50, { done: "completed", failed: "failed" });
    await Promise.all(Array.from({ length: 50 }, (_, i) => bull.queue.add("noop", { i })));
    await withTimeout(warm, 60_000, "BullMQ warm-up jobs");
    bull.worker.removeAllListeners("completed");
    const all = completions(bull.worker, count, { done: "completed", failed: "failed" });
    const started = performance.now();
    await Promise.all(Array.from({ length: count }, (_, i) => bull.queue.add("noop", { i })));
    const ended = await withTimeout(all, 120_000, `${count} BullMQ jobs`);
    return ended - started;
  } finally {
    await bull.close();
  }
}

/**
 * One BullMQ job at a time, from `queue.add` to its completion seen through QueueEvents
 * (`job.waitUntilFinished`), as a subscriber of the queue would see it: ms per sample.
 */
export async function bullmqLatency(samples: number, warmups: number): Promise<number[]> {
  const bull = await openBullmq(1);
  const events = new QueueEvents(bull.name, { connection: redis() });
  try {
    await events.waitUntilReady();
    const times: number[] = [];
    for (let i = 0; i < warmups + samples; i++) {
      const started = performance.now();
      const job = await bull.queue.add("noop", { i });
      await withTimeout(job.waitUntilFinished(events, 10_000), 15_000, `BullMQ job ${job.id}`);
      if (i >= warmups) times.push(performance.now() - started);
    }
    return times;
  } finally {
    await events.close();
    await bull.close();
  }
}

export type GraphileSettings = "defaults" | "tuned";

/**
 * What "tuned" sets, after graphile-worker's performance guide: as many jobs at once as the
 * engine has node slots, a local queue that locks jobs in batches, completions batched, and
 * the jobs added with one `addJobs` call. "defaults" sets nothing (one job at a time, one
 * `addJob` call per job, all made at once).
 */
export const GRAPHILE_TUNED = {
  concurrency: 64,
  maxPoolSize: 24,
  localQueue: { size: 500 },
  completeJobBatchDelay: 0,
} as const;

const silent = new Logger(() => () => {});

/**
 * ms from the first of `count` jobs added at once to the last `job:complete` event, on a fresh
 * database, after a warm-up of 50 jobs.
 */
export async function graphileBurst(count: number, settings: GraphileSettings): Promise<number> {
  const db = await createTestDatabase("postgresql");
  const events: WorkerEvents = new EventEmitter();
  const tuned = settings === "tuned";
  const options: RunnerOptions = {
    connectionString: db.url,
    taskList: { noop: async () => {} },
    noHandleSignals: true,
    logger: silent,
    events,
    ...(tuned
      ? {
          concurrency: GRAPHILE_TUNED.concurrency,
          maxPoolSize: GRAPHILE_TUNED.maxPoolSize,
          preset: {
            worker: {
              localQueue: GRAPHILE_TUNED.localQueue,
              completeJobBatchDelay: GRAPHILE_TUNED.completeJobBatchDelay,
            },
          },
        }
      : {}),
  };
  const runner = await runGraphileWorker(options);
  const utils = await makeWorkerUtils({ connectionString: db.url, logger: silent });
  const add = async (n: number) => {
    if (tuned)
      await utils.addJobs(
        Array.from({ length: n }, (_, i) => ({ identifier: "noop", payload: { i } })),
      );
    else await Promise.all(Array.from({ length: n }, (_, i) => utils.addJob("noop", { i })));
  };
  try {
    const warm = completions(events, 50, { done: "job:complete", failed: "job:failed" });
    await add(50);
    await withTimeout(warm, 60_000, "graphile-worker warm-up jobs");
    events.removeAllListeners("job:complete");
    const all = completions(events, count, { done: "job:complete", failed: "job:failed" });
    const started = performance.now();
    await add(count);
    const ended = await withTimeout(all, 120_000, `${count} graphile-worker jobs (${settings})`);
    return ended - started;
  } finally {
    await runner.stop();
    await utils.release();
    await db.drop();
  }
}
