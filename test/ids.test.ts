/** Ids sort in the order they were made (keyset pagination, newest first, relies on it). */
import { expect, it } from "vitest";
import { newId } from "../src/store/ids.ts";

it("makes UUIDv7s that sort in creation order, many per millisecond", () => {
  const made = Array.from({ length: 20_000 }, () => newId());
  for (const id of made)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect([...made].sort()).toEqual(made);
  expect(new Set(made).size).toBe(made.length);
});
