/**
 * The store in memory: for unit tests and for measuring the executor without a database.
 * Same contract as the SQL store, including the rules the database keeps (terminal runs never
 * change, counters move once, leases).
 */
import type { PipelineDefinition } from "../domain/definition.ts";
import { PipelineLimitError } from "../domain/errors.ts";
import type {
  BreakerRecord,
  NodeRunRecord,
  PipelineRecord,
  PipelineVersionRecord,
  RunEventRecord,
  RunRecord,
} from "../domain/records.ts";
import { counterOf, TERMINAL_RUN_STATUSES } from "../domain/status.ts";
import { nodeRunColumns, nodeRunsFromRows } from "./codec.ts";
import { newId } from "./ids.ts";
import { MemoryAdminStore } from "./memory-admin.ts";
import type {
  CommitOutcome,
  CreatePipelineOptions,
  DeleteOutcome,
  LeaseArgs,
  NewRun,
  NewRunRequest,
  NodeRunWrite,
  Page,
  PageArgs,
  RunFilter,
  StateCounts,
  Store,
  WriteBatch,
} from "./types.ts";
import { StoreError, versionChanged } from "./types.ts";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const clone = <T>(value: T): T => structuredClone(value);

function page<T>(items: T[], { first, after }: PageArgs, id: (item: T) => string): Page<T> {
  const newestFirst = items
    .filter((item) => !after || id(item) < after)
    .sort((a, b) => (id(a) < id(b) ? 1 : -1));
  return { items: newestFirst.slice(0, first), hasNextPage: newestFirst.length > first };
}

export class MemoryStore implements Store {
  readonly provider = "memory" as const;
  readonly stats = { queries: 0 };
  readonly #pipelines = new Map<string, Mutable<PipelineRecord>>();
  readonly #runs = new Map<string, Mutable<RunRecord>>();
  /** Rows as the SQL store keeps them (outputs in stored form), decoded on every read. */
  readonly #nodeRuns = new Map<string, Map<string, ReturnType<typeof nodeRunColumns>>>();
  readonly #events = new Map<string, RunEventRecord[]>();
  readonly #breakers = new Map<string, BreakerRecord>();
  /** Newest last, by pipeline. */
  readonly #versions = new Map<string, PipelineVersionRecord[]>();
  readonly admin = new MemoryAdminStore({
    pipelineCount: () => this.#pipelines.size,
    finishedRuns: () =>
      [...this.#runs.values()].filter((run) => TERMINAL_RUN_STATUSES.has(run.status)),
    deleteRuns: (ids) => {
      for (const id of ids) {
        this.#runs.delete(id);
        this.#nodeRuns.delete(id);
        this.#events.delete(id);
      }
    },
  });

  #storeVersion(record: PipelineRecord): void {
    const { id: pipelineId, version, definition, updatedAt: createdAt } = record;
    const versions = this.#versions.get(pipelineId) ?? [];
    versions.push(clone({ pipelineId, version, definition, createdAt }));
    this.#versions.set(pipelineId, versions);
  }

  async createPipeline(
    definition: PipelineDefinition,
    options: CreatePipelineOptions = {},
  ): Promise<PipelineRecord> {
    // Count and insert in one synchronous step: no other create can come in between.
    if (options.maxPipelines !== undefined && this.#pipelines.size >= options.maxPipelines)
      throw new PipelineLimitError(options.maxPipelines);
    const now = new Date();
    const record = {
      id: newId(),
      definition: clone(definition),
      runCount: 0,
      successCount: 0,
      errorCount: 0,
      version: 1,
      createdAt: now,
      updatedAt: now,
    };
    this.#pipelines.set(record.id, record);
    this.#storeVersion(record);
    return clone(record);
  }

  async updatePipeline(id: string, definition: PipelineDefinition): Promise<PipelineRecord | null> {
    const record = this.#pipelines.get(id);
    if (!record) return null;
    Object.assign(record, {
      definition: clone(definition),
      version: record.version + 1,
      updatedAt: new Date(),
    });
    this.#storeVersion(record);
    return clone(record);
  }

  async deletePipeline(id: string): Promise<DeleteOutcome> {
    if (!this.#pipelines.has(id)) return "not_found";
    const runs = [...this.#runs.values()].filter((run) => run.pipelineId === id);
    if (runs.some((run) => !TERMINAL_RUN_STATUSES.has(run.status))) return "has_active_runs";
    for (const run of runs) {
      this.#runs.delete(run.id);
      this.#nodeRuns.delete(run.id);
      this.#events.delete(run.id);
    }
    for (const key of this.#breakers.keys())
      if (key.startsWith(`${id}\u0000`)) this.#breakers.delete(key);
    this.#pipelines.delete(id);
    this.#versions.delete(id);
    return "deleted";
  }

  async getPipelines(ids: readonly string[]): Promise<(PipelineRecord | null)[]> {
    this.stats.queries++;
    return ids.map((id) => {
      const record = this.#pipelines.get(id);
      return record ? clone(record) : null;
    });
  }

  async getPipelineVersions(
    pipelineIds: readonly string[],
  ): Promise<Map<string, PipelineVersionRecord[]>> {
    this.stats.queries++;
    return new Map(
      pipelineIds.map((id) => [id, (this.#versions.get(id) ?? []).map(clone).reverse()]),
    );
  }

  async listPipelines(args: PageArgs): Promise<Page<PipelineRecord>> {
    this.stats.queries++;
    return page([...this.#pipelines.values()].map(clone), args, (p) => p.id);
  }

  async createRuns(requests: readonly NewRunRequest[]): Promise<(RunRecord | StoreError)[]> {
    const created: (RunRecord | StoreError)[] = [];
    for (const { run, events = [], nodeRuns = [] } of requests) {
      try {
        created.push(await this.createRun(run, events, nodeRuns));
      } catch (error) {
        if (!(error instanceof StoreError)) throw error;
        created.push(error);
      }
    }
    return created;
  }

  async createRun(
    run: NewRun,
    events: readonly Omit<RunEventRecord, "runId">[],
    nodeRuns: readonly Omit<NodeRunWrite, "runId">[] = [],
  ): Promise<RunRecord> {
    const pipeline = this.#pipelines.get(run.pipelineId);
    if (!pipeline) throw new StoreError("NOT_FOUND", `pipeline "${run.pipelineId}" does not exist`);
    if (run.onlyIfCurrent && pipeline.version !== run.pipelineVersion) throw versionChanged(run);
    // As the databases' (runId, seq) key would.
    if (new Set(events.map((e) => e.seq)).size !== events.length)
      throw new Error("duplicate event seq");
    const { lease, rerunOf, onlyIfCurrent: _current, ...fields } = run;
    const record: Mutable<RunRecord> = {
      ...clone(fields),
      id: newId(),
      createdAt: new Date(),
      deadlineAt: null,
      ownerId: lease?.ownerId ?? null,
      leaseExpiresAt: lease?.leaseUntil ?? null,
      cancelRequested: false,
      rerunOf: rerunOf ?? null,
    };
    this.#runs.set(record.id, record);
    this.#events.set(
      record.id,
      events.map((e) => ({ ...clone(e), runId: record.id })),
    );
    this.#nodeRuns.set(
      record.id,
      new Map(nodeRuns.map((n) => [n.nodeId, nodeRunColumns(clone({ ...n, runId: record.id }))])),
    );
    pipeline.runCount++;
    const counter = counterOf(run.status);
    if (counter) pipeline[counter]++;
    return clone(record);
  }

  async getRuns(ids: readonly string[]): Promise<(RunRecord | null)[]> {
    this.stats.queries++;
    return ids.map((id) => {
      const run = this.#runs.get(id);
      return run ? clone(run) : null;
    });
  }

  async listRuns(filter: RunFilter): Promise<Page<RunRecord>> {
    this.stats.queries++;
    const runs = [...this.#runs.values()].filter(
      (run) =>
        (!filter.pipelineId || run.pipelineId === filter.pipelineId) &&
        (!filter.statuses?.length || filter.statuses.includes(run.status)),
    );
    return page(runs.map(clone), filter, (run) => run.id);
  }

  async latestRuns(
    pipelineIds: readonly string[],
    first: number,
  ): Promise<Map<string, Page<RunRecord>>> {
    this.stats.queries++;
    const all = [...this.#runs.values()];
    return new Map(
      pipelineIds.map((id) => [
        id,
        page(all.filter((run) => run.pipelineId === id).map(clone), { first }, (run) => run.id),
      ]),
    );
  }

  async getNodeRuns(runIds: readonly string[]): Promise<Map<string, NodeRunRecord[]>> {
    this.stats.queries++;
    return new Map(
      runIds.map((id) => [id, nodeRunsFromRows([...(this.#nodeRuns.get(id)?.values() ?? [])])]),
    );
  }

  async getEvents(runId: string, after: number, limit = 100_000): Promise<RunEventRecord[]> {
    this.stats.queries++;
    return (this.#events.get(runId) ?? [])
      .filter((e) => e.seq > after)
      .slice(0, limit)
      .map(clone);
  }

  async lastSeq(runId: string): Promise<number> {
    return this.#events.get(runId)?.at(-1)?.seq ?? 0;
  }

  async commit(batch: WriteBatch): Promise<CommitOutcome> {
    this.stats.queries++;
    const ids = new Set([
      ...batch.events.map((e) => e.runId),
      ...batch.nodeRuns.map((n) => n.runId),
      ...batch.runs.map((r) => r.id),
    ]);
    const rejected = new Set(
      batch.ownerId === undefined
        ? []
        : [...ids].filter((id) => this.#runs.get(id)?.ownerId !== batch.ownerId),
    );
    batch = {
      events: batch.events.filter((e) => !rejected.has(e.runId)),
      nodeRuns: batch.nodeRuns.filter((n) => !rejected.has(n.runId)),
      runs: batch.runs.filter((r) => !rejected.has(r.id)),
    };
    for (const event of batch.events) {
      const list = this.#events.get(event.runId);
      if (!list) continue;
      // Events come in seq order: a new one is past the last; anything else is a duplicate
      // or out of order, searched for only then.
      const last = list.at(-1)?.seq ?? 0;
      if (event.seq <= last && list.some((e) => e.seq === event.seq)) continue;
      list.push(clone(event));
      if (event.seq < last) list.sort((a, b) => a.seq - b.seq);
    }
    for (const nodeRun of batch.nodeRuns)
      this.#nodeRuns.get(nodeRun.runId)?.set(nodeRun.nodeId, nodeRunColumns(clone(nodeRun)));
    for (const patch of batch.runs) {
      const run = this.#runs.get(patch.id);
      if (!run || TERMINAL_RUN_STATUSES.has(run.status)) continue;
      const { id: _id, ...fields } = patch;
      for (const [key, value] of Object.entries(fields)) {
        if (value !== undefined) (run as Record<string, unknown>)[key] = value;
      }
      if (patch.status && TERMINAL_RUN_STATUSES.has(patch.status)) {
        run.ownerId = null;
        run.leaseExpiresAt = null;
        const pipeline = this.#pipelines.get(run.pipelineId);
        const counter = counterOf(patch.status);
        if (pipeline && counter) pipeline[counter]++;
      }
    }
    return { rejectedRuns: [...rejected] };
  }

  #claimable(run: RunRecord, { ownerId, now }: LeaseArgs, allowOwn: boolean): boolean {
    if (TERMINAL_RUN_STATUSES.has(run.status)) return false;
    return (
      run.ownerId === null ||
      (allowOwn && run.ownerId === ownerId) ||
      (run.leaseExpiresAt !== null && run.leaseExpiresAt < now)
    );
  }

  async claimRun(runId: string, lease: LeaseArgs): Promise<RunRecord | null> {
    const run = this.#runs.get(runId);
    if (!run || !this.#claimable(run, lease, true)) return null;
    run.ownerId = lease.ownerId;
    run.leaseExpiresAt = lease.leaseUntil;
    return clone(run);
  }

  async claimRuns(limit: number, lease: LeaseArgs): Promise<RunRecord[]> {
    const runs = [...this.#runs.values()]
      .filter((run) => this.#claimable(run, lease, false))
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .slice(0, Math.max(0, limit));
    for (const run of runs) {
      run.ownerId = lease.ownerId;
      run.leaseExpiresAt = lease.leaseUntil;
    }
    return runs.map(clone);
  }

  async renewLeases(runIds: readonly string[], lease: LeaseArgs): Promise<string[]> {
    return runIds.filter((id) => {
      const run = this.#runs.get(id);
      if (!run || run.ownerId !== lease.ownerId || TERMINAL_RUN_STATUSES.has(run.status))
        return false;
      run.leaseExpiresAt = lease.leaseUntil;
      return true;
    });
  }

  async releaseRuns(runIds: readonly string[], ownerId: string): Promise<void> {
    for (const id of runIds) {
      const run = this.#runs.get(id);
      if (run?.ownerId === ownerId) {
        run.ownerId = null;
        run.leaseExpiresAt = null;
      }
    }
  }

  async requestCancel(runId: string): Promise<RunRecord | null> {
    const run = this.#runs.get(runId);
    if (!run) return null;
    if (!TERMINAL_RUN_STATUSES.has(run.status)) run.cancelRequested = true;
    return clone(run);
  }

  async cancelRequested(runIds: readonly string[]): Promise<string[]> {
    return runIds.filter((id) => this.#runs.get(id)?.cancelRequested);
  }

  async getBreakers(pipelineIds: readonly string[]): Promise<Map<string, BreakerRecord[]>> {
    this.stats.queries++;
    const all = [...this.#breakers.values()].sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
    return new Map(
      pipelineIds.map((id) => [id, all.filter((b) => b.pipelineId === id).map(clone)]),
    );
  }

  async getBreaker(pipelineId: string, nodeId: string): Promise<BreakerRecord | null> {
    const record = this.#breakers.get(`${pipelineId}\u0000${nodeId}`);
    return record ? clone(record) : null;
  }

  async updateBreaker(
    pipelineId: string,
    nodeId: string,
    change: (current: BreakerRecord | null) => BreakerRecord | null,
  ): Promise<BreakerRecord | null> {
    const key = `${pipelineId}\u0000${nodeId}`;
    const current = this.#breakers.get(key) ?? null;
    const next = change(current ? clone(current) : null);
    if (!next) return current ? clone(current) : null;
    this.#breakers.set(key, clone(next));
    return clone(next);
  }

  async countStates(): Promise<StateCounts> {
    const runs = { QUEUED: 0, RUNNING: 0 };
    for (const { status } of this.#runs.values())
      if (status === "QUEUED" || status === "RUNNING") runs[status]++;
    const breakers = { CLOSED: 0, OPEN: 0, HALF_OPEN: 0 };
    for (const { state } of this.#breakers.values()) breakers[state]++;
    return { runs, breakers };
  }

  async probe(): Promise<void> {}

  async close(): Promise<void> {}
}
