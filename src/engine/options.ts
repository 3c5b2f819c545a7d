/** What an engine is built from: its store and bus, and its limits, each with its default. */
import type { Logger } from "pino";
import type { Store } from "../store/types.ts";
import type { EventBus } from "./bus.ts";
import type { EngineHooks } from "./hooks.ts";
import type { AgentRegistry } from "./nodes/agents.ts";
import type { InputLimits } from "./pipeline-input.ts";
import type { OutputLimits } from "./run-outputs.ts";
import type { SecretResolver } from "./secrets.ts";

export interface EngineOptions {
  readonly store: Store;
  readonly bus: EventBus;
  readonly logger: Logger;
  readonly instanceId: string;
  /** Node executions at once in this process. @default 64 */
  readonly maxConcurrentNodes?: number;
  /** Runs this instance executes at once. @default 256 */
  readonly maxActiveRuns?: number;
  /** Lease length; renewed every third of it. @default 5000 */
  readonly leaseMs?: number;
  /** How often to look for runs to take (queued, or orphaned by a dead instance). @default 500 */
  readonly pollMs?: number;
  /** Size limits of definitions and `triggerData`. */
  readonly limits?: Partial<InputLimits>;
  /** Size limits of node outputs, one and all of a run's. */
  readonly outputLimits?: OutputLimits;
  readonly httpAllowlist?: readonly string[];
  readonly agents?: ConstructorParameters<typeof AgentRegistry>[0];
  /** The clock breakers read (tests move it instead of waiting). @default () => new Date() */
  readonly now?: () => Date;
  /** Observers (metrics, tracing, logs); see hooks.ts. */
  readonly hooks?: EngineHooks;
  /** While the database is down, how often to probe it for its return. @default 250 */
  readonly probeMs?: number;
  /** Where `{{secrets.NAME}}` is read (a SecretVault); without it such a node fails. */
  readonly secrets?: SecretResolver;
}

export const DEFAULT_LIMITS: InputLimits = {
  maxNodes: 10_000,
  maxEdges: 50_000,
  maxConfigBytes: 64 * 1024,
  maxJsonDepth: 32,
};
