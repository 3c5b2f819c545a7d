/**
 * The plans of the run list queries on a history of 20,000 runs: each reads through an index
 * and never scans the runs table, so its cost follows the page, not the history (the figures
 * at 1,000 and 100,000 runs are in `npm run bench`).
 */
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { latestRunsQuery, listRunsQuery, type SqlQuery } from "../src/store/sql-run-queries.ts";
import { availableProviders, createTestDatabase, type TestDatabase } from "./helpers/databases.ts";
import { definition } from "./helpers/store-fixtures.ts";

const providers = (await availableProviders(false)) as ("sqlite" | "postgresql")[];
const RUNS = 20_000;
const STATUSES = ["COMPLETED", "COMPLETED", "COMPLETED", "FAILED", "CANCELLED"];

/** The hot queries, by name. Statuses and pipelines are those seeded below. */
function queries(dialect: "sqlite" | "postgresql", pipelineIds: string[]): [string, SqlQuery][] {
  return [
    ["latest runs of a page of pipelines", latestRunsQuery(dialect, pipelineIds.slice(0, 20), 6)],
    ["newest runs", listRunsQuery(dialect, { first: 20 })],
    ["runs in a status no run has", listRunsQuery(dialect, { first: 20, statuses: ["TIMED_OUT"] })],
    [
      "runs in two statuses",
      listRunsQuery(dialect, { first: 20, statuses: ["FAILED", "CANCELLED"] }),
    ],
    ["runs of one pipeline", listRunsQuery(dialect, { first: 20, pipelineId: pipelineIds[3] })],
    [
      "runs of one pipeline in a status",
      listRunsQuery(dialect, { first: 20, pipelineId: pipelineIds[3], statuses: ["FAILED"] }),
    ],
    [
      "the next page of runs in a status",
      listRunsQuery(dialect, {
        first: 20,
        statuses: ["COMPLETED"],
        after: "0190aaaa-0000-7000-8000-000000010000",
      }),
    ],
  ];
}

describe.each(providers)("run list plans on %s", (provider) => {
  let database: TestDatabase;
  const pipelineIds: string[] = [];
  let explain: (query: SqlQuery) => Promise<string>;
  let close: () => Promise<void> = async () => {};

  beforeAll(async () => {
    database = await createTestDatabase(provider);
    const store = await database.open();
    for (let i = 0; i < 50; i++)
      pipelineIds.push((await store.createPipeline(definition(`p${i}`))).id);
    await store.close();
    const rows = Array.from({ length: RUNS }, (_, i) => [
      `0190aaaa-0000-7000-8000-${String(i).padStart(12, "0")}`,
      pipelineIds[i % pipelineIds.length]!,
      STATUSES[i % STATUSES.length]!,
    ]);
    const definitionText = JSON.stringify(definition("p"));
    const at = new Date(Date.UTC(2026, 0, 1));
    if (provider === "postgresql") {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      await client.query(
        `INSERT INTO "PipelineRun" ("id", "pipelineId", "pipelineVersion", "status", "definition", "createdAt") SELECT id, p, 1, s, $4, $5 FROM unnest($1::text[], $2::text[], $3::text[]) AS t(id, p, s)`,
        [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), definitionText, at],
      );
      await client.query(`ANALYZE "PipelineRun"`);
      explain = async ({ text, params }) => {
        let n = 0;
        const numbered = text.replace(/\?/g, () => `$${++n}`);
        const result = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${numbered}`, params);
        // The plan as text lines, each node with the rows it actually produced in all loops.
        const lines: string[] = [];
        const walk = (node: Record<string, unknown>) => {
          const rows = Number(node["Actual Rows"]) * Number(node["Actual Loops"]);
          lines.push(`${node["Node Type"]} on ${node["Relation Name"] ?? "-"} rows=${rows}`);
          for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? [])
            walk(child);
        };
        walk(result.rows[0]["QUERY PLAN"][0].Plan);
        return lines.join("\n");
      };
      close = () => client.end();
    } else {
      const db = new Database(database.url.replace(/^file:/, ""));
      const insert = db.prepare(
        `INSERT INTO "PipelineRun" ("id", "pipelineId", "pipelineVersion", "status", "definition", "createdAt") VALUES (?, ?, 1, ?, ?, ?)`,
      );
      db.transaction(() => {
        for (const [id, p, s] of rows) insert.run(id, p, s, definitionText, at.toISOString());
      })();
      db.exec("ANALYZE");
      explain = async ({ text, params }) =>
        (db.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...params) as { detail: string }[])
          .map((r) => r.detail)
          .join("\n");
      close = async () => {
        db.close();
      };
    }
  });
  afterAll(async () => {
    await close();
    await database?.drop();
  });

  it("reads every hot query through an index, never scanning the runs table", async () => {
    const scans: [string, string][] = [];
    for (const [name, query] of queries(provider, pipelineIds)) {
      const plan = await explain(query);
      const scanned =
        provider === "postgresql"
          ? // A sequential scan, or any step of the table producing more than the pages need.
            plan
              .split("\n")
              .some(
                (line) =>
                  /^Seq Scan on PipelineRun/.test(line) ||
                  (/on PipelineRun/.test(line) && Number(/rows=(\d+)/.exec(line)?.[1]) > 200),
              )
          : // A SCAN of the table without an index visits every row.
            plan.split("\n").some((line) => /^SCAN (PipelineRun|r)\b(?!.*USING)/.test(line));
      const indexed =
        provider === "postgresql" ? /Index (Only )?Scan/.test(plan) : /USING/.test(plan);
      if (scanned || !indexed) scans.push([name, plan]);
    }
    expect(scans).toEqual([]);
  });
});
