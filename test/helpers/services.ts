/**
 * Which external services the tests may use. Locally a missing PostgreSQL or Redis skips the
 * suites that need it (with a message); in CI (`REQUIRE_SERVICES=1`, set by .ci/run) it fails
 * them.
 */
import net from "node:net";

export const POSTGRES_URL =
  process.env.TEST_POSTGRES_URL ?? "postgresql://postgres@127.0.0.1:5432/test";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
export const REQUIRE_SERVICES = process.env.REQUIRE_SERVICES === "1";

function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

export async function serviceAvailable(name: "postgres" | "redis"): Promise<boolean> {
  const ok = await reachable(name === "postgres" ? POSTGRES_URL : REDIS_URL);
  if (!ok && REQUIRE_SERVICES) {
    throw new Error(
      `${name} is required (REQUIRE_SERVICES=1) but does not answer at ${name === "postgres" ? POSTGRES_URL : REDIS_URL}`,
    );
  }
  return ok;
}
