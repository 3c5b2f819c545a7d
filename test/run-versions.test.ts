/**
 * runPipeline starts the pipeline as stored, though an instance keeps the pipelines it read:
 * an update made anywhere (here, on the store, as another instance makes it) is what the next
 * run executes; a run of an unchanged pipeline reads no pipeline; a deleted one is NOT_FOUND.
 */
import { afterEach, expect, it, vi } from "vitest";
import { normalizeDefinition, type PipelineInput } from "../src/domain/definition.ts";
import type { Engine } from "../src/engine/engine.ts";
import { availableProviders, describeProviders } from "./helpers/databases.ts";
import { closeEngineStores, createTestEngine, engineOn, runToEnd } from "./helpers/engine.ts";

const providers = await availableProviders();

const say = (message: string): PipelineInput => ({
  name: `say ${message}`,
  nodes: [
    { id: "start", type: "TRIGGER" },
    { id: "say", type: "ACTION", config: { action: "log", message } },
  ],
  edges: [{ source: "start", target: "say" }],
});

const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop(0);
  await closeEngineStores();
});

describeProviders(providers)("runs of a kept pipeline on %s", (provider) => {
  it("run the version stored now, wherever it was updated, and read the pipeline only when it changed", async () => {
    const here = await engineOn(provider);
    engines.push(here);
    // The other instance: its own engine (and pipelines it read) on the same store.
    const there = createTestEngine({ store: here.store, instanceId: "other-instance" });
    engines.push(there);
    const { id } = await here.store.createPipeline(normalizeDefinition(say("one")));
    const reads = vi.spyOn(here.store, "getPipelines");
    /** Runs the pipeline here to its end: its status, version and the message it logged. */
    const runHere = async () => {
      const { run } = await runToEnd(here, id);
      const config = run.definition.nodes[1]?.config as { message?: string } | undefined;
      return [run.status, run.pipelineVersion, config?.message];
    };

    expect(await runHere()).toEqual(["COMPLETED", 1, "one"]);
    expect(reads).toHaveBeenCalledTimes(1);
    expect(await runHere()).toEqual(["COMPLETED", 1, "one"]);
    expect(reads).toHaveBeenCalledTimes(1);

    // Updated through the other instance: the run kept here is refused by the store, the
    // pipeline read again, and the new version run.
    const versionTwo = await there.store.updatePipeline(id, normalizeDefinition(say("two")));
    expect(versionTwo?.version).toBe(2);
    expect(await runHere()).toEqual(["COMPLETED", 2, "two"]);
    expect(reads).toHaveBeenCalledTimes(2);
    expect(await runHere()).toEqual(["COMPLETED", 2, "two"]);
    expect(reads).toHaveBeenCalledTimes(2);
    // The refused creation stored nothing and counted nothing.
    const [counted] = await here.store.getPipelines([id]);
    expect([counted?.runCount, counted?.successCount]).toEqual([4, 4]);
    expect((await here.store.listRuns({ first: 10, pipelineId: id })).items).toHaveLength(4);

    expect(await there.store.deletePipeline(id)).toBe("deleted");
    await expect(here.runPipeline(id)).rejects.toMatchObject({ code: "NOT_FOUND" });
  });
});
