/**
 * The one Pothos builder: every type argument and the plugin list live here; each domain
 * module (pipeline.ts, run.ts, events.ts, breaker.ts) adds its types to it.
 */
import SchemaBuilder from "@pothos/core";
import DataloaderPlugin from "@pothos/plugin-dataloader";
import RelayPlugin from "@pothos/plugin-relay";
import type { GraphQLContext } from "./context.ts";

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  DefaultFieldNullability: false;
  Scalars: {
    ID: { Input: string; Output: string };
    JSON: { Input: unknown; Output: unknown };
    DateTime: { Input: Date; Output: Date };
  };
}>({
  plugins: [RelayPlugin, DataloaderPlugin],
  defaultFieldNullability: false,
  relay: {
    clientMutationId: "omit",
    cursorType: "String",
    // Ids are plain UUIDs; there is no global Node interface to look them up by.
    nodeQueryOptions: false,
    nodesQueryOptions: false,
    // Every connection reads the same; its arguments and fields are described once here.
    firstArgOptions: { description: "Items to return, 0 to 100 (default 20)." },
    afterArgOptions: { description: "The `endCursor` of the previous page: items after it." },
    lastArgOptions: { description: "Not supported (lists are newest first): use first." },
    beforeArgOptions: { description: "Not supported (lists are newest first): use after." },
    pageInfoTypeOptions: { description: "Where a page sits in its list." },
    hasNextPageFieldOptions: { description: "True when items follow this page." },
    hasPreviousPageFieldOptions: { description: "True when the page was asked for with after." },
    startCursorFieldOptions: {
      description: "The cursor of the first item; null on an empty page.",
    },
    endCursorFieldOptions: { description: "The cursor of the last item: pass it as after." },
    edgesFieldOptions: { description: "The items of this page, each with its cursor." },
    pageInfoFieldOptions: { description: "Where this page sits in the list." },
    cursorFieldOptions: { description: "Opaque position of this item in the list." },
    nodeFieldOptions: { description: "The item." },
  },
});

/**
 * Enum values with a description each, in the order of `values` (the domain's list);
 * `descriptions` must name every value.
 */
export function describedValues<const V extends string>(
  values: readonly V[],
  descriptions: Readonly<Record<V, string>>,
): Record<V, { description: string }> {
  return Object.fromEntries(
    values.map((value) => [value, { description: descriptions[value] }]),
  ) as Record<V, { description: string }>;
}

builder.queryType({ description: "Reads: pipelines, runs and their state." });
builder.mutationType({
  description: "Changes: pipelines stored, validated and run; runs cancelled; breakers reset.",
});
builder.subscriptionType({ description: "Live streams: the events of a run." });
