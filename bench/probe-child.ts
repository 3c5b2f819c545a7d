/**
 * A responsiveness probe in its own process (so that it does not share the event loop of the
 * server it measures): sends `{ __typename }` to the server every `intervalMs`, whether or not
 * the previous answer came, and records each probe's latency from the moment it was due.
 * Started by lib/probe.ts with fork(): receives the options, then "stop"; sends the samples.
 */
import { performance } from "node:perf_hooks";
import type { ProbeOptions, ProbeSample } from "./lib/probe.ts";

/** At most 10 minutes of probes, whatever the parent does. */
const MAX_PROBES = 30_000;

process.on("message", (message: ProbeOptions | "stop") => {
  if (message === "stop") {
    stop();
    return;
  }
  start(message);
});
process.on("disconnect", () => process.exit(0));

const samples: ProbeSample[] = [];
const pending = new Set<Promise<void>>();
let timer: NodeJS.Timeout | undefined;
let stopped = false;

function start({ url, intervalMs }: ProbeOptions): void {
  const body = JSON.stringify({ query: "{ __typename }" });
  const first = performance.now();
  let sent = 0;
  const probe = () => {
    if (stopped || sent >= MAX_PROBES) return;
    const due = first + sent * intervalMs;
    sent++;
    const request = fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body,
    })
      .then(async (response) => {
        const answer = (await response.json()) as { data?: { __typename?: string } };
        const ok = answer.data?.__typename === "Query";
        samples.push({ at: performance.timeOrigin + due, ms: performance.now() - due, ok });
      })
      .catch(() => {
        samples.push({ at: performance.timeOrigin + due, ms: performance.now() - due, ok: false });
      })
      .finally(() => pending.delete(request));
    pending.add(request);
    // The next probe is due at a fixed time, so a late timer does not thin out the probes.
    timer = setTimeout(probe, Math.max(0, first + sent * intervalMs - performance.now()));
  };
  probe();
  process.send?.("started");
}

async function stop(): Promise<void> {
  stopped = true;
  clearTimeout(timer);
  await Promise.all(pending);
  process.send?.(samples, undefined, {}, () => process.exit(0));
}
