/**
 * The bus through Redis (`@graphql-yoga/redis-event-target` over two ioredis connections),
 * made to live through Redis going away:
 *
 * - the event target fires PUBLISH, SUBSCRIBE and UNSUBSCRIBE and never looks at their
 *   promises; it is given thin wrappers of the clients whose commands report failures here
 *   instead of rejecting unheard (an unhandled rejection ends the process);
 * - with no offline queue a command fails at once while Redis is down: nothing piles up, and
 *   what is lost is only a signal (subscribers read the store, see stream.ts; cancel requests
 *   are also on the run row; idle instances poll for work);
 * - the channels wanted are subscribed again each time the subscriber connection is ready,
 *   those whose SUBSCRIBE failed during the outage included;
 * - the outage is logged once when it begins and once when it ends, and `health()` says
 *   whether messages get through (readiness reports it);
 * - reconnection is tried every 50 ms × attempts, at most every 500 ms, so that the bus is
 *   back within about half a second of Redis.
 */
import { createRedisEventTarget } from "@graphql-yoga/redis-event-target";
import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import { type BusEvent, type BusHealth, type BusTarget, busOn, type EventBus } from "./bus.ts";

/** Longest wait between two reconnection attempts. */
const MAX_RECONNECT_DELAY_MS = 500;

type BusLogger = Pick<Logger, "warn" | "info">;

/** Tracks one outage at a time over both connections, and logs its start and end once. */
class RedisHealth {
  #down: { since: number; reason: string } | null = null;
  #closed = false;

  constructor(
    private readonly clients: readonly Redis[],
    private readonly logger: BusLogger | undefined,
  ) {}

  failed(error: unknown): void {
    if (this.#down || this.#closed) return;
    const reason = error instanceof Error ? error.message : String(error);
    this.#down = { since: Date.now(), reason };
    this.logger?.warn(
      { err: error },
      "Redis unavailable: live events and cancel signals go through the database until it returns",
    );
  }

  ready(): void {
    if (!this.#down || this.clients.some((client) => client.status !== "ready")) return;
    const outageMs = Date.now() - this.#down.since;
    this.#down = null;
    this.logger?.info({ outageMs }, `Redis available again after ${outageMs} ms`);
  }

  health(): BusHealth {
    return this.#down
      ? { available: false, reason: `Redis unavailable: ${this.#down.reason}` }
      : { available: true, reason: null };
  }

  close(): void {
    this.#closed = true;
  }
}

/** The bus through Redis; resolves once both connections are up. */
export async function createRedisBus(redisUrl: string, logger?: BusLogger): Promise<EventBus> {
  const options: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 50, MAX_RECONNECT_DELAY_MS),
  };
  const publishClient = new Redis(redisUrl, options);
  const subscribeClient = new Redis(redisUrl, options);
  const health = new RedisHealth([publishClient, subscribeClient], logger);
  let connected = false;
  // Without an 'error' listener ioredis's connection errors would end the process.
  for (const client of [publishClient, subscribeClient]) {
    client.on("error", (error: Error) => {
      if (connected) health.failed(error);
    });
    client.on("close", () => {
      if (connected) health.failed(new Error("connection closed"));
    });
    client.on("ready", () => health.ready());
  }
  const wanted = new Set<string>();
  subscribeClient.on("ready", () => {
    if (connected && wanted.size > 0)
      subscribeClient.subscribe(...wanted).catch((error: unknown) => health.failed(error));
  });
  await Promise.all([publishClient.connect(), subscribeClient.connect()]);
  connected = true;

  // Only what the event target calls: publish on one client; on, subscribe and unsubscribe
  // on the other.
  const publisher = {
    publish: (channel: string, message: string) =>
      publishClient.publish(channel, message).catch((error: unknown) => {
        health.failed(error);
        return 0;
      }),
  };
  const subscriber = {
    on: (event: string, listener: Parameters<Redis["on"]>[1]) => {
      subscribeClient.on(event, listener);
      return subscriber;
    },
    subscribe: (...channels: string[]) => {
      for (const channel of channels) wanted.add(channel);
      return subscribeClient.subscribe(...channels).catch((error: unknown) => {
        health.failed(error);
        return 0;
      });
    },
    unsubscribe: (...channels: string[]) => {
      for (const channel of channels) wanted.delete(channel);
      return subscribeClient.unsubscribe(...channels).catch((error: unknown) => {
        health.failed(error);
        return 0;
      });
    },
  };
  const target = createRedisEventTarget<BusEvent>({
    publishClient: publisher as unknown as Redis,
    subscribeClient: subscriber as unknown as Redis,
  }) as unknown as BusTarget;
  const bus = busOn(target, false);
  return {
    ...bus,
    health: () => health.health(),
    close: async () => {
      health.close();
      publishClient.disconnect();
      subscribeClient.disconnect();
    },
  };
}
