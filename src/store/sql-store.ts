/**
 * The store on SQLite or PostgreSQL. Prisma Client owns the pipeline aggregate (typed CRUD);
 * runs, node runs, events, leases and breakers go through the SQL layer on the same
 * connection, because that path is hot (see sql.ts).
 */
import type { PipelineDefinition } from "../engine/definition.ts";
import { TERMINAL_RUN_STATUSES } from "../engine/types.ts";
import {
  breakerFromRow,
  eventFromRow,
  nodeRunFromRow,
  pipelineColumns,
  pipelineFromRow,
  runFromRow,
  stringifyJson,
} from "./codec.ts";
import type { PrismaClient } from "./generated/sqlite/client.ts";
import { newId } from "./ids.ts";
import type { Mutex, SqlColumn, SqlDriver, SqlExecutor, SqlValue } from "./sql.ts";
import type {
  BreakerRecord,
  CommitOutcome,
  DeleteOutcome,
  LeaseArgs,
  NewRun,
  NodeRunRecord,
  Page,
  PageArgs,
  PipelineRecord,
  RunEventRecord,
  RunFilter,
  RunRecord,
  Store,
  WriteBatch,
} from "./types.ts";
import { StoreError } from "./types.ts";

const TERMINAL = [...TERMINAL_RUN_STATUSES];

const EVENT_COLUMNS: readonly SqlColumn[] = [
  { name: "runId", pgType: "text" },
  { name: "seq", pgType: "int4" },
  { name: "type", pgType: "text" },
  { name: "nodeId", pgType: "text" },
  { name: "attempt", pgType: "int4" },
  { name: "at", pgType: "timestamptz" },
  { name: "data", pgType: "text" },
];
const NODE_RUN_COLUMNS: readonly SqlColumn[] = [
  { name: "runId", pgType: "text" },
  { name: "nodeId", pgType: "text" },
  { name: "status", pgType: "text" },
  { name: "attempts", pgType: "int4" },
  { name: "output", pgType: "text" },
  { name: "error", pgType: "text" },
  { name: "startedAt", pgType: "timestamptz" },
  { name: "completedAt", pgType: "timestamptz" },
];
const NODE_RUN_UPSERT = `ON CONFLICT ("runId", "nodeId") DO UPDATE SET "status" = excluded."status", "attempts" = excluded."attempts", "output" = excluded."output", "error" = excluded."error", "startedAt" = excluded."startedAt", "completedAt" = excluded."completedAt"`;

const eventRow = (e: RunEventRecord): SqlValue[] => [
  e.runId,
  e.seq,
  e.type,
  e.nodeId,
  e.attempt,
  e.at,
  e.data === null ? null : JSON.stringify(e.data),
];

const nodeRunRow = (n: NodeRunRecord): SqlValue[] => [
  n.runId,
  n.nodeId,
  n.status,
  n.attempts,
  stringifyJson(n.output),
  n.error,
  n.startedAt,
  n.completedAt,
];

function page<T>(rows: T[], first: number): Page<T> {
  return { items: rows.slice(0, first), hasNextPage: rows.length > first };
}

function groupBy<T>(keys: readonly string[], items: readonly T[], key: (item: T) => string) {
  const groups = new Map<string, T[]>(keys.map((k) => [k, []]));
  for (const item of items) groups.get(key(item))?.push(item);
  return groups;
}

export interface SqlStoreOptions {
  readonly provider: "sqlite" | "postgresql";
  readonly prisma: PrismaClient;
  readonly sql: SqlDriver;
  /** SQLite only: the lock every write on the shared connection takes. */
  readonly writeLock?: Mutex;
  /** Releases the connection. */
  readonly close: () => Promise<void>;
}

export class SqlStore implements Store {
  readonly provider: "sqlite" | "postgresql";
  readonly stats: { queries: number };
  readonly #prisma: PrismaClient;
  readonly #sql: SqlDriver;
  readonly #writeLock: Mutex | undefined;
  readonly #close: () => Promise<void>;

  constructor(options: SqlStoreOptions) {
    this.provider = options.provider;
    this.#prisma = options.prisma;
    this.#sql = options.sql;
    this.stats = options.sql.stats;
    this.#writeLock = options.writeLock;
    this.#close = options.close;
  }

  /** A list parameter: one statement text whatever the number of values. */
  #inList(column: string, values: readonly string[]): [string, SqlValue] {
    return this.#sql.dialect === "postgresql"
      ? [`${column} = ANY(?::text[])`, values as unknown as SqlValue]
      : [`${column} IN (SELECT value FROM json_each(?))`, JSON.stringify(values)];
  }

  /**
   * Prisma's statements on SQLite run on the SQL layer's connection, some awaits after the
   * call: they take the same lock as its transactions, so that they never land inside one.
   */
  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.#writeLock ? this.#writeLock.run(work) : work();
  }

  async createPipeline(definition: PipelineDefinition): Promise<PipelineRecord> {
    const now = new Date();
    const row = await this.#exclusive(() =>
      this.#prisma.pipeline.create({
        data: { id: newId(), ...pipelineColumns(definition), createdAt: now, updatedAt: now },
      }),
    );
    return pipelineFromRow(row);
  }

  async updatePipeline(id: string, definition: PipelineDefinition): Promise<PipelineRecord | null> {
    const rows = await this.#exclusive(() =>
      this.#prisma.pipeline.updateManyAndReturn({
        where: { id },
        data: { ...pipelineColumns(definition), version: { increment: 1 }, updatedAt: new Date() },
      }),
    );
    return rows[0] ? pipelineFromRow(rows[0]) : null;
  }

  async deletePipeline(id: string): Promise<DeleteOutcome> {
    return this.#sql.transaction(async (tx) => {
      // Lock the pipeline first: a createRun of it (which updates its counters) then either
      // finishes before the check below sees its run, or waits and finds the pipeline gone.
      if (this.#sql.dialect === "postgresql") {
        await tx.query(`SELECT "id" FROM "Pipeline" WHERE "id" = ? FOR UPDATE`, [id]);
      }
      const active = await tx.query(
        `SELECT 1 AS "one" FROM "PipelineRun" WHERE "pipelineId" = ? AND "status" IN ('QUEUED', 'RUNNING') LIMIT 1`,
        [id],
      );
      if (active.length > 0) return "has_active_runs";
      // Runs, node runs, events and breakers go with it (ON DELETE CASCADE).
      const deleted = await tx.execute(`DELETE FROM "Pipeline" WHERE "id" = ?`, [id]);
      return deleted > 0 ? "deleted" : "not_found";
    });
  }

  async getPipelines(ids: readonly string[]): Promise<(PipelineRecord | null)[]> {
    if (ids.length === 0) return [];
    const rows = await this.#exclusive(() =>
      this.#prisma.pipeline.findMany({ where: { id: { in: [...ids] } } }),
    );
    const byId = new Map(rows.map((row) => [row.id, pipelineFromRow(row)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  async listPipelines({ first, after }: PageArgs): Promise<Page<PipelineRecord>> {
    const rows = await this.#exclusive(() =>
      this.#prisma.pipeline.findMany({
        where: after ? { id: { lt: after } } : {},
        orderBy: { id: "desc" },
        take: first + 1,
      }),
    );
    return page(rows.map(pipelineFromRow), first);
  }

  async createRun(
    run: NewRun,
    events: readonly Omit<RunEventRecord, "runId">[],
  ): Promise<RunRecord> {
    const id = newId();
    const now = new Date();
    const finished = TERMINAL_RUN_STATUSES.has(run.status);
    await this.#sql.transaction(async (tx) => {
      // The pipeline may have been deleted since the caller read it: a clean NOT_FOUND rather
      // than a foreign-key error. (PostgreSQL: the row lock makes a concurrent delete wait.)
      const lock = this.#sql.dialect === "postgresql" ? "FOR SHARE" : "";
      const exists = await tx.query(`SELECT "id" FROM "Pipeline" WHERE "id" = ? ${lock}`, [
        run.pipelineId,
      ]);
      if (exists.length === 0)
        throw new StoreError("NOT_FOUND", `pipeline "${run.pipelineId}" does not exist`);
      await tx.execute(
        `INSERT INTO "PipelineRun" ("id", "pipelineId", "pipelineVersion", "status", "triggerData", "error", "definition", "createdAt", "startedAt", "completedAt", "cancelRequested") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          id,
          run.pipelineId,
          run.pipelineVersion,
          run.status,
          stringifyJson(run.triggerData),
          run.error,
          JSON.stringify(run.definition),
          now,
          run.startedAt,
          run.completedAt,
          false,
        ],
      );
      await tx.insertMany(
        "RunEvent",
        EVENT_COLUMNS,
        events.map((e) => eventRow({ ...e, runId: id })),
      );
      await tx.execute(
        `UPDATE "Pipeline" SET "runCount" = "runCount" + 1, "successCount" = "successCount" + ?, "errorCount" = "errorCount" + ? WHERE "id" = ?`,
        [
          run.status === "COMPLETED" ? 1 : 0,
          finished && run.status !== "COMPLETED" && run.status !== "CANCELLED" ? 1 : 0,
          run.pipelineId,
        ],
      );
    });
    const [created] = await this.getRuns([id]);
    return created!;
  }

  async getRuns(ids: readonly string[]): Promise<(RunRecord | null)[]> {
    if (ids.length === 0) return [];
    const [condition, param] = this.#inList(`"id"`, ids);
    const rows = await this.#sql.query(`SELECT * FROM "PipelineRun" WHERE ${condition}`, [param]);
    const byId = new Map(rows.map((row) => [String(row.id), runFromRow(row)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  async listRuns({ first, after, pipelineId, statuses }: RunFilter): Promise<Page<RunRecord>> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (pipelineId) {
      where.push(`"pipelineId" = ?`);
      params.push(pipelineId);
    }
    if (statuses && statuses.length > 0) {
      const [condition, param] = this.#inList(`"status"`, statuses);
      where.push(condition);
      params.push(param);
    }
    if (after) {
      where.push(`"id" < ?`);
      params.push(after);
    }
    const rows = await this.#sql.query(
      `SELECT * FROM "PipelineRun" ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY "id" DESC LIMIT ?`,
      [...params, first + 1],
    );
    return page(rows.map(runFromRow), first);
  }

  async latestRuns(
    pipelineIds: readonly string[],
    first: number,
  ): Promise<Map<string, Page<RunRecord>>> {
    const result = new Map<string, Page<RunRecord>>();
    if (pipelineIds.length === 0) return result;
    const [condition, param] = this.#inList(`"pipelineId"`, pipelineIds);
    const rows = await this.#sql.query(
      `SELECT * FROM (SELECT r.*, ROW_NUMBER() OVER (PARTITION BY "pipelineId" ORDER BY "id" DESC) AS "rowNumber" FROM "PipelineRun" r WHERE ${condition}) ranked WHERE "rowNumber" <= ? ORDER BY "pipelineId", "id" DESC`,
      [param, first + 1],
    );
    const groups = groupBy(pipelineIds, rows.map(runFromRow), (run) => run.pipelineId);
    for (const [id, runs] of groups) result.set(id, page(runs, first));
    return result;
  }

  async getNodeRuns(runIds: readonly string[]): Promise<Map<string, NodeRunRecord[]>> {
    if (runIds.length === 0) return new Map();
    const [condition, param] = this.#inList(`"runId"`, runIds);
    const rows = await this.#sql.query(`SELECT * FROM "NodeRun" WHERE ${condition}`, [param]);
    return groupBy(runIds, rows.map(nodeRunFromRow), (nodeRun) => nodeRun.runId);
  }

  async getEvents(runId: string, after: number, limit = 100_000): Promise<RunEventRecord[]> {
    const rows = await this.#sql.query(
      `SELECT * FROM "RunEvent" WHERE "runId" = ? AND "seq" > ? ORDER BY "seq" LIMIT ?`,
      [runId, after, limit],
    );
    return rows.map(eventFromRow);
  }

  async lastSeq(runId: string): Promise<number> {
    const rows = await this.#sql.query<{ seq: number | null }>(
      `SELECT MAX("seq") AS "seq" FROM "RunEvent" WHERE "runId" = ?`,
      [runId],
    );
    return Number(rows[0]?.seq ?? 0);
  }

  async commit(batch: WriteBatch): Promise<CommitOutcome> {
    if (batch.events.length === 0 && batch.nodeRuns.length === 0 && batch.runs.length === 0) {
      return { rejectedRuns: [] };
    }
    return this.#sql.transaction(async (tx) => {
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
        const [condition, param] = this.#inList(`"id"`, ids);
        // FOR UPDATE: a claim by another instance waits for this transaction to end.
        const lock = this.#sql.dialect === "postgresql" ? "FOR UPDATE" : "";
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
      for (const patch of runs) await this.#applyRunPatch(tx, patch);
      return { rejectedRuns };
    });
  }

  /** Invariant: a terminal run never changes again, and its counters move exactly once. */
  async #applyRunPatch(tx: SqlExecutor, patch: WriteBatch["runs"][number]): Promise<void> {
    const sets: string[] = [];
    const params: SqlValue[] = [];
    for (const field of ["status", "error", "startedAt", "completedAt", "deadlineAt"] as const) {
      if (patch[field] !== undefined) {
        sets.push(`"${field}" = ?`);
        params.push(patch[field]);
      }
    }
    const terminal = patch.status !== undefined && TERMINAL_RUN_STATUSES.has(patch.status);
    if (terminal) sets.push(`"ownerId" = NULL`, `"leaseExpiresAt" = NULL`);
    if (sets.length === 0) return;
    const changed = await tx.execute(
      `UPDATE "PipelineRun" SET ${sets.join(", ")} WHERE "id" = ? AND "status" NOT IN (${TERMINAL.map(() => "?").join(", ")})`,
      [...params, patch.id, ...TERMINAL],
    );
    if (changed > 0 && terminal && patch.status !== "CANCELLED") {
      const counter = patch.status === "COMPLETED" ? "successCount" : "errorCount";
      await tx.execute(
        `UPDATE "Pipeline" SET "${counter}" = "${counter}" + 1 WHERE "id" = (SELECT "pipelineId" FROM "PipelineRun" WHERE "id" = ?)`,
        [patch.id],
      );
    }
  }

  async claimRun(
    runId: string,
    { ownerId, now, leaseUntil }: LeaseArgs,
  ): Promise<RunRecord | null> {
    const rows = await this.#sql.transaction((tx) =>
      tx.query(
        `UPDATE "PipelineRun" SET "ownerId" = ?, "leaseExpiresAt" = ? WHERE "id" = ? AND "status" IN ('QUEUED', 'RUNNING') AND ("ownerId" IS NULL OR "ownerId" = ? OR "leaseExpiresAt" < ?) RETURNING *`,
        [ownerId, leaseUntil, runId, ownerId, now],
      ),
    );
    return rows[0] ? runFromRow(rows[0]) : null;
  }

  async claimRuns(limit: number, { ownerId, now, leaseUntil }: LeaseArgs): Promise<RunRecord[]> {
    if (limit <= 0) return [];
    // SKIP LOCKED lets several instances claim at once without waiting on each other; SQLite
    // has one writer at a time and needs no such clause.
    const lock = this.#sql.dialect === "postgresql" ? "FOR UPDATE SKIP LOCKED" : "";
    const rows = await this.#sql.transaction((tx) =>
      tx.query(
        `UPDATE "PipelineRun" SET "ownerId" = ?, "leaseExpiresAt" = ? WHERE "id" IN (SELECT "id" FROM "PipelineRun" WHERE "status" IN ('QUEUED', 'RUNNING') AND ("ownerId" IS NULL OR "leaseExpiresAt" < ?) ORDER BY "id" LIMIT ? ${lock}) RETURNING *`,
        [ownerId, leaseUntil, now, limit],
      ),
    );
    return rows.map(runFromRow).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async renewLeases(
    runIds: readonly string[],
    { ownerId, leaseUntil }: LeaseArgs,
  ): Promise<string[]> {
    if (runIds.length === 0) return [];
    const [condition, param] = this.#inList(`"id"`, runIds);
    const rows = await this.#sql.transaction((tx) =>
      tx.query<{ id: string }>(
        `UPDATE "PipelineRun" SET "leaseExpiresAt" = ? WHERE "ownerId" = ? AND ${condition} AND "status" IN ('QUEUED', 'RUNNING') RETURNING "id"`,
        [leaseUntil, ownerId, param],
      ),
    );
    return rows.map((row) => String(row.id));
  }

  async releaseRuns(runIds: readonly string[], ownerId: string): Promise<void> {
    if (runIds.length === 0) return;
    const [condition, param] = this.#inList(`"id"`, runIds);
    await this.#sql.transaction((tx) =>
      tx.execute(
        `UPDATE "PipelineRun" SET "ownerId" = NULL, "leaseExpiresAt" = NULL WHERE "ownerId" = ? AND ${condition}`,
        [ownerId, param],
      ),
    );
  }

  async requestCancel(runId: string): Promise<RunRecord | null> {
    await this.#sql.transaction((tx) =>
      tx.execute(
        `UPDATE "PipelineRun" SET "cancelRequested" = ? WHERE "id" = ? AND "status" IN ('QUEUED', 'RUNNING')`,
        [true, runId],
      ),
    );
    const [run] = await this.getRuns([runId]);
    return run ?? null;
  }

  async cancelRequested(runIds: readonly string[]): Promise<string[]> {
    if (runIds.length === 0) return [];
    const [condition, param] = this.#inList(`"id"`, runIds);
    const rows = await this.#sql.query<{ id: string }>(
      `SELECT "id" FROM "PipelineRun" WHERE "cancelRequested" = ? AND ${condition}`,
      [true, param],
    );
    return rows.map((row) => String(row.id));
  }

  async getBreakers(pipelineIds: readonly string[]): Promise<Map<string, BreakerRecord[]>> {
    if (pipelineIds.length === 0) return new Map();
    const [condition, param] = this.#inList(`"pipelineId"`, pipelineIds);
    const rows = await this.#sql.query(
      `SELECT * FROM "NodeBreaker" WHERE ${condition} ORDER BY "pipelineId", "nodeId"`,
      [param],
    );
    return groupBy(pipelineIds, rows.map(breakerFromRow), (breaker) => breaker.pipelineId);
  }

  async getBreaker(pipelineId: string, nodeId: string): Promise<BreakerRecord | null> {
    const rows = await this.#sql.query(
      `SELECT * FROM "NodeBreaker" WHERE "pipelineId" = ? AND "nodeId" = ?`,
      [pipelineId, nodeId],
    );
    return rows[0] ? breakerFromRow(rows[0]) : null;
  }

  async updateBreaker(
    pipelineId: string,
    nodeId: string,
    change: (current: BreakerRecord | null) => BreakerRecord | null,
  ): Promise<BreakerRecord | null> {
    return this.#sql.transaction(async (tx) => {
      // FOR UPDATE cannot lock a row that does not exist yet; a transaction-scoped advisory
      // lock on the key serialises the first writers too. (SQLite has one writer at a time.)
      if (this.#sql.dialect === "postgresql") {
        await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, [
          `breaker:${pipelineId}:${nodeId}`,
        ]);
      }
      const rows = await tx.query(
        `SELECT * FROM "NodeBreaker" WHERE "pipelineId" = ? AND "nodeId" = ?`,
        [pipelineId, nodeId],
      );
      const current = rows[0] ? breakerFromRow(rows[0]) : null;
      const next = change(current);
      if (!next) return current;
      // A first row races with another instance inserting the same one: the upsert makes the
      // later writer win, which is what the FOR UPDATE on an existing row gives too.
      await tx.execute(
        `INSERT INTO "NodeBreaker" ("pipelineId", "nodeId", "state", "failureCount", "openedAt", "trialStartedAt", "updatedAt") VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT ("pipelineId", "nodeId") DO UPDATE SET "state" = excluded."state", "failureCount" = excluded."failureCount", "openedAt" = excluded."openedAt", "trialStartedAt" = excluded."trialStartedAt", "updatedAt" = excluded."updatedAt"`,
        [
          pipelineId,
          nodeId,
          next.state,
          next.failureCount,
          next.openedAt,
          next.trialStartedAt,
          next.updatedAt,
        ],
      );
      return next;
    });
  }

  #closing: Promise<void> | undefined;

  /** Closes the connection; later calls wait for the first. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }
}
