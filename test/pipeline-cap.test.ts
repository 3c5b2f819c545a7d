/**
 * MAX_PIPELINES under concurrent createPipeline calls: the count is taken inside the insert's
 * transaction, so a burst of creates at the last free places stores exactly the cap, on every
 * store, and on PostgreSQL also across two instances (two connection pools) at once.
 */
import { describe, expect, it } from "vitest";
import { AppError } from "../src/domain/errors.ts";
import { MemoryStore } from "../src/store/memory.ts";
import type { Store } from "../src/store/types.ts";
import { createTestDatabase, postgresAnswers } from "./helpers/databases.ts";
import { startTestServer } from "./helpers/server.ts";
import { definition, describeStore } from "./helpers/store-fixtures.ts";

const CAP = 5;
const ATTEMPTS = 24;

/** Fires every create at once; the outcome of each, by kind. */
async function burst(stores: readonly Store[], count: number, maxPipelines: number) {
  const outcomes = await Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      stores[i % stores.length]!.createPipeline(definition(`p${i}`), { maxPipelines }),
    ),
  );
  const refusals = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason] : []));
  return {
    stored: outcomes.filter((o) => o.status === "fulfilled").length,
    refusedCodes: [...new Set(refusals.map((r) => (r instanceof AppError ? r.code : String(r))))],
    refused: refusals.length,
  };
}

describeStore("the pipeline cap", (store) => {
  it(`stores exactly ${CAP} of ${ATTEMPTS} concurrent creates`, async () => {
    await store.createPipeline(definition("first"), { maxPipelines: CAP });
    const outcome = await burst([store], ATTEMPTS, CAP);
    expect(outcome).toEqual({
      stored: CAP - 1,
      refused: ATTEMPTS - CAP + 1,
      refusedCodes: ["LIMIT_REACHED"],
    });
    expect(await store.admin.countPipelines()).toBe(CAP);
  });

  it("admits a create again after a delete, and none without a cap given", async () => {
    const [a] = await Promise.all([
      store.createPipeline(definition("a"), { maxPipelines: 2 }),
      store.createPipeline(definition("b"), { maxPipelines: 2 }),
    ]);
    await expect(store.createPipeline(definition("c"), { maxPipelines: 2 })).rejects.toMatchObject({
      code: "LIMIT_REACHED",
      message: /^2 pipelines are stored, the most MAX_PIPELINES allows/,
    });
    expect(await store.deletePipeline(a.id)).toBe("deleted");
    await store.createPipeline(definition("c"), { maxPipelines: 2 });
    await store.createPipeline(definition("d"));
    expect(await store.admin.countPipelines()).toBe(3);
  });
});

describe.skipIf(!postgresAnswers)("the pipeline cap across two instances on PostgreSQL", () => {
  it(`stores exactly ${CAP} when two stores create at once`, async () => {
    const db = await createTestDatabase("postgresql");
    const stores = [await db.open(), await db.open()];
    try {
      expect(await burst(stores, ATTEMPTS, CAP)).toEqual({
        stored: CAP,
        refused: ATTEMPTS - CAP,
        refusedCodes: ["LIMIT_REACHED"],
      });
      expect(await stores[1]!.admin.countPipelines()).toBe(CAP);
    } finally {
      for (const store of stores) await store.close();
      await db.drop();
    }
  });
});

describe("the pipeline cap through GraphQL", () => {
  it("answers LIMIT_REACHED to all but MAX_PIPELINES of concurrent createPipeline mutations", async () => {
    const store = new MemoryStore();
    const server = await startTestServer(store, { MAX_PIPELINES: String(CAP) });
    try {
      const bodies = await Promise.all(
        Array.from({ length: 12 }, async (_, i) => {
          const response = await server.app.yoga.fetch("http://localhost/graphql", {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              query: `mutation { createPipeline(input: { name: "m${i}", nodes: [{ id: "t", type: TRIGGER }], edges: [] }) { id } }`,
            }),
          });
          return (await response.json()) as { errors?: { extensions?: { code?: string } }[] };
        }),
      );
      const codes = bodies.map((b) => b.errors?.[0]?.extensions?.code ?? "stored");
      expect(codes.filter((c) => c === "stored")).toHaveLength(CAP);
      expect(codes.filter((c) => c === "LIMIT_REACHED")).toHaveLength(12 - CAP);
      expect(await store.admin.countPipelines()).toBe(CAP);
    } finally {
      await server.close();
    }
  });
});
