/** The Store contract on every available provider: each stored definition of a pipeline. */
import { expect, it } from "vitest";
import {
  definition,
  describeStore,
  MISSING_ID,
  smallDefinition,
} from "./helpers/store-fixtures.ts";

describeStore("store", (store) => {
  it("keeps version 1 from createPipeline and one more per updatePipeline, newest first", async () => {
    const created = await store.createPipeline(definition("first"));
    const other = await store.createPipeline(definition("other"));
    const updated = await store.updatePipeline(created.id, smallDefinition);
    const again = await store.updatePipeline(created.id, definition("third"));
    expect([updated?.version, again?.version]).toEqual([2, 3]);

    const versions = await store.getPipelineVersions([created.id, MISSING_ID, other.id]);
    expect([...versions.keys()]).toEqual([created.id, MISSING_ID, other.id]);
    expect(versions.get(created.id)).toEqual([
      {
        pipelineId: created.id,
        version: 3,
        definition: definition("third"),
        createdAt: again!.updatedAt,
      },
      {
        pipelineId: created.id,
        version: 2,
        definition: smallDefinition,
        createdAt: updated!.updatedAt,
      },
      {
        pipelineId: created.id,
        version: 1,
        definition: definition("first"),
        createdAt: created.createdAt,
      },
    ]);
    expect(versions.get(MISSING_ID)).toEqual([]);
    expect(versions.get(other.id)?.map((v) => [v.version, v.definition.name])).toEqual([
      [1, "other"],
    ]);
    expect(await store.getPipelineVersions([])).toEqual(new Map());
  });

  it("stores no version for a pipeline that does not exist, and drops them with the pipeline", async () => {
    expect(await store.updatePipeline(MISSING_ID, smallDefinition)).toBeNull();
    expect((await store.getPipelineVersions([MISSING_ID])).get(MISSING_ID)).toEqual([]);
    const created = await store.createPipeline(definition("doomed"));
    await store.updatePipeline(created.id, smallDefinition);
    expect(await store.deletePipeline(created.id)).toBe("deleted");
    expect((await store.getPipelineVersions([created.id])).get(created.id)).toEqual([]);
  });
});
