/**
 * Ids are UUIDv7 (RFC 9562, the `uuid` package): 48 bits of Unix milliseconds, then a counter
 * seeded at random each millisecond. Ids made by one process sort in creation order, even
 * within a millisecond or when the clock steps back, which keyset pagination relies on.
 */
import { v7 } from "uuid";

/** A new time-ordered id. */
export function newId(): string {
  return v7();
}
