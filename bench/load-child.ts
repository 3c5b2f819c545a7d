/**
 * autocannon in its own process, so that the load generator does not share the event loop of
 * the server it measures. Started by lib/load.ts with fork(); receives the options, sends back
 * the summary.
 */
import autocannon from "autocannon";
import type { LoadOptions, LoadSummary } from "./lib/load.ts";

process.on("message", async (options: LoadOptions) => {
  const result = await autocannon({
    url: options.url,
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: options.body,
    connections: options.connections,
    duration: options.durationSeconds,
  });
  const summary: LoadSummary = {
    requests: result.requests.total,
    sent: result.requests.sent,
    ok: result["2xx"],
    non2xx: result.non2xx,
    errors: result.errors,
    durationSeconds: result.duration,
    requestsPerSecond: result["2xx"] / result.duration,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    bytesPerSecond: result.throughput.average,
  };
  process.send?.(summary, undefined, {}, () => process.exit(0));
});
process.on("disconnect", () => process.exit(0));
