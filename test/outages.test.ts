/**
 * Database outages, unit by unit (fake timers where timing matters): which errors mean
 * "unavailable"; the availability monitor (logged once, probed, waiters woken); the writer's
 * rule (never gives up during an outage, does for a real bug or a stall past the lease);
 * claims right after an outage; a node whose breaker cannot be read; a DELAY taken over; the
 * wait for a cancel carried out elsewhere; and the answers clients get.
 */
import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { RunEventRecord, RunRecord } from "../src/domain/records.ts";
import { signalScope } from "../src/engine/abort-group.ts";
import { StoreAvailability, untilStored } from "../src/engine/availability.ts";
import { BreakerGuard, type RunBreakers } from "../src/engine/breaker-guard.ts";
import { createMemoryBus } from "../src/engine/bus.ts";
import { type NodeHost, type NodeOutcome, runNode } from "../src/engine/node-runner.ts";
import { delayHandler } from "../src/engine/nodes/builtin.ts";
import type { NodeContext } from "../src/engine/nodes/types.ts";
import { RunOwnership } from "../src/engine/ownership.ts";
import { RunWriter } from "../src/engine/writer.ts";
import { createMaskError } from "../src/server/errors.ts";
import type { LeaseArgs, Store, WriteBatch } from "../src/store/types.ts";
import { isStoreUnavailable } from "../src/store/unavailable.ts";

afterEach(() => {
  vi.useRealTimers();
});

/** A logger that keeps what it was told. */
function recordingLogger() {
  const lines: { level: string; msg: string }[] = [];
  const at =
    (level: string) =>
    (...args: unknown[]) => {
      lines.push({ level, msg: String(args.find((a) => typeof a === "string") ?? "") });
    };
  return {
    lines,
    logger: { warn: at("warn"), info: at("info"), error: at("error"), debug: at("debug") },
  };
}

const refused = () =>
  Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), {
    code: "ECONNREFUSED",
    errno: -111,
    syscall: "connect",
  });

/** A probe that fails until `up` is set. */
function switchable() {
  const state = { up: false, probes: 0 };
  return {
    state,
    store: {
      probe: async () => {
        state.probes++;
        if (!state.up) throw refused();
      },
    },
  };
}

describe("isStoreUnavailable", () => {
  it.each([
    ["a refused connection", refused()],
    ["pg's terminated connection", new Error("Connection terminated unexpectedly")],
    [
      "an admin shutdown (57P01)",
      Object.assign(new Error("terminating connection"), { code: "57P01" }),
    ],
    ["a server starting up (57P03)", Object.assign(new Error("starting up"), { code: "57P03" })],
    ["a full disk on PostgreSQL (53100)", Object.assign(new Error("disk full"), { code: "53100" })],
    ["a read-only transaction (25006)", Object.assign(new Error("read-only"), { code: "25006" })],
    [
      "SQLite's full disk",
      Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" }),
    ],
    ["SQLite read-only", Object.assign(new Error("readonly"), { code: "SQLITE_READONLY_DBMOVED" })],
    ["localhost refused on both addresses", new AggregateError([refused(), refused()], "")],
    [
      "Prisma's wrapped adapter error",
      Object.assign(new Error("x"), {
        code: "P2010",
        meta: { driverAdapterError: { cause: { kind: "DatabaseNotReachable" } } },
      }),
    ],
    ["a cause chain", new Error("commit failed", { cause: refused() })],
  ])("is true for %s", (_name, error) => {
    expect(isStoreUnavailable(error)).toBe(true);
  });

  it.each([
    ["a unique violation", Object.assign(new Error("duplicate key"), { code: "23505" })],
    ["a syntax error", Object.assign(new Error("syntax error"), { code: "42601" })],
    ["SQLite's constraint", Object.assign(new Error("constraint"), { code: "SQLITE_CONSTRAINT" })],
    ["a TypeError", new TypeError("cannot read properties of undefined")],
    ["a string", "nope"],
    ["null", null],
  ])("is false for %s", (_name, error) => {
    expect(isStoreUnavailable(error)).toBe(false);
  });
});

describe("StoreAvailability", () => {
  it("logs an outage once, probes until the database answers, then wakes waiters and logs the end once", async () => {
    vi.useFakeTimers();
    const { lines, logger } = recordingLogger();
    const { state, store } = switchable();
    const availability = new StoreAvailability({ store, logger, probeMs: 250 });
    const recovered: number[] = [];
    availability.onRecovered((outage) => recovered.push(outage.since));

    expect(availability.report(new Error("a bug"))).toBe(false);
    expect(availability.available).toBe(true);
    expect(availability.report(refused())).toBe(true);
    expect(availability.report(refused())).toBe(true);
    expect(availability.available).toBe(false);
    let woken = false;
    void availability.whenAvailable().then(() => {
      woken = true;
    });
    await vi.advanceTimersByTimeAsync(1000);
    expect(state.probes).toBe(4);
    expect(woken).toBe(false);
    state.up = true;
    await vi.advanceTimersByTimeAsync(250);
    expect(woken).toBe(true);
    expect(availability.available).toBe(true);
    expect(recovered).toHaveLength(1);
    expect(availability.lastOutage).toEqual({ since: recovered[0], until: recovered[0]! + 1250 });
    expect(lines.filter((l) => l.msg.startsWith("database unavailable"))).toHaveLength(1);
    expect(lines.filter((l) => l.msg === "database available again after 1250 ms")).toHaveLength(1);
    // Nothing more is probed once it is back.
    await vi.advanceTimersByTimeAsync(2000);
    expect(state.probes).toBe(5);
  });

  it("untilStored retries a call after the return, and throws other failures at once", async () => {
    vi.useFakeTimers();
    const { logger } = recordingLogger();
    const { state, store } = switchable();
    const availability = new StoreAvailability({ store, logger, probeMs: 100 });
    let calls = 0;
    const result = untilStored(availability, async () => {
      calls++;
      if (!state.up) throw refused();
      return "stored";
    });
    await vi.advanceTimersByTimeAsync(500);
    expect(calls).toBe(1);
    state.up = true;
    await vi.advanceTimersByTimeAsync(100);
    await expect(result).resolves.toBe("stored");
    expect(calls).toBe(2);
    await expect(
      untilStored(availability, async () => {
        throw new Error("a bug");
      }),
    ).rejects.toThrow("a bug");
  });
});

const event = (seq: number): RunEventRecord => ({
  runId: "r1",
  seq,
  type: "NODE_STARTED",
  nodeId: "n",
  attempt: 1,
  at: new Date(0),
  data: null,
});

describe("RunWriter through an outage", () => {
  function setup(options: {
    fail: () => Error | null;
    maxFailures?: number;
    stallLimitMs?: number;
  }) {
    const { logger } = recordingLogger();
    const probe = switchable();
    const availability = new StoreAvailability({ store: probe.store, logger, probeMs: 100 });
    const commits: WriteBatch[] = [];
    const gaveUp: string[][] = [];
    const store = {
      commit: async (batch: WriteBatch) => {
        commits.push(batch);
        const error = options.fail();
        if (error) throw error;
        return { rejectedRuns: [] };
      },
    } as unknown as Store;
    const writer = new RunWriter({
      store,
      bus: createMemoryBus(),
      logger: logger as unknown as pino.Logger,
      availability,
      retryDelayMs: 10,
      maxFailures: options.maxFailures ?? 3,
      stallLimitMs: options.stallLimitMs,
      onGaveUp: (ids) => gaveUp.push([...ids]),
    });
    return { writer, commits, gaveUp, probe };
  }

  it("keeps the writes of an outage far longer than maxFailures commits, and stores them on the return", async () => {
    vi.useFakeTimers();
    const { writer, commits, gaveUp, probe } = setup({
      fail: () => (probe.state.up ? null : refused()),
      maxFailures: 3,
      stallLimitMs: 1500,
    });
    writer.appendEvent(event(1));
    const flushed = writer.flush();
    await vi.advanceTimersByTimeAsync(60_000);
    // One commit failed; the writer then waits for the probe instead of retrying.
    expect(commits).toHaveLength(1);
    writer.appendEvent(event(2));
    probe.state.up = true;
    await vi.advanceTimersByTimeAsync(100);
    await flushed;
    expect(gaveUp).toEqual([]);
    expect(commits).toHaveLength(2);
    expect(commits[1]!.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(writer.failingSince).toBeNull();
  });

  it("gives up after maxFailures failures that are not an outage", async () => {
    vi.useFakeTimers();
    const { writer, commits, gaveUp } = setup({ fail: () => new Error("a bug"), maxFailures: 3 });
    writer.appendEvent(event(1));
    const flushed = writer.flush();
    await vi.advanceTimersByTimeAsync(1000);
    await flushed;
    expect(commits).toHaveLength(3);
    expect(gaveUp).toEqual([["r1"]]);
  });

  it("gives up when commits keep failing past stallLimitMs while the database is up", async () => {
    vi.useFakeTimers();
    const { writer, commits, gaveUp } = setup({
      fail: () => new Error("a bug"),
      maxFailures: 1000,
      stallLimitMs: 1500,
    });
    writer.appendEvent(event(1));
    void writer.flush();
    await vi.advanceTimersByTimeAsync(1400);
    expect(gaveUp).toEqual([]);
    await vi.advanceTimersByTimeAsync(6000);
    expect(gaveUp).toEqual([["r1"]]);
    expect(commits.length).toBeGreaterThan(3);
  });
});

describe("claims after an outage", () => {
  it("take over only leases that had expired before the outage, for one lease length after it", async () => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date("2026-01-01T00:00:00Z"));
    const { logger } = recordingLogger();
    const probe = switchable();
    const availability = new StoreAvailability({ store: probe.store, logger, probeMs: 100 });
    const claims: LeaseArgs[] = [];
    const store = {
      claimRuns: async (_limit: number, lease: LeaseArgs) => {
        claims.push(lease);
        return [];
      },
      renewLeases: async () => [],
      cancelRequested: async () => [],
    } as unknown as Store;
    const ownership = new RunOwnership(
      {
        store,
        bus: createMemoryBus(),
        logger: logger as unknown as pino.Logger,
        instanceId: "a",
        leaseMs: 1500,
        pollMs: 500,
        availability,
      },
      { ids: () => [], execute: async () => {}, lost: () => {}, cancel: () => {} },
    );
    ownership.start();
    await vi.advanceTimersByTimeAsync(0);
    const outageStart = Date.now();
    availability.report(refused());
    await vi.advanceTimersByTimeAsync(10_000);
    const during = claims.length;
    probe.state.up = true;
    await vi.advanceTimersByTimeAsync(100);
    const back = Date.now();
    await vi.advanceTimersByTimeAsync(3000);
    ownership.stopTaking();
    await ownership.stop([]);
    // Nothing was tried while it was down (the first claim came before).
    expect(during).toBe(1);
    const after = claims.slice(during);
    const inGrace = after.filter((c) => c.leaseUntil.getTime() - 1500 < back + 1500);
    const later = after.filter((c) => c.leaseUntil.getTime() - 1500 >= back + 1500);
    expect(inGrace.length).toBeGreaterThan(0);
    expect(later.length).toBeGreaterThan(0);
    expect(inGrace.every((c) => c.now.getTime() === outageStart)).toBe(true);
    expect(later.every((c) => c.now.getTime() === c.leaseUntil.getTime() - 1500)).toBe(true);
  });
});

describe("a node whose breaker cannot be read", () => {
  it("waits for the database, then is called once; its breaker records no failure", async () => {
    vi.useFakeTimers();
    const { logger } = recordingLogger();
    const probe = switchable();
    const availability = new StoreAvailability({ store: probe.store, logger, probeMs: 100 });
    const failures: string[] = [];
    const breakers = {
      admitNow: () => null,
      admit: async () => {
        if (!probe.state.up) throw refused();
        return { admitted: true, trial: false, clean: true };
      },
      failed: async (nodeId: string) => {
        failures.push(nodeId);
        return null;
      },
      succeeded: async () => {},
      abandoned: async () => {},
    } as unknown as RunBreakers;
    let calls = 0;
    const started: number[] = [];
    const outcome = new Promise<NodeOutcome>((resolve) =>
      runNode(
        {
          definition: {
            name: "p",
            nodes: [],
            edges: [],
            maxRetriesPerNode: 3,
            timeoutSeconds: 60,
            maxConcurrency: null,
            breaker: { failureThreshold: 5, recoveryTimeoutMs: 60_000 },
          },
          handlers: {
            ACTION: async () => {
              calls++;
              return { ok: true };
            },
          } as unknown as NodeHost["handlers"],
          breakers,
          logger: logger as unknown as pino.Logger,
          availability,
          attempts: () => 0,
          context: () => ({}) as NodeContext,
          started: (_node, attempt) => started.push(attempt),
          retrying: () => {},
        },
        { id: "fetch", type: "ACTION", config: { action: "log" } },
        signalScope(new AbortController().signal),
        resolve,
      ),
    );
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toBe(0);
    probe.state.up = true;
    await vi.advanceTimersByTimeAsync(100);
    await expect(outcome).resolves.toEqual({ kind: "completed", attempt: 1, output: { ok: true } });
    expect(calls).toBe(1);
    expect(started).toEqual([1]);
    expect(failures).toEqual([]);
  });
});

describe("a DELAY taken over", () => {
  it("waits only what remains since it first started", async () => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date("2026-01-01T00:00:10Z"));
    let done = false;
    const context = {
      node: { id: "wait", type: "DELAY", config: { seconds: 10 } },
      inputs: {},
      trigger: null,
      signal: new AbortController().signal,
      startedBefore: new Date("2026-01-01T00:00:03Z"),
    } as unknown as NodeContext;
    void Promise.resolve(delayHandler(context)).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(2999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
  });
});

describe("a cancel carried out by another instance, without the bus", () => {
  it("is answered as soon as the run row says CANCELLED", async () => {
    vi.useFakeTimers();
    let status = "RUNNING";
    let reads = 0;
    const store = {
      getRuns: async () => {
        reads++;
        return [{ id: "r1", status } as RunRecord];
      },
    } as unknown as Store;
    const ownership = new RunOwnership(
      {
        store,
        bus: createMemoryBus(),
        logger: pino({ level: "silent" }),
        instanceId: "a",
        leaseMs: 5000,
      },
      { ids: () => [], execute: async () => {}, lost: () => {}, cancel: () => {} },
    );
    let answered = false;
    void ownership.cancelElsewhere("r1").then(() => {
      answered = true;
    });
    await vi.advanceTimersByTimeAsync(1000);
    expect(answered).toBe(false);
    status = "CANCELLED";
    await vi.advanceTimersByTimeAsync(100);
    expect(answered).toBe(true);
    expect(reads).toBe(12);
  });
});

describe("the answer to a client while the database is down", () => {
  it("is SERVICE_UNAVAILABLE with HTTP 503 and Retry-After, not a masked error", () => {
    const { logger } = recordingLogger();
    const masked = createMaskError(logger as unknown as pino.Logger)(refused()) as unknown as {
      message: string;
      extensions: Record<string, unknown>;
    };
    expect(masked.message).toBe("the database is unavailable; retry shortly");
    expect(masked.extensions).toEqual({
      code: "SERVICE_UNAVAILABLE",
      http: { status: 503, headers: { "retry-after": "1" } },
    });
  });
});

describe("breaker views while Redis is down", () => {
  it("are read again after 1 s, as without a shared bus, and trusted again once it is back", () => {
    let available = false;
    const bus = {
      ...createMemoryBus(),
      shared: true,
      health: () => ({ available, reason: available ? null : "Redis unavailable: x" }),
    };
    const guard = new BreakerGuard({} as Store, { bus, instanceId: "a" });
    expect(guard.maxAgeMs).toBe(1000);
    available = true;
    expect(guard.maxAgeMs).toBe(Number.POSITIVE_INFINITY);
  });
});
