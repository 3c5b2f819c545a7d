/**
 * What every resolver receives. Resolvers reach storage and the engine only through it, never
 * through a global client.
 */
import DataLoader from "dataloader";
import type {
  BreakerRecord,
  NodeRunRecord,
  PipelineVersionRecord,
  RunRecord,
} from "../domain/records.ts";
import type { Engine } from "../engine/engine.ts";
import type { Store } from "../store/types.ts";

export interface GraphQLContext {
  readonly store: Store;
  readonly engine: Engine;
  readonly loaders: Loaders;
}

/** Per-request batching of the nested fields (one query per level, not per parent). */
export interface Loaders {
  readonly runs: DataLoader<string, RunRecord | null>;
  readonly nodeRuns: DataLoader<string, NodeRunRecord[]>;
  readonly breakers: DataLoader<string, BreakerRecord[]>;
  readonly versions: DataLoader<string, PipelineVersionRecord[]>;
}

export function createLoaders(store: Store): Loaders {
  return {
    runs: new DataLoader((ids) => store.getRuns(ids)),
    nodeRuns: new DataLoader(async (ids) => {
      const byRun = await store.getNodeRuns(ids);
      return ids.map((id) => byRun.get(id) ?? []);
    }),
    breakers: new DataLoader(async (ids) => {
      const byPipeline = await store.getBreakers(ids);
      return ids.map((id) => byPipeline.get(id) ?? []);
    }),
    versions: new DataLoader(async (ids) => {
      const byPipeline = await store.getPipelineVersions(ids);
      return ids.map((id) => byPipeline.get(id) ?? []);
    }),
  };
}
