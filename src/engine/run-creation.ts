/**
 * Reads of pipelines and creation of runs, batched per turn of the event loop: runs started
 * at the same moment (a client starting 2,000 at once) share one read of their pipelines and
 * one transaction creating them all, instead of a round trip or two each.
 */
import DataLoader from "dataloader";
import { NotFoundError } from "../domain/errors.ts";
import type { PipelineRecord, RunRecord } from "../domain/records.ts";
import { type NewRunRequest, type Store, StoreError } from "../store/types.ts";
import type { EngineHooks } from "./hooks.ts";

/** Largest batch: bounds one statement's parameters and one transaction's length. */
const MAX_BATCH = 1000;

export class RunCreation {
  readonly #pipelines: DataLoader<string, PipelineRecord | null>;
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

  /** The pipeline as stored now, or null. */
  pipeline(id: string): Promise<PipelineRecord | null> {
    return this.#pipelines.load(id);
  }

  /**
   * Creates the run (with its first events and node runs).
   * @throws {NotFoundError} when its pipeline was deleted meanwhile
   */
  async create(request: NewRunRequest): Promise<RunRecord> {
    let created: RunRecord;
    try {
      created = await this.#runs.load(request);
    } catch (error) {
      if (error instanceof StoreError && error.code === "NOT_FOUND")
        throw new NotFoundError("pipeline", request.run.pipelineId);
      throw error;
    }
    for (const event of request.events ?? [])
      this.#hooks?.onEvent?.({ ...event, runId: created.id });
    return created;
  }
}
