/**
 * Compiled pipeline versions, so that a version is compiled once, not once when a run is
 * created and again when it is executed. A version compiles the same while the registered
 * actions stay the same (their `generation` is part of the key).
 */
import { LRUCache } from "lru-cache";
import type { PipelineDefinition } from "../domain/definition.ts";
import type { CompileOutcome } from "./dag.ts";

export class CompiledVersions {
  readonly #cache = new LRUCache<string, CompileOutcome>({ max: 256 });

  constructor(
    private readonly compile: (definition: PipelineDefinition) => CompileOutcome,
    private readonly generation: () => number,
  ) {}

  get(pipelineId: string, version: number, definition: PipelineDefinition): CompileOutcome {
    const key = `${pipelineId}@${version}#${this.generation()}`;
    let outcome = this.#cache.get(key);
    if (!outcome) {
      outcome = this.compile(definition);
      this.#cache.set(key, outcome);
    }
    return outcome;
  }
}
