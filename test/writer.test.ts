/**
 * The group-committing writer on a scripted store: what one commit holds, the order and the
 * prefix rule after failures, publication only of what is stored, fencing, giving up after a
 * bounded number of failures, and its life after close().
 */
import pino from "pino";
import { describe, expect, it } from "vitest";
import type { RunEventRecord } from "../src/domain/records.ts";
import { createMemoryBus } from "../src/engine/bus.ts";
import { RunWriter, type WriterOptions } from "../src/engine/writer.ts";
import type { CommitOutcome, NodeRunWrite, WriteBatch } from "../src/store/types.ts";

const silent = pino({ level: "silent" });

function event(runId: string, seq: number): RunEventRecord {
  return {
    runId,
    seq,
    type: "NODE_STARTED",
    nodeId: "n",
    attempt: 1,
    at: new Date(0),
    data: null,
  };
}

function nodeRun(runId: string, status: NodeRunWrite["status"]): NodeRunWrite {
  return {
    runId,
    nodeId: "n",
    status,
    attempts: 1,
    output: null,
    error: null,
    startedAt: null,
    completedAt: null,
    reusedFrom: null,
  };
}

/** A store whose commits answer from `script` (an Error fails the commit) and are recorded. */
function scriptedStore(script: (batch: WriteBatch, call: number) => CommitOutcome | Error) {
  const batches: WriteBatch[] = [];
  return {
    batches,
    store: {
      commit: async (batch: WriteBatch) => {
        batches.push(batch);
        const answer = script(batch, batches.length);
        if (answer instanceof Error) throw answer;
        return answer;
      },
    } as unknown as WriterOptions["store"],
  };
}

const ok = (): CommitOutcome => ({ rejectedRuns: [] });

function writerOn(
  store: WriterOptions["store"],
  options: Partial<WriterOptions> = {},
): { writer: RunWriter; published: [string, number[]][] } {
  const bus = createMemoryBus();
  const published: [string, number[]][] = [];
  for (const runId of ["r1", "r2"])
    bus.onRunEvent(runId, (e) => {
      const last = published.at(-1);
      if (last && last[0] === runId) last[1].push(e.seq);
      else published.push([runId, [e.seq]]);
    });
  const writer = new RunWriter({ store, bus, logger: silent, retryDelayMs: 1, ...options });
  return { writer, published };
}

describe("RunWriter", () => {
  it("commits what was written in one turn as one batch, node runs coalesced to their last state", async () => {
    const { store, batches } = scriptedStore(ok);
    const { writer, published } = writerOn(store);
    writer.appendEvent(event("r1", 1));
    writer.putNodeRun(nodeRun("r1", "RUNNING"));
    writer.appendEvent(event("r1", 2));
    writer.putNodeRun(nodeRun("r1", "COMPLETED"));
    writer.patchRun({ id: "r1", status: "RUNNING" });
    writer.patchRun({ id: "r1", error: null });
    await writer.flush();
    expect(batches).toHaveLength(1);
    expect(batches[0]!.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(batches[0]!.nodeRuns.map((n) => n.status)).toEqual(["COMPLETED"]);
    expect(batches[0]!.runs).toEqual([{ id: "r1", status: "RUNNING", error: null }]);
    expect(published).toEqual([["r1", [1, 2]]]);
  });

  it("retries a failed batch ahead of later writes, publishing nothing before it is stored", async () => {
    const { store, batches } = scriptedStore((_batch, call) =>
      call <= 2 ? new Error("database away") : ok(),
    );
    const { writer, published } = writerOn(store);
    writer.appendEvent(event("r1", 1));
    writer.putNodeRun(nodeRun("r1", "RUNNING"));
    const flushed = writer.flush();
    // Written while the first commit fails: it joins the retried batch, after it.
    setImmediate(() => {
      writer.appendEvent(event("r1", 2));
      writer.putNodeRun(nodeRun("r1", "COMPLETED"));
    });
    await flushed;
    await writer.flush();
    const stored = batches.at(-1)!;
    expect(batches.length).toBeGreaterThanOrEqual(3);
    expect(batches.slice(0, 2).every((b) => b.events[0]?.seq === 1)).toBe(true);
    expect(stored.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(stored.nodeRuns.map((n) => n.status)).toEqual(["COMPLETED"]);
    expect(published).toEqual([["r1", [1, 2]]]);
  });

  it("leaves out and reports runs whose lease another owner holds", async () => {
    const { store } = scriptedStore(() => ({ rejectedRuns: ["r2"] }));
    const rejected: string[][] = [];
    const { writer, published } = writerOn(store, {
      ownerId: "me",
      onRejected: (ids) => rejected.push([...ids]),
    });
    writer.appendEvent(event("r1", 1));
    writer.appendEvent(event("r2", 1));
    await writer.flush();
    expect(published).toEqual([["r1", [1]]]);
    expect(rejected).toEqual([["r2"]]);
  });

  it("drops the pending writes of one run only", async () => {
    const { store, batches } = scriptedStore(ok);
    const { writer } = writerOn(store);
    writer.appendEvent(event("r1", 1));
    writer.putNodeRun(nodeRun("r1", "RUNNING"));
    writer.patchRun({ id: "r1", status: "RUNNING" });
    writer.appendEvent(event("r2", 1));
    writer.drop("r1");
    await writer.flush();
    expect(batches).toHaveLength(1);
    expect(batches[0]!.events.map((e) => [e.runId, e.seq])).toEqual([["r2", 1]]);
    expect(batches[0]!.nodeRuns).toEqual([]);
    expect(batches[0]!.runs).toEqual([]);
  });

  it("gives the pending writes up after maxFailures commits in a row, naming their runs", async () => {
    const { store, batches } = scriptedStore(() => new Error("database away"));
    const gaveUp: string[][] = [];
    const { writer, published } = writerOn(store, {
      maxFailures: 3,
      onGaveUp: (ids) => gaveUp.push([...ids].sort()),
    });
    writer.appendEvent(event("r1", 1));
    writer.patchRun({ id: "r2", status: "RUNNING" });
    await writer.flush();
    expect(batches).toHaveLength(3);
    expect(gaveUp).toEqual([["r1", "r2"]]);
    expect(published).toEqual([]);
    // Nothing is left to write: the next flush settles without another commit.
    await writer.flush();
    expect(batches).toHaveLength(3);
  });

  it("refuses a maxFailures below 1", () => {
    const { store } = scriptedStore(ok);
    expect(() => writerOn(store, { maxFailures: 0 })).toThrow(
      "Expected `maxFailures` >= 1, got `0` (number)",
    );
  });

  it("flushes on close, then writes nothing more and settles every flush at once", async () => {
    const { store, batches } = scriptedStore(ok);
    const { writer } = writerOn(store);
    writer.appendEvent(event("r1", 1));
    await writer.close();
    expect(batches).toHaveLength(1);
    writer.appendEvent(event("r1", 2));
    writer.putNodeRun(nodeRun("r1", "COMPLETED"));
    await writer.flush();
    expect(batches).toHaveLength(1);
  });
  it("commits another run's writes beside a commit under way, never one run's in two at once", async () => {
    const gates: (() => void)[] = [];
    const batches: WriteBatch[] = [];
    const store = {
      commit: (batch: WriteBatch) => {
        batches.push(batch);
        return new Promise<CommitOutcome>((resolve) => gates.push(() => resolve(ok())));
      },
    } as unknown as WriterOptions["store"];
    const { writer, published } = writerOn(store);
    const runsOf = (batch: WriteBatch) => [...new Set(batch.events.map((e) => e.runId))];
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    writer.appendEvent(event("r1", 1));
    await turn();
    expect(batches.map(runsOf)).toEqual([["r1"]]);
    // r1 is held by the first commit: its next event waits; r2's goes in a second commit.
    writer.appendEvent(event("r1", 2));
    writer.appendEvent(event("r2", 1));
    let flushed = false;
    const flush = writer.flush().then(() => {
      flushed = true;
    });
    await turn();
    expect(batches.map(runsOf)).toEqual([["r1"], ["r2"]]);
    gates[1]!();
    await turn();
    expect(published).toEqual([["r2", [1]]]);
    // r2 is free again: its next write has a commit of its own, r1's still waits.
    writer.appendEvent(event("r2", 2));
    await turn();
    expect(batches.map(runsOf)).toEqual([["r1"], ["r2"], ["r2"]]);
    // Two commits under way at most: r3's write waits although r3 is in neither.
    writer.appendEvent(event("r3", 1));
    await turn();
    expect(batches).toHaveLength(3);
    gates[0]!();
    await turn();
    await turn();
    expect(batches.map(runsOf)).toEqual([["r1"], ["r2"], ["r2"], ["r1", "r3"]]);
    expect(batches[3]!.events.map((e) => [e.runId, e.seq])).toEqual([
      ["r1", 2],
      ["r3", 1],
    ]);
    gates[2]!();
    await turn();
    expect(flushed).toBe(false);
    gates[3]!();
    await flush;
    expect(published).toEqual([
      ["r2", [1]],
      ["r1", [1]],
      ["r2", [2]],
      ["r1", [2]],
    ]);
  });
});
