/**
 * Reads of pipelines and creation of runs, batched per turn of the event loop: runs started
 * at the same moment (a client starting 2,000 at once) share one read of their pipelines and
 * one transaction creating them all, instead of a round trip or two each.
 *
 * Pipelines read are kept (the last 256): a run of a kept pipeline is created `onlyIfCurrent`,
 * so the store refuses it if the pipeline was updated since, here or on another instance, and
 * it is started again from the pipeline read anew. A run of an unchanged pipeline then costs
 * no read at all: on PostgreSQL one round trip less per run.
 */
import DataLoader from "dataloader";
import { LRUCache } from "lru-cache";
import { NotFoundError } from "../domain/errors.ts";
import type { PipelineRecord, RunRecord } from "../domain/records.ts";
import { type NewRunRequest, type Store, StoreError } from "../store/types.ts";
import type { EngineHooks } from "./hooks.ts";

/** Largest batch: bounds one statement's parameters and one transaction's length. */
const MAX_BATCH = 1000;

/** A run was not created: its pipeline is no longer at the version it was started from. */
class VersionChanged extends Error {
  override readonly name = "VersionChanged";
}

export class RunCreation {
  readonly #pipelines: DataLoader<string, PipelineRecord | null>;
  readonly #known = new LRUCache<string, PipelineRecord>({ max: 256 });
  readonly #runs: DataLoader<NewRunRequest, RunRecord>;
  readonly #hooks: Pick<EngineHooks, "onEvent"> | undefined;

  /** @param hooks told of the events stored with each run (the writer tells of the others) */
  constructor(store: Store, hooks?: Pick<EngineHooks, "onEvent">) {
    this.#hooks = hooks;
    this.#pipelines = new DataLoader((ids) => store.getPipelines(ids), {
      cache: false,
      maxBatchSize: MAX_BATCH,
    });
    // A StoreError in the answer rejects that request only.
    this.#runs = new DataLoader<NewRunRequest, RunRecord>(
      (requests) => store.createRuns(requests),
      {
        cache: false,
        maxBatchSize: MAX_BATCH,
      },
    );
  }

  /**
   * Calls `start` with the pipeline as last read here, its run to be created `onlyIfCurrent`;
   * when the pipeline was not read yet, or updated since, with the pipeline as stored now.
   * @throws {NotFoundError} when there is no such pipeline
   */
  async withPipeline<T>(
    id: string,
    start: (pipeline: PipelineRecord, onlyIfCurrent: boolean) => Promise<T>,
  ): Promise<T> {
    const known = this.#known.get(id);
    if (known) {
      try {
        return await start(known, true);
      } catch (error) {
        if (!(error instanceof VersionChanged)) throw error;
      }
    }
    const pipeline = await this.#pipelines.load(id);
    if (!pipeline) {
      this.#known.delete(id);
      throw new NotFoundError("pipeline", id);
    }
    this.#known.set(id, pipeline);
    return start(pipeline, false);
  }

  /**
   * Creates the run (with its first events and node runs).
   * @throws {NotFoundError} when its pipeline was deleted meanwhile
   * @throws {VersionChanged} when it is `onlyIfCurrent` and its pipeline was updated meanwhile
   */
  async create(request: NewRunRequest): Promise<RunRecord> {
    let created: RunRecord;
    try {
      created = await this.#runs.load(request);
    } catch (error) {
      if (!(error instanceof StoreError)) throw error;
      if (error.code === "NOT_FOUND") {
        this.#known.delete(request.run.pipelineId);
        throw new NotFoundError("pipeline", request.run.pipelineId);
      }
      if (error.code === "VERSION_CHANGED") {
        this.#known.delete(request.run.pipelineId);
        throw new VersionChanged(error.message);
      }
      throw error;
    }
    for (const event of request.events ?? [])
      this.#hooks?.onEvent?.({ ...event, runId: created.id });
    return created;
  }
}
