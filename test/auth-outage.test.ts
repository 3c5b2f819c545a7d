/** Auth through a database outage: what was last known of the keys holds meanwhile. */
import pino from "pino";
import { afterEach, expect, it, vi } from "vitest";
import { loadConfig } from "../src/config.ts";
import { createAuthenticator } from "../src/server/auth.ts";
import type { AdminStore } from "../src/store/admin.ts";

afterEach(() => {
  vi.restoreAllMocks();
});

function authenticatorOn(hasActiveApiKey: () => Promise<boolean>) {
  return createAuthenticator({
    config: loadConfig({ DATABASE_URL: "file::memory:" }),
    admin: { hasActiveApiKey } as unknown as AdminStore,
    logger: pino({ level: "silent" }),
    host: () => "127.0.0.1",
  });
}

const unavailable = () => Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:5432"));

it("keeps a local server's auth off while the database cannot say whether keys exist", async () => {
  let now = Date.now();
  vi.spyOn(Date, "now").mockImplementation(() => now);
  let answer: () => Promise<boolean> = async () => false;
  const auth = authenticatorOn(() => answer());
  expect((await auth.authenticate(undefined, "127.0.0.1", () => undefined)).kind).toBe("local");
  answer = unavailable;
  now += 60_000;
  // Checked again (the value is older than its recheck), the check fails: the last answer holds.
  expect((await auth.authenticate(undefined, "127.0.0.1", () => undefined)).kind).toBe("local");
  expect(await auth.required()).toBe(false);
});

it("refuses to guess when the keys were never read", async () => {
  const auth = authenticatorOn(unavailable);
  await expect(auth.required()).rejects.toThrow(/ECONNREFUSED/);
});
