/**
 * The store on SQLite or PostgreSQL. Prisma Client owns the pipeline aggregate (typed CRUD);
 * runs, node runs and events (sql-runs.ts), leases (sql-leases.ts) and breakers go through the
 * SQL layer on the same connection, because that path is hot (see sql.ts).
 */
import type { PipelineDefinition } from "../domain/definition.ts";
import { PipelineLimitError } from "../domain/errors.ts";
import type { BreakerRecord, PipelineRecord, PipelineVersionRecord } from "../domain/records.ts";
import { SqlAdminStore } from "./admin.ts";
import { breakerFromRow, pipelineColumns, pipelineFromRow, versionFromRow } from "./codec.ts";
import type { PrismaClient } from "./generated/sqlite/client.ts";
import { newId } from "./ids.ts";
import type { Mutex, SqlDriver } from "./sql.ts";
import { ACTIVE_STATUS_SQL, groupBy, page } from "./sql-base.ts";
import { SqlRuns } from "./sql-runs.ts";
import type {
  CreatePipelineOptions,
  DeleteOutcome,
  Page,
  PageArgs,
  StateCounts,
  Store,
} from "./types.ts";

/** The advisory lock key that serializes capped pipeline creates on PostgreSQL. */
const PIPELINE_CAP_LOCK = 7_310_001;

export interface SqlStoreOptions {
  readonly provider: "sqlite" | "postgresql";
  readonly prisma: PrismaClient;
  readonly sql: SqlDriver;
  /** SQLite only: the lock every write on the shared connection takes. */
  readonly writeLock?: Mutex;
  /** Releases the connection. */
  readonly close: () => Promise<void>;
}

export class SqlStore extends SqlRuns implements Store {
  readonly provider: "sqlite" | "postgresql";
  readonly stats: { queries: number };
  readonly #prisma: PrismaClient;
  readonly #writeLock: Mutex | undefined;
  readonly #close: () => Promise<void>;
  readonly admin: SqlAdminStore;

  constructor(options: SqlStoreOptions) {
    super(options.sql);
    this.provider = options.provider;
    this.#prisma = options.prisma;
    this.stats = options.sql.stats;
    this.#writeLock = options.writeLock;
    this.#close = options.close;
    this.admin = new SqlAdminStore(options.sql, (ids) => this.forgetNodeRuns(ids));
  }

  /**
   * Prisma's statements on SQLite run on the SQL layer's connection, some awaits after the
   * call: they take the same lock as its transactions, so that they never land inside one.
   */
  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.#writeLock ? this.#writeLock.run(work) : work();
  }

  async createPipeline(
    definition: PipelineDefinition,
    options: CreatePipelineOptions = {},
  ): Promise<PipelineRecord> {
    const now = new Date();
    const columns = pipelineColumns(definition);
    const { maxPipelines } = options;
    // One transaction: the pipeline, its version 1 and, with a cap, the count that admits it.
    // Invariant: never more than `maxPipelines` rows. Creates are serialized for the count:
    // on PostgreSQL by a transaction-scoped advisory lock (a plain COUNT would not see another
    // create's uncommitted row), on SQLite by the write lock (and SQLite's single writer).
    const row = await this.#exclusive(() =>
      this.#prisma.$transaction(async (tx) => {
        if (maxPipelines !== undefined) {
          if (this.provider === "postgresql")
            await tx.$queryRawUnsafe(
              `SELECT 1 AS "locked" FROM pg_advisory_xact_lock(${PIPELINE_CAP_LOCK})`,
            );
          if ((await tx.pipeline.count()) >= maxPipelines)
            throw new PipelineLimitError(maxPipelines);
        }
        return tx.pipeline.create({
          data: {
            id: newId(),
            ...columns,
            createdAt: now,
            updatedAt: now,
            versions: { create: { version: 1, ...columns, createdAt: now } },
          },
        });
      }),
    );
    return pipelineFromRow(row);
  }

  async updatePipeline(id: string, definition: PipelineDefinition): Promise<PipelineRecord | null> {
    const now = new Date();
    const columns = pipelineColumns(definition);
    // Invariant: a pipeline's version number always has its definition in PipelineVersion.
    const rows = await this.#exclusive(() =>
      this.#prisma.$transaction(async (tx) => {
        const updated = await tx.pipeline.updateManyAndReturn({
          where: { id },
          data: { ...columns, version: { increment: 1 }, updatedAt: now },
        });
        if (updated[0])
          await tx.pipelineVersion.create({
            data: { pipelineId: id, version: updated[0].version, ...columns, createdAt: now },
          });
        return updated;
      }),
    );
    return rows[0] ? pipelineFromRow(rows[0]) : null;
  }

  async getPipelineVersions(
    pipelineIds: readonly string[],
  ): Promise<Map<string, PipelineVersionRecord[]>> {
    if (pipelineIds.length === 0) return new Map();
    const [condition, param] = this.inList(`"pipelineId"`, pipelineIds);
    const rows = await this.sql.query(
      `SELECT * FROM "PipelineVersion" WHERE ${condition} ORDER BY "pipelineId", "version" DESC`,
      [param],
    );
    return groupBy(pipelineIds, rows.map(versionFromRow), (version) => version.pipelineId);
  }

  async deletePipeline(id: string): Promise<DeleteOutcome> {
    return this.sql.transaction(async (tx) => {
      // Lock the pipeline first: a createRun of it (which updates its counters) then either
      // finishes before the check below sees its run, or waits and finds the pipeline gone.
      if (this.sql.dialect === "postgresql") {
        await tx.query(`SELECT "id" FROM "Pipeline" WHERE "id" = ? FOR UPDATE`, [id]);
      }
      const active = await tx.query(
        `SELECT 1 AS "one" FROM "PipelineRun" WHERE "pipelineId" = ? AND ${ACTIVE_STATUS_SQL} LIMIT 1`,
        [id],
      );
      if (active.length > 0) return "has_active_runs";
      const runs = await tx.query<{ id: string }>(
        `SELECT "id" FROM "PipelineRun" WHERE "pipelineId" = ?`,
        [id],
      );
      // Runs, node runs, events and breakers go with it (ON DELETE CASCADE).
      const deleted = await tx.execute(`DELETE FROM "Pipeline" WHERE "id" = ?`, [id]);
      this.forgetNodeRuns(runs.map((run) => String(run.id)));
      return deleted > 0 ? "deleted" : "not_found";
    });
  }

  // Reads of pipelines are on every dashboard request: SQL, not Prisma, whose query
  // compilation cost 1.3 ms of a 15 ms request in the reads benchmark (see BENCHMARKS.md).
  async getPipelines(ids: readonly string[]): Promise<(PipelineRecord | null)[]> {
    if (ids.length === 0) return [];
    const [condition, param] = this.inList(`"id"`, ids);
    const rows = await this.sql.query(`SELECT * FROM "Pipeline" WHERE ${condition}`, [param]);
    const byId = new Map(rows.map((row) => [String(row.id), pipelineFromRow(row)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  async listPipelines({ first, after }: PageArgs): Promise<Page<PipelineRecord>> {
    const rows = after
      ? await this.sql.query(`SELECT * FROM "Pipeline" WHERE "id" < ? ORDER BY "id" DESC LIMIT ?`, [
          after,
          first + 1,
        ])
      : await this.sql.query(`SELECT * FROM "Pipeline" ORDER BY "id" DESC LIMIT ?`, [first + 1]);
    return page(rows.map(pipelineFromRow), first);
  }

  async getBreakers(pipelineIds: readonly string[]): Promise<Map<string, BreakerRecord[]>> {
    if (pipelineIds.length === 0) return new Map();
    const [condition, param] = this.inList(`"pipelineId"`, pipelineIds);
    const rows = await this.sql.query(
      `SELECT * FROM "NodeBreaker" WHERE ${condition} ORDER BY "pipelineId", "nodeId"`,
      [param],
    );
    return groupBy(pipelineIds, rows.map(breakerFromRow), (breaker) => breaker.pipelineId);
  }

  async getBreaker(pipelineId: string, nodeId: string): Promise<BreakerRecord | null> {
    const rows = await this.sql.query(
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
    return this.sql.transaction(async (tx) => {
      // FOR UPDATE cannot lock a row that does not exist yet; a transaction-scoped advisory
      // lock on the key serialises the first writers too. (SQLite has one writer at a time.)
      if (this.sql.dialect === "postgresql") {
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

  async countStates(): Promise<StateCounts> {
    // The run count is an index range on ("status", "leaseExpiresAt"); breakers are few.
    const [runRows, breakerRows] = await Promise.all([
      this.sql.query(
        `SELECT "status" AS "key", COUNT(*) AS "count" FROM "PipelineRun" WHERE ${ACTIVE_STATUS_SQL} GROUP BY "status"`,
      ),
      this.sql.query(
        `SELECT "state" AS "key", COUNT(*) AS "count" FROM "NodeBreaker" GROUP BY "state"`,
      ),
    ]);
    const counts = <K extends string>(rows: Record<string, unknown>[], keys: Record<K, number>) => {
      for (const row of rows) if (String(row.key) in keys) keys[row.key as K] = Number(row.count);
      return keys;
    };
    return {
      runs: counts(runRows, { QUEUED: 0, RUNNING: 0 }),
      breakers: counts(breakerRows, { CLOSED: 0, OPEN: 0, HALF_OPEN: 0 }),
    };
  }

  async probe(instanceId = "default"): Promise<void> {
    await this.sql.transaction((tx) =>
      tx.execute(
        `INSERT INTO "ReadinessProbe" ("instanceId", "checkedAt") VALUES (?, ?) ON CONFLICT ("instanceId") DO UPDATE SET "checkedAt" = excluded."checkedAt"`,
        [instanceId, new Date()],
      ),
    );
  }

  #closing: Promise<void> | undefined;

  /** Closes the connection; later calls wait for the first. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }
}
