/** The engine's public surface: definitions, validation, execution. No GraphQL in here. */
export * from "./dag.ts";
export * from "./definition.ts";
export { Engine, type EngineOptions } from "./engine.ts";
export { PermanentError, RetryableError } from "./errors.ts";
export { createMemoryBus, createRedisBus, type EventBus } from "./events.ts";
export type { ActionDefinition } from "./nodes/actions.ts";
export type { Agent, AgentRequest } from "./nodes/agents.ts";
export * from "./types.ts";
