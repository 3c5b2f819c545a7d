/**
 * What every resolver receives. Resolvers reach storage and the engine only through it, never
 * through a global client.
 */
import DataLoader from "dataloader";
import type { Principal } from "../domain/access.ts";
import type {
  BreakerRecord,
  NodeRunRecord,
  PipelineVersionRecord,
  RunRecord,
} from "../domain/records.ts";
import type { Engine } from "../engine/engine.ts";
import type { SecretVault } from "../engine/secrets.ts";
import type { Store } from "../store/types.ts";

export interface GraphQLContext {
  readonly store: Store;
  readonly engine: Engine;
  /** Named secrets (admins set them; http headers and agent keys read them). */
  readonly secrets: SecretVault;
  readonly loaders: Loaders;
  /** Who the request acts as; the schema's auth scopes read it (builder.ts). */
  readonly auth: RequestAuth;
  /** Caps the schema applies itself (rate limits are a server plugin). */
  readonly limits: RequestLimits;
}

export interface RequestAuth {
  /** Authenticates the request once (later calls share the answer). */
  principal(): Promise<Principal>;
  /** The principal once `principal()` has settled. */
  readonly current: Principal | undefined;
  /** Called after a key is created or revoked: whether auth is on may have changed. */
  keysChanged(): void;
}

export interface RequestLimits {
  /** createPipeline is refused at this many stored pipelines. */
  readonly maxPipelines: number;
  /**
   * Counts the subscription against its principal's cap while it is open.
   * @throws {AppError} LIMIT_REACHED when the principal already has its cap open
   */
  subscription<T>(open: () => Promise<AsyncIterable<T>>): Promise<AsyncIterable<T>>;
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
