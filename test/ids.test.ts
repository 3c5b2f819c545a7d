/** Ids sort in the order they were made (keyset pagination, newest first, relies on it). */
import { expect, it, vi } from "vitest";
import { newId } from "../src/store/ids.ts";

it("makes UUIDv7s that sort in creation order, many per millisecond", () => {
  const made = Array.from({ length: 20_000 }, () => newId());
  for (const id of made)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect([...made].sort()).toEqual(made);
  expect(new Set(made).size).toBe(made.length);
});

it("keeps the order when the clock steps back, and carries the time in the first 48 bits", () => {
  const at = Date.now() + 60_000;
  const clock = vi.spyOn(Date, "now").mockReturnValue(at);
  try {
    const first = newId();
    clock.mockReturnValue(at - 5000);
    const second = newId();
    clock.mockReturnValue(at + 1);
    const third = newId();
    expect([first, second, third].sort()).toEqual([first, second, third]);
    expect(Number.parseInt(first.replace(/-/g, "").slice(0, 12), 16)).toBe(at);
    expect(Number.parseInt(third.replace(/-/g, "").slice(0, 12), 16)).toBe(at + 1);
  } finally {
    clock.mockRestore();
  }
});
