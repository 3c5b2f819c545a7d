/**
 * The Redis bus through Redis going away, on a redis-server of the test's own: publishing and
 * subscribing while it is down neither throw nor reject unheard; the outage is logged once and
 * its end once; health() says so meanwhile; a channel subscribed during the outage is
 * subscribed on the return and carries messages again.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunEventRecord } from "../src/domain/records.ts";
import type { EventBus } from "../src/engine/bus.ts";
import { createRedisBus } from "../src/engine/redis-bus.ts";
import { findRedisServer, type OwnService, startOwnRedis } from "./helpers/own-services.ts";
import { REQUIRE_SERVICES } from "./helpers/services.ts";
import { waitFor } from "./helpers/wait.ts";

const redisBin = findRedisServer();
if (!redisBin && !REQUIRE_SERVICES)
  console.warn("\n[tests] redis-server not found: test/redis-outage.test.ts is SKIPPED\n");

const event = (runId: string, seq: number): RunEventRecord => ({
  runId,
  seq,
  type: "NODE_STARTED",
  nodeId: "n",
  attempt: 1,
  at: new Date(0),
  data: null,
});

describe.skipIf(!redisBin && !REQUIRE_SERVICES)("the Redis bus while Redis is down", () => {
  let redis: OwnService;
  let publisher: EventBus;
  let subscriber: EventBus;
  const lines: string[] = [];
  const at =
    (level: string) =>
    (...args: unknown[]): void => {
      lines.push(`${level} ${args.find((a) => typeof a === "string")}`);
    };
  const logger = { warn: at("warn"), info: at("info") } as unknown as Parameters<
    typeof createRedisBus
  >[1];
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);

  beforeAll(async () => {
    if (!redisBin) throw new Error("redis-server not found");
    process.on("unhandledRejection", onRejection);
    redis = await startOwnRedis(redisBin);
    [publisher, subscriber] = await Promise.all([
      createRedisBus(redis.url, logger),
      createRedisBus(redis.url),
    ]);
  });
  afterAll(async () => {
    process.off("unhandledRejection", onRejection);
    await publisher?.close();
    await subscriber?.close();
    await redis?.destroy();
  });

  it("drops what is published meanwhile, logs the outage once, and carries messages again after", async () => {
    const before: number[] = [];
    subscriber.onRunEvent("r1", (e) => before.push(e.seq));
    await waitFor(
      "a message through Redis",
      () => {
        publisher.publish("r1", [event("r1", 1)]);
        return before.length > 0;
      },
      { intervalMs: 50 },
    );

    await redis.stop();
    await waitFor("the outage to be seen", () => !publisher.health().available);
    expect(publisher.health().reason).toMatch(/^Redis unavailable: /);
    // While down: publishing, subscribing and cancel signals fail quietly.
    const during: number[] = [];
    subscriber.onRunEvent("r2", (e) => during.push(e.seq));
    for (let seq = 2; seq <= 20; seq++) publisher.publish("r1", [event("r1", seq)]);
    publisher.publishCancel("r1");
    publisher.publishWork();
    await new Promise((resolve) => setImmediate(resolve));

    await redis.start();
    await waitFor(
      "the bus back",
      () => publisher.health().available && subscriber.health().available,
      {
        timeoutMs: 10_000,
      },
    );
    await waitFor(
      "a message on the channel subscribed during the outage",
      () => {
        publisher.publish("r2", [event("r2", 1)]);
        return during.length > 0;
      },
      { intervalMs: 50 },
    );
    expect(rejections).toEqual([]);
    expect(lines.filter((l) => l.startsWith("warn Redis unavailable"))).toHaveLength(1);
    expect(lines.filter((l) => /^info Redis available again after \d+ ms$/.test(l))).toHaveLength(
      1,
    );
  });
});
