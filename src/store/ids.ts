/**
 * UUIDv7 ids (RFC 9562): 48 bits of Unix milliseconds, then a 12-bit counter and 62 random
 * bits. Ids made by one process sort in creation order, which keyset pagination relies on.
 */
import { randomBytes } from "node:crypto";

let lastMs = 0;
let counter = 0;

/** A new time-ordered id. */
export function newId(now = Date.now()): string {
  let ms = now;
  if (ms <= lastMs) {
    // Same millisecond (or the clock stepped back): keep order with the counter, and borrow
    // the next millisecond once the counter's 12 bits run out.
    ms = lastMs;
    counter++;
    if (counter > 0xfff) {
      ms = ++lastMs;
      counter = 0;
    }
  } else {
    lastMs = ms;
    counter = 0;
  }
  const bytes = randomBytes(16);
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (counter >> 8);
  bytes[7] = counter & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
