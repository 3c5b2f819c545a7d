/**
 * Runs, node runs and events in SQL: the executor's hot path (leases are in sql-leases.ts). Shared by the SQLite and
 * PostgreSQL stores; statements are written once (see sql.ts for placeholders and dialects).
 */

import { LRUCache } from "lru-cache";
import type { NodeRunRecord, RunEventRecord, RunRecord } from "../domain/records.ts";
import { counterOf, type RunStatus, TERMINAL_RUN_STATUSES } from "../domain/status.ts";
import {
  cachedDefinition,
  definitionKey,
  eventFromRow,
  nodeRunColumns,
  nodeRunsFromRows,
  peekDefinition,
  runFromRow,
} from "./codec.ts";
import type { SqlColumn, SqlExecutor, SqlValue } from "./sql.ts";
import { groupBy, page } from "./sql-base.ts";
import { commitInOneStatement } from "./sql-commit-pg.ts";
import { SqlLeases } from "./sql-leases.ts";
import {
  EVENT_COLUMNS,
  eventRow,
  NODE_RUN_COLUMNS,
  NODE_RUN_UPSERT,
  nodeRunRow,
} from "./sql-rows.ts";
import { insertRuns, insertRunsAtOnce } from "./sql-run-create.ts";
import { applyRunPatchesAsJson, applyRunPatchesTogether } from "./sql-run-patches.ts";
import { latestRunsQuery, listRunsQuery, RUN_COLUMNS } from "./sql-run-queries.ts";
import type {
  CommitOutcome,
  NewRun,
  NewRunRequest,
  NodeRunWrite,
  Page,
  RunFilter,
  RunPatch,
  WriteBatch,
} from "./types.ts";
import { StoreError } from "./types.ts";

const TERMINAL = [...TERMINAL_RUN_STATUSES];
/** The run aggregate on the SQL layer; the full store (sql-store.ts) extends it. */
export abstract class SqlRuns extends SqlLeases {
  async createRun(
    run: NewRun,
    events: readonly Omit<RunEventRecord, "runId">[],
    nodeRuns: readonly Omit<NodeRunWrite, "runId">[] = [],
  ): Promise<RunRecord> {
    const [created] = await this.createRuns([{ run, events, nodeRuns }]);
    if (created instanceof StoreError) throw created;
    return created!;
  }

  async createRuns(requests: readonly NewRunRequest[]): Promise<(RunRecord | StoreError)[]> {
    if (requests.length === 0) return [];
    if (this.sql.dialect === "postgresql") {
      const created = await insertRunsAtOnce(this.sql, requests);
      if (created) return created;
    }
    return this.sql.transaction(async (tx) => {
      const { records, inserted } = await insertRuns(tx, this.sql.dialect, requests);
      await tx.insertMany(
        "RunEvent",
        EVENT_COLUMNS,
        inserted.flatMap(({ id, request }) =>
          (request.events ?? []).map((e) => eventRow({ ...e, runId: id })),
        ),
      );
      await tx.insertMany(
        "NodeRun",
        NODE_RUN_COLUMNS,
        inserted.flatMap(({ id, request }) =>
          (request.nodeRuns ?? []).map((n) => nodeRunRow({ ...n, runId: id })),
        ),
      );
      return records;
    });
  }

  async getRuns(ids: readonly string[]): Promise<(RunRecord | null)[]> {
    if (ids.length === 0) return [];
    const [condition, param] = this.inList(`"id"`, ids);
    const rows = await this.sql.query(
      `SELECT ${RUN_COLUMNS} FROM "PipelineRun" WHERE ${condition}`,
      [param],
    );
    const byId = new Map((await this.#runsWithoutDefinitions(rows)).map((run) => [run.id, run]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /**
   * Run rows read without their definition (the largest column): the definitions they need
   * come from the cache of parsed versions, or, for versions not cached, from one more query.
   */
  async #runsWithoutDefinitions(rows: Record<string, unknown>[]): Promise<RunRecord[]> {
    const missing = new Map<string, string>();
    for (const row of rows) {
      const key = definitionKey(row.pipelineId, row.pipelineVersion);
      if (!peekDefinition(key) && !missing.has(key)) missing.set(key, String(row.id));
    }
    if (missing.size > 0) {
      const [condition, param] = this.inList(`"id"`, [...missing.values()]);
      const found = await this.sql.query(
        `SELECT "pipelineId", "pipelineVersion", "definition" FROM "PipelineRun" WHERE ${condition}`,
        [param],
      );
      for (const row of found)
        cachedDefinition(
          definitionKey(row.pipelineId, row.pipelineVersion),
          String(row.definition),
        );
    }
    return rows.map((row) =>
      runFromRow(row, peekDefinition(definitionKey(row.pipelineId, row.pipelineVersion))),
    );
  }

  async listRuns(filter: RunFilter): Promise<Page<RunRecord>> {
    const { text, params } = listRunsQuery(this.sql.dialect, filter);
    const rows = await this.sql.query(text, params);
    return page(await this.#runsWithoutDefinitions(rows), filter.first);
  }

  async latestRuns(
    pipelineIds: readonly string[],
    first: number,
  ): Promise<Map<string, Page<RunRecord>>> {
    const result = new Map<string, Page<RunRecord>>();
    if (pipelineIds.length === 0) return result;
    const { text, params } = latestRunsQuery(this.sql.dialect, pipelineIds, first + 1);
    const rows = await this.sql.query(text, params);
    const groups = groupBy(
      pipelineIds,
      await this.#runsWithoutDefinitions(rows),
      (run) => run.pipelineId,
    );
    for (const [id, runs] of groups) result.set(id, page(runs, first));
    return result;
  }

  /**
   * Node runs of finished runs never change again: kept in memory (least recently used out),
   * so that dashboards re-reading the same finished runs do not re-read their rows. Safe with
   * several instances, since nobody writes them any more.
   */
  readonly #finishedNodeRuns = new LRUCache<string, NodeRunRecord[]>({
    maxSize: 50_000,
    // Weighed by node runs, not by runs: a 10,000-node run counts 10,000.
    sizeCalculation: (records) => Math.max(1, records.length),
  });

  async getNodeRuns(runIds: readonly string[]): Promise<Map<string, NodeRunRecord[]>> {
    const result = new Map<string, NodeRunRecord[]>();
    const missing: string[] = [];
    for (const id of runIds) {
      const cached = this.#finishedNodeRuns.get(id);
      if (cached) {
        result.set(id, cached);
      } else {
        result.set(id, []);
        missing.push(id);
      }
    }
    if (missing.length === 0) return result;
    const [condition, param] = this.inList(`r."id"`, missing);
    const rows = await this.sql.query(
      `SELECT n.*, r."status" AS "runStatus" FROM "PipelineRun" r JOIN "NodeRun" n ON n."runId" = r."id" WHERE ${condition}`,
      [param],
    );
    const finished = new Set<string>();
    for (const row of rows)
      if (TERMINAL_RUN_STATUSES.has(row.runStatus as never)) finished.add(String(row.runId));
    for (const nodeRun of nodeRunsFromRows(rows)) result.get(nodeRun.runId)?.push(nodeRun);
    for (const id of finished) this.#finishedNodeRuns.set(id, result.get(id)!);
    return result;
  }

  /** Drops deleted runs from the cache of finished node runs. */
  protected forgetNodeRuns(runIds: readonly string[]): void {
    for (const id of runIds) this.#finishedNodeRuns.delete(id);
  }

  async getEvents(runId: string, after: number, limit = 100_000): Promise<RunEventRecord[]> {
    const rows = await this.sql.query(
      `SELECT * FROM "RunEvent" WHERE "runId" = ? AND "seq" > ? ORDER BY "seq" LIMIT ?`,
      [runId, after, limit],
    );
    return rows.map(eventFromRow);
  }

  async lastSeq(runId: string): Promise<number> {
    const rows = await this.sql.query<{ seq: number | null }>(
      `SELECT MAX("seq") AS "seq" FROM "RunEvent" WHERE "runId" = ?`,
      [runId],
    );
    return Number(rows[0]?.seq ?? 0);
  }

  async commit(batch: WriteBatch): Promise<CommitOutcome> {
    if (batch.events.length === 0 && batch.nodeRuns.length === 0 && batch.runs.length === 0) {
      return { rejectedRuns: [] };
    }
    if (this.sql.dialect === "postgresql") {
      const outcome = await commitInOneStatement(this.sql, batch);
      if (outcome) return outcome;
    }
    return this.sql.transaction(async (tx) => {
      let { events, nodeRuns, runs } = batch;
      let rejectedRuns: string[] = [];
      if (batch.ownerId !== undefined) {
        const ids = [
          ...new Set([
            ...events.map((e) => e.runId),
            ...nodeRuns.map((n) => n.runId),
            ...runs.map((r) => r.id),
          ]),
        ];
        const [condition, param] = this.inList(`"id"`, ids);
        // FOR UPDATE: a claim by another instance waits for this transaction to end.
        const lock = this.sql.dialect === "postgresql" ? "FOR UPDATE" : "";
        const held = new Set(
          (
            await tx.query<{ id: string }>(
              `SELECT "id" FROM "PipelineRun" WHERE ${condition} AND "ownerId" = ? ${lock}`,
              [param, batch.ownerId],
            )
          ).map((row) => String(row.id)),
        );
        rejectedRuns = ids.filter((id) => !held.has(id));
        if (rejectedRuns.length > 0) {
          events = events.filter((e) => held.has(e.runId));
          nodeRuns = nodeRuns.filter((n) => held.has(n.runId));
          runs = runs.filter((r) => held.has(r.id));
        }
      }
      // An event already stored is skipped rather than failing the other runs of the batch.
      await tx.insertMany(
        "RunEvent",
        EVENT_COLUMNS,
        events.map(eventRow),
        "ON CONFLICT DO NOTHING",
      );
      await tx.insertMany("NodeRun", NODE_RUN_COLUMNS, nodeRuns.map(nodeRunRow), NODE_RUN_UPSERT);
      // Rows are locked in id order (runs, then pipelines) by every writer: two instances
      // committing at once wait for each other but never deadlock.
      const counters = new Map<string, { success: number; error: number }>();
      const sorted = [...runs].sort((a, b) => (a.id < b.id ? -1 : 1));
      const endings =
        this.sql.dialect === "postgresql"
          ? await applyRunPatchesTogether(tx, sorted)
          : await applyRunPatchesAsJson(tx, sorted);
      for (const ended of endings) {
        const counted = counterOf(ended.status);
        if (!counted) continue;
        const counter = counters.get(ended.pipelineId) ?? { success: 0, error: 0 };
        if (counted === "successCount") counter.success++;
        else counter.error++;
        counters.set(ended.pipelineId, counter);
      }
      for (const [pipelineId, { success, error }] of [...counters].sort(([a], [b]) =>
        a < b ? -1 : 1,
      )) {
        await tx.execute(
          `UPDATE "Pipeline" SET "successCount" = "successCount" + ?, "errorCount" = "errorCount" + ? WHERE "id" = ?`,
          [success, error, pipelineId],
        );
      }
      return { rejectedRuns };
    });
  }
}
