/** combineHooks: every observer is called in turn, and a failing one is logged once and skipped. */

import { Writable } from "node:stream";
import pino from "pino";
import { expect, it } from "vitest";
import type { RunEventRecord } from "../src/domain/records.ts";
import { combineHooks } from "../src/engine/hooks.ts";

const event = (seq: number): RunEventRecord => ({
  runId: "r",
  seq,
  type: "NODE_SKIPPED",
  nodeId: "n",
  attempt: null,
  at: new Date(0),
  data: { reason: "no live incoming edge" },
});

it("calls each observer, logs a failing one once per hook, and merges outgoing headers", () => {
  const logged: string[] = [];
  const logger = pino(
    { level: "error" },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        logged.push(JSON.parse(chunk.toString("utf8")).msg);
        done();
      },
    }),
  );
  const seen: number[] = [];
  const hooks = combineHooks(logger, [
    {
      onEvent: () => {
        throw new Error("exporter down");
      },
      outgoingHeaders: () => ({ traceparent: "a", "x-one": "1" }),
    },
    { onEvent: (e) => seen.push(e.seq), outgoingHeaders: () => ({ traceparent: "b" }) },
    {
      outgoingHeaders: () => {
        throw new Error("no context");
      },
    },
  ]);
  hooks.onEvent?.(event(1));
  hooks.onEvent?.(event(2));
  expect(seen).toEqual([1, 2]);
  expect(hooks.outgoingHeaders?.("r", "n", 1)).toEqual({ traceparent: "b", "x-one": "1" });
  expect(logged).toEqual([
    "an engine observer failed; ignoring it",
    "an engine observer failed; ignoring it",
  ]);
  expect(hooks.onCommit).toBeUndefined();
});
