/**
 * PostgreSQL's named statements in the SQL layer: each text is prepared once per connection,
 * at most 200 texts are, a table changed under a prepared `SELECT *` (a migration by another
 * instance) is survived outside a transaction, and DATABASE_PREPARED_STATEMENTS=off prepares
 * nothing.
 */
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createPgDriver, type SqlDriver } from "../src/store/sql.ts";
import { createTestDatabase, postgresAnswers, type TestDatabase } from "./helpers/databases.ts";

describe.skipIf(!postgresAnswers)("named statements on postgresql", () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  beforeEach(async () => {
    db = await createTestDatabase("postgresql");
    // One connection: what the driver prepared is what that connection lists.
    pool = new pg.Pool({ connectionString: db.url, max: 1 });
    await pool.query(`CREATE TABLE "Probe" ("id" int PRIMARY KEY, "name" text)`);
    await pool.query(`INSERT INTO "Probe" VALUES (1, 'one'), (2, 'two')`);
  });
  afterEach(async () => {
    await pool.end();
    await db.drop();
  });

  /** The statements the connection holds prepared, by text. */
  const preparedTexts = async () =>
    (await pool.query<{ statement: string }>(`SELECT statement FROM pg_prepared_statements`)).rows
      .map((row) => row.statement)
      .sort();

  it("prepares each text once and answers it the same", async () => {
    const sql = createPgDriver(pool);
    const byId = `SELECT "name" FROM "Probe" WHERE "id" = ?`;
    const answers = [];
    for (const id of [1, 2, 1]) answers.push(await sql.query<{ name: string }>(byId, [id]));
    expect(answers.map((rows) => rows.map((row) => row.name))).toEqual([["one"], ["two"], ["one"]]);
    expect(await sql.execute(`UPDATE "Probe" SET "name" = ? WHERE "id" = ?`, ["uno", 1])).toBe(1);
    expect(await preparedTexts()).toEqual([
      `SELECT "name" FROM "Probe" WHERE "id" = $1`,
      `UPDATE "Probe" SET "name" = $1 WHERE "id" = $2`,
    ]);
    expect(sql.stats.queries).toBe(4);
  });

  it("prepares at most 200 texts per pool and sends the others unnamed", async () => {
    const sql = createPgDriver(pool);
    const answers: number[] = [];
    for (let i = 0; i < 210; i++) {
      const [row] = await sql.query<{ n: number }>(`SELECT ?::int + ${i} AS n`, [1]);
      answers.push(row!.n);
    }
    expect(answers).toEqual(Array.from({ length: 210 }, (_, i) => i + 1));
    expect(await preparedTexts()).toHaveLength(200);
  });

  it("survives a column added under a prepared SELECT *, outside a transaction; inside one the statement fails and the next call works", async () => {
    const sql = createPgDriver(pool);
    const all = `SELECT * FROM "Probe" WHERE "id" = ?`;
    expect(await sql.query(all, [2])).toEqual([{ id: 2, name: "two" }]);
    await pool.query(`ALTER TABLE "Probe" ADD COLUMN "size" int NOT NULL DEFAULT 7`);
    expect(await sql.query(all, [2])).toEqual([{ id: 2, name: "two", size: 7 }]);

    const inTransaction = `SELECT * FROM "Probe" WHERE "id" = ? AND "id" > 0`;
    await sql.transaction((tx) => tx.query(inTransaction, [1]));
    await pool.query(`ALTER TABLE "Probe" ADD COLUMN "colour" text`);
    await expect(sql.transaction((tx) => tx.query(inTransaction, [1]))).rejects.toMatchObject({
      code: "0A000",
    });
    expect(
      await sql.transaction((tx) =>
        tx.query<{ colour: string | null }>(inTransaction, [1]).then((r) => r[0]?.colour),
      ),
    ).toBeNull();
  });

  it("prepares nothing with preparedStatements off", async () => {
    const sql: SqlDriver = createPgDriver(pool, undefined, undefined, {
      preparedStatements: false,
    });
    expect(await sql.query(`SELECT "name" FROM "Probe" WHERE "id" = ?`, [1])).toEqual([
      { name: "one" },
    ]);
    expect(await preparedTexts()).toEqual([]);
  });
});
