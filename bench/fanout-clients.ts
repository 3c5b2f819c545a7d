/**
 * The subscribers of the fan-out figure, in their own process so that their work is not
 * charged to the server's event loop. Started by fanout.ts with fork(); one graphql-ws client
 * (one WebSocket) per subscriber, as a dashboard has.
 *
 * Protocol (IPC): receives `start`; sends `ready` once every subscription has delivered its
 * first (replayed) event; sends `done` with, per received event, [seq, at, receivedAt] in ms
 * since the epoch.
 */
import { performance } from "node:perf_hooks";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

export interface StartMessage {
  readonly type: "start";
  readonly wsUrl: string;
  readonly runId: string;
  readonly subscribers: number;
  readonly timeoutMs: number;
}

export type ClientMessage =
  | { readonly type: "ready"; readonly connectMs: number }
  | {
      readonly type: "done";
      /** Per subscriber: [seq, at, receivedAt] of every event received. */
      readonly received: (readonly [number, number, number])[][];
      readonly completed: number;
      readonly errors: string[];
      /** Event-loop utilisation of this process while the live events came (1 = saturated). */
      readonly eventLoopUtilization: number;
    };

const SUBSCRIPTION = `subscription($runId: ID!) { runEvents(runId: $runId) { seq runId type nodeId attempt at data } }`;
/** Connections opened at once (the server's listen backlog is 511). */
const BATCH = 100;

interface RunEventData {
  readonly runEvents: { readonly seq: number; readonly at: string };
}

const now = () => performance.timeOrigin + performance.now();
const send = (message: ClientMessage) =>
  new Promise<void>((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });

async function start({ wsUrl, runId, subscribers, timeoutMs }: StartMessage): Promise<void> {
  const received: [number, number, number][][] = [];
  const errors: string[] = [];
  const clients: ReturnType<typeof createClient>[] = [];
  const completions: Promise<void>[] = [];
  const began = performance.now();
  for (let offset = 0; offset < subscribers; offset += BATCH) {
    const firsts: Promise<void>[] = [];
    for (let i = offset; i < Math.min(subscribers, offset + BATCH); i++) {
      const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
      clients.push(client);
      const events: [number, number, number][] = [];
      received.push(events);
      let first!: () => void;
      firsts.push(new Promise((resolve) => (first = resolve)));
      completions.push(
        new Promise<void>((resolve) => {
          client.subscribe<RunEventData>(
            { query: SUBSCRIPTION, variables: { runId } },
            {
              next: ({ data, errors: problems }) => {
                const receivedAt = now();
                if (problems?.length) errors.push(problems.map((p) => p.message).join("; "));
                if (data)
                  events.push([data.runEvents.seq, Date.parse(data.runEvents.at), receivedAt]);
                first();
              },
              error: (error) => {
                errors.push(error instanceof Error ? error.message : JSON.stringify(error));
                first();
                resolve();
              },
              complete: () => resolve(),
            },
          );
        }),
      );
    }
    await Promise.all(firsts);
  }
  await send({ type: "ready", connectMs: performance.now() - began });
  const loop = performance.eventLoopUtilization();
  let timer: NodeJS.Timeout | undefined;
  const completed = await Promise.race([
    Promise.all(completions).then(() => subscribers),
    new Promise<number>((resolve) => {
      timer = setTimeout(() => resolve(-1), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  const { utilization } = performance.eventLoopUtilization(loop);
  if (completed < 0) errors.push(`not every subscription completed in ${timeoutMs} ms`);
  await Promise.all(clients.map((client) => client.dispose()));
  // Exit only once the result is handed over: process.exit() would drop an unsent message.
  await send({
    type: "done",
    received,
    completed: Math.max(0, completed),
    errors: errors.slice(0, 20),
    eventLoopUtilization: utilization,
  });
  process.exit(0);
}

process.on("message", (message: StartMessage) => {
  if (message.type === "start") void start(message);
});
// The parent going away ends this process too.
process.on("disconnect", () => process.exit(0));
