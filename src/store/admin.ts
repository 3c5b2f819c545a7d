/**
 * What the service's operators manage besides pipelines and runs: API keys, encrypted
 * secrets, the pipeline cap and the retention of finished runs. SQL and memory versions.
 */
import type { ApiKeyRecord, Role, SecretRecord } from "../domain/access.ts";
import { TERMINAL_RUN_STATUSES } from "../domain/status.ts";
import { toDate } from "./codec.ts";
import type { SqlDriver } from "./sql.ts";

/** Which finished runs `pruneRuns` deletes (with their node runs and events). */
export interface PruneArgs {
  /** Finished before this instant. */
  readonly completedBefore?: Date;
  /** Beyond the newest `keepNewest` finished runs. */
  readonly keepNewest?: number;
  /** At most this many in one call (the caller loops, so that one transaction stays small). */
  readonly limit: number;
}

export interface AdminStore {
  createApiKey(record: ApiKeyRecord): Promise<void>;
  /** The key with this hash, revoked or expired ones included. */
  apiKeyByHash(hash: string): Promise<ApiKeyRecord | null>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  /** Marks it revoked; the key after the change, or null when there is none. */
  revokeApiKey(id: string, at: Date): Promise<ApiKeyRecord | null>;
  /** True when a key is usable now (neither revoked nor expired). */
  hasActiveApiKey(now: Date): Promise<boolean>;
  touchApiKey(id: string, at: Date): Promise<void>;

  /** Inserts or replaces the secret's (encrypted) value. */
  putSecret(name: string, value: string, at: Date): Promise<SecretRecord>;
  getSecrets(names: readonly string[]): Promise<Map<string, SecretRecord>>;
  listSecrets(): Promise<Omit<SecretRecord, "value">[]>;
  deleteSecret(name: string): Promise<boolean>;

  countPipelines(): Promise<number>;
  /** Deletes finished runs as `args` says; returns how many. Active runs are never touched. */
  pruneRuns(args: PruneArgs): Promise<number>;
}

const TERMINAL_SQL = `"status" IN (${[...TERMINAL_RUN_STATUSES].map((s) => `'${s}'`).join(", ")})`;

function keyFromRow(row: Record<string, unknown>): ApiKeyRecord {
  return {
    id: String(row.id),
    label: String(row.label),
    role: String(row.role) as Role,
    hash: String(row.hash),
    prefix: String(row.prefix),
    createdAt: toDate(row.createdAt)!,
    expiresAt: toDate(row.expiresAt),
    revokedAt: toDate(row.revokedAt),
    lastUsedAt: toDate(row.lastUsedAt),
  };
}

const secretFromRow = (row: Record<string, unknown>): SecretRecord => ({
  name: String(row.name),
  value: String(row.value ?? ""),
  createdAt: toDate(row.createdAt)!,
  updatedAt: toDate(row.updatedAt)!,
});

/** The SQL version, on the store's connection. */
export class SqlAdminStore implements AdminStore {
  constructor(
    private readonly sql: SqlDriver,
    /** Told which runs were deleted (the store caches finished node runs by run). */
    private readonly onRunsDeleted: (ids: readonly string[]) => void = () => {},
  ) {}

  async createApiKey(k: ApiKeyRecord): Promise<void> {
    await this.sql.execute(
      `INSERT INTO "ApiKey" ("id", "label", "role", "hash", "prefix", "createdAt", "expiresAt", "revokedAt", "lastUsedAt") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [k.id, k.label, k.role, k.hash, k.prefix, k.createdAt, k.expiresAt, k.revokedAt, null],
    );
  }

  async apiKeyByHash(hash: string): Promise<ApiKeyRecord | null> {
    const rows = await this.sql.query(`SELECT * FROM "ApiKey" WHERE "hash" = ?`, [hash]);
    return rows[0] ? keyFromRow(rows[0]) : null;
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const rows = await this.sql.query(`SELECT * FROM "ApiKey" ORDER BY "id" DESC`);
    return rows.map(keyFromRow);
  }

  async revokeApiKey(id: string, at: Date): Promise<ApiKeyRecord | null> {
    await this.sql.execute(
      `UPDATE "ApiKey" SET "revokedAt" = ? WHERE "id" = ? AND "revokedAt" IS NULL`,
      [at, id],
    );
    const rows = await this.sql.query(`SELECT * FROM "ApiKey" WHERE "id" = ?`, [id]);
    return rows[0] ? keyFromRow(rows[0]) : null;
  }

  async hasActiveApiKey(now: Date): Promise<boolean> {
    const rows = await this.sql.query(
      `SELECT 1 AS "one" FROM "ApiKey" WHERE "revokedAt" IS NULL AND ("expiresAt" IS NULL OR "expiresAt" > ?) LIMIT 1`,
      [now],
    );
    return rows.length > 0;
  }

  async touchApiKey(id: string, at: Date): Promise<void> {
    await this.sql.execute(`UPDATE "ApiKey" SET "lastUsedAt" = ? WHERE "id" = ?`, [at, id]);
  }

  async putSecret(name: string, value: string, at: Date): Promise<SecretRecord> {
    await this.sql.execute(
      `INSERT INTO "Secret" ("name", "value", "createdAt", "updatedAt") VALUES (?, ?, ?, ?) ON CONFLICT ("name") DO UPDATE SET "value" = excluded."value", "updatedAt" = excluded."updatedAt"`,
      [name, value, at, at],
    );
    const rows = await this.sql.query(`SELECT * FROM "Secret" WHERE "name" = ?`, [name]);
    return secretFromRow(rows[0]!);
  }

  async getSecrets(names: readonly string[]): Promise<Map<string, SecretRecord>> {
    const found = new Map<string, SecretRecord>();
    for (const name of new Set(names)) {
      const rows = await this.sql.query(`SELECT * FROM "Secret" WHERE "name" = ?`, [name]);
      if (rows[0]) found.set(name, secretFromRow(rows[0]));
    }
    return found;
  }

  async listSecrets(): Promise<Omit<SecretRecord, "value">[]> {
    const rows = await this.sql.query(
      `SELECT "name", "createdAt", "updatedAt" FROM "Secret" ORDER BY "name"`,
    );
    return rows.map((row) => {
      const { value: _value, ...rest } = secretFromRow(row);
      return rest;
    });
  }

  async deleteSecret(name: string): Promise<boolean> {
    return (await this.sql.execute(`DELETE FROM "Secret" WHERE "name" = ?`, [name])) > 0;
  }

  async countPipelines(): Promise<number> {
    const rows = await this.sql.query(`SELECT COUNT(*) AS "count" FROM "Pipeline"`);
    return Number(rows[0]?.count ?? 0);
  }

  async pruneRuns({ completedBefore, keepNewest, limit }: PruneArgs): Promise<number> {
    const ids = new Set<string>();
    if (completedBefore) {
      const rows = await this.sql.query<{ id: string }>(
        `SELECT "id" FROM "PipelineRun" WHERE ${TERMINAL_SQL} AND "completedAt" < ? ORDER BY "id" LIMIT ?`,
        [completedBefore, limit],
      );
      for (const row of rows) ids.add(String(row.id));
    }
    if (keepNewest !== undefined && ids.size < limit) {
      const rows = await this.sql.query<{ id: string }>(
        `SELECT "id" FROM "PipelineRun" WHERE ${TERMINAL_SQL} ORDER BY "id" DESC LIMIT ? OFFSET ?`,
        [limit - ids.size, keepNewest],
      );
      for (const row of rows) ids.add(String(row.id));
    }
    if (ids.size === 0) return 0;
    const list = [...ids];
    const condition =
      this.sql.dialect === "postgresql"
        ? `"id" = ANY(?::text[])`
        : `"id" IN (SELECT value FROM json_each(?))`;
    const param =
      this.sql.dialect === "postgresql" ? (list as unknown as string) : JSON.stringify(list);
    // Node runs and events go with their run (ON DELETE CASCADE). Finished runs never change
    // status again, so what was read as finished above is still finished here.
    const deleted = await this.sql.execute(
      `DELETE FROM "PipelineRun" WHERE ${condition} AND ${TERMINAL_SQL}`,
      [param],
    );
    this.onRunsDeleted(list);
    return deleted;
  }
}
