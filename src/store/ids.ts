/**
 * Ids are UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then a 32-bit counter seeded at
 * random each millisecond (the RFC's method 1, as the `uuid` package's v7 does), then random
 * bits. Ids made by one process sort in creation order, even within a millisecond or when the
 * clock steps back, which keyset pagination relies on.
 *
 * The random bytes come from a pool refilled 4 KiB at a time: one call into the system's
 * generator per 256 ids rather than per id (runs started by the thousand make an id each, and
 * their events and node runs more).
 */
import { randomFillSync } from "node:crypto";

const POOL_BYTES = 4096;
const pool = new Uint8Array(POOL_BYTES);
let poolAt = POOL_BYTES;
let lastMs = Number.NEGATIVE_INFINITY;
let counter = 0;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function random16(): number {
  if (poolAt + 16 > POOL_BYTES) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const at = poolAt;
  poolAt += 16;
  return at;
}

/** A new time-ordered id. */
export function newId(): string {
  const r = random16();
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    // 31 random bits: room to count up within the millisecond.
    counter = ((pool[r]! & 0x7f) << 24) | (pool[r + 1]! << 16) | (pool[r + 2]! << 8) | pool[r + 3]!;
  } else {
    // Same millisecond, or the clock went back: count on from the last id.
    counter = (counter + 1) | 0;
    if (counter === 0) lastMs++;
  }
  const ms = lastMs;
  const b = [
    (ms / 0x10000000000) & 0xff,
    (ms / 0x100000000) & 0xff,
    (ms / 0x1000000) & 0xff,
    (ms / 0x10000) & 0xff,
    (ms / 0x100) & 0xff,
    ms & 0xff,
    0x70 | ((counter >>> 28) & 0x0f),
    (counter >>> 20) & 0xff,
    0x80 | ((counter >>> 14) & 0x3f),
    (counter >>> 6) & 0xff,
    ((counter << 2) & 0xff) | (pool[r + 4]! & 0x03),
    pool[r + 5]!,
    pool[r + 6]!,
    pool[r + 7]!,
    pool[r + 8]!,
    pool[r + 9]!,
  ];
  let id = "";
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) id += "-";
    id += HEX[b[i]!];
  }
  return id;
}
