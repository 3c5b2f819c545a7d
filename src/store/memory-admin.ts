/** The admin store in memory (see admin.ts), beside MemoryStore. */
import type { ApiKeyRecord, SecretRecord } from "../domain/access.ts";
import type { AdminStore, PruneArgs } from "./admin.ts";

/** What the memory admin store needs of the memory store's runs and pipelines. */
export interface MemoryRunsView {
  pipelineCount(): number;
  /** Finished runs, any order. */
  finishedRuns(): { id: string; completedAt: Date | null }[];
  deleteRuns(ids: readonly string[]): void;
}

export class MemoryAdminStore implements AdminStore {
  readonly #keys = new Map<string, ApiKeyRecord>();
  readonly #secrets = new Map<string, SecretRecord>();

  constructor(private readonly runs: MemoryRunsView) {}

  async createApiKey(record: ApiKeyRecord): Promise<void> {
    this.#keys.set(record.id, { ...record });
  }

  async apiKeyByHash(hash: string): Promise<ApiKeyRecord | null> {
    for (const key of this.#keys.values()) if (key.hash === hash) return { ...key };
    return null;
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return [...this.#keys.values()].sort((a, b) => (a.id < b.id ? 1 : -1)).map((k) => ({ ...k }));
  }

  async revokeApiKey(id: string, at: Date): Promise<ApiKeyRecord | null> {
    const key = this.#keys.get(id);
    if (!key) return null;
    const revoked = key.revokedAt ? key : { ...key, revokedAt: at };
    this.#keys.set(id, revoked);
    return { ...revoked };
  }

  async hasActiveApiKey(now: Date): Promise<boolean> {
    for (const key of this.#keys.values())
      if (!key.revokedAt && (!key.expiresAt || key.expiresAt > now)) return true;
    return false;
  }

  async touchApiKey(id: string, at: Date): Promise<void> {
    const key = this.#keys.get(id);
    if (key) this.#keys.set(id, { ...key, lastUsedAt: at });
  }

  async putSecret(name: string, value: string, at: Date): Promise<SecretRecord> {
    const createdAt = this.#secrets.get(name)?.createdAt ?? at;
    const record = { name, value, createdAt, updatedAt: at };
    this.#secrets.set(name, record);
    return { ...record };
  }

  async getSecrets(names: readonly string[]): Promise<Map<string, SecretRecord>> {
    const found = new Map<string, SecretRecord>();
    for (const name of names) {
      const secret = this.#secrets.get(name);
      if (secret) found.set(name, { ...secret });
    }
    return found;
  }

  async listSecrets(): Promise<Omit<SecretRecord, "value">[]> {
    return [...this.#secrets.values()]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map(({ name, createdAt, updatedAt }) => ({ name, createdAt, updatedAt }));
  }

  async deleteSecret(name: string): Promise<boolean> {
    return this.#secrets.delete(name);
  }

  async countPipelines(): Promise<number> {
    return this.runs.pipelineCount();
  }

  async pruneRuns({ completedBefore, keepNewest, limit }: PruneArgs): Promise<number> {
    const finished = this.runs.finishedRuns().sort((a, b) => (a.id < b.id ? 1 : -1));
    const doomed = new Set<string>();
    if (completedBefore)
      for (const run of finished)
        if (run.completedAt && run.completedAt < completedBefore) doomed.add(run.id);
    if (keepNewest !== undefined) for (const run of finished.slice(keepNewest)) doomed.add(run.id);
    const ids = [...doomed].slice(0, limit);
    this.runs.deleteRuns(ids);
    return ids.length;
  }
}
