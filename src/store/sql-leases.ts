/**
 * Run leases and cancel requests in SQL: which instance executes a run (see
 * engine/ownership.ts). Each change is one conditional UPDATE, atomic on SQLite and PostgreSQL
 * alike.
 */

import type { RunRecord } from "../domain/records.ts";
import { runFromRow } from "./codec.ts";
import { ACTIVE_STATUS_SQL, SqlBase } from "./sql-base.ts";
import type { LeaseArgs } from "./types.ts";

export abstract class SqlLeases extends SqlBase {
  abstract getRuns(ids: readonly string[]): Promise<(RunRecord | null)[]>;

  async claimRun(
    runId: string,
    { ownerId, now, leaseUntil }: LeaseArgs,
  ): Promise<RunRecord | null> {
    const rows = await this.sql.transaction((tx) =>
      tx.query(
        `UPDATE "PipelineRun" SET "ownerId" = ?, "leaseExpiresAt" = ? WHERE "id" = ? AND ${ACTIVE_STATUS_SQL} AND ("ownerId" IS NULL OR "ownerId" = ? OR "leaseExpiresAt" < ?) RETURNING *`,
        [ownerId, leaseUntil, runId, ownerId, now],
      ),
    );
    return rows[0] ? runFromRow(rows[0]) : null;
  }

  async claimRuns(limit: number, { ownerId, now, leaseUntil }: LeaseArgs): Promise<RunRecord[]> {
    if (limit <= 0) return [];
    // SKIP LOCKED lets several instances claim at once without waiting on each other; SQLite
    // has one writer at a time and needs no such clause.
    const lock = this.sql.dialect === "postgresql" ? "FOR UPDATE SKIP LOCKED" : "";
    const rows = await this.sql.transaction((tx) =>
      tx.query(
        `UPDATE "PipelineRun" SET "ownerId" = ?, "leaseExpiresAt" = ? WHERE "id" IN (SELECT "id" FROM "PipelineRun" WHERE ${ACTIVE_STATUS_SQL} AND ("ownerId" IS NULL OR "leaseExpiresAt" < ?) ORDER BY "id" LIMIT ? ${lock}) RETURNING *`,
        [ownerId, leaseUntil, now, limit],
      ),
    );
    return rows.map((row) => runFromRow(row)).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async renewLeases(
    runIds: readonly string[],
    { ownerId, leaseUntil }: LeaseArgs,
  ): Promise<string[]> {
    if (runIds.length === 0) return [];
    const [condition, param] = this.inList(`"id"`, runIds);
    const rows = await this.sql.transaction((tx) =>
      tx.query<{ id: string }>(
        `UPDATE "PipelineRun" SET "leaseExpiresAt" = ? WHERE "ownerId" = ? AND ${condition} AND ${ACTIVE_STATUS_SQL} RETURNING "id"`,
        [leaseUntil, ownerId, param],
      ),
    );
    return rows.map((row) => String(row.id));
  }

  async releaseRuns(runIds: readonly string[], ownerId: string): Promise<void> {
    if (runIds.length === 0) return;
    const [condition, param] = this.inList(`"id"`, runIds);
    await this.sql.transaction((tx) =>
      tx.execute(
        `UPDATE "PipelineRun" SET "ownerId" = NULL, "leaseExpiresAt" = NULL WHERE "ownerId" = ? AND ${condition}`,
        [ownerId, param],
      ),
    );
  }

  async requestCancel(runId: string): Promise<RunRecord | null> {
    await this.sql.transaction((tx) =>
      tx.execute(
        `UPDATE "PipelineRun" SET "cancelRequested" = ? WHERE "id" = ? AND ${ACTIVE_STATUS_SQL}`,
        [true, runId],
      ),
    );
    const [run] = await this.getRuns([runId]);
    return run ?? null;
  }

  async cancelRequested(runIds: readonly string[]): Promise<string[]> {
    if (runIds.length === 0) return [];
    const [condition, param] = this.inList(`"id"`, runIds);
    const rows = await this.sql.query<{ id: string }>(
      `SELECT "id" FROM "PipelineRun" WHERE "cancelRequested" = ? AND ${condition}`,
      [true, param],
    );
    return rows.map((row) => String(row.id));
  }
}
