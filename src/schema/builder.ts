/**
 * The one Pothos builder: every type argument and the plugin list live here; each domain
 * module (pipeline.ts, run.ts, events.ts, breaker.ts) adds its types to it.
 */
import SchemaBuilder from "@pothos/core";
import DataloaderPlugin from "@pothos/plugin-dataloader";
import RelayPlugin from "@pothos/plugin-relay";
import ScopeAuthPlugin from "@pothos/plugin-scope-auth";
import type { GraphQLResolveInfo } from "graphql";
import { type Role, roleAllows } from "../domain/access.ts";
import { AppError } from "../domain/errors.ts";
import type { GraphQLContext } from "./context.ts";

/**
 * The scope a root field needs: every root field sets exactly one (test/auth-schema.test.ts
 * walks the schema), `authScopes: requires("operator")`.
 */
export const requires = (role: Role) => ({ [role]: true }) as Record<Role, true>;

/** The role a field asks for, from its Pothos options. */
function neededRole(info: GraphQLResolveInfo): Role {
  const field = info.parentType.getFields()[info.fieldName];
  const scopes = (field?.extensions?.pothosOptions as { authScopes?: object } | undefined)
    ?.authScopes;
  return (Object.keys(scopes ?? {})[0] as Role | undefined) ?? "admin";
}

function refusal(context: GraphQLContext, info: GraphQLResolveInfo): AppError {
  const principal = context.auth.current;
  const field = `${info.parentType.name}.${info.fieldName}`;
  if (!principal || principal.role === null)
    return new AppError(
      "UNAUTHENTICATED",
      principal?.failure ?? `${field} needs authentication: send Authorization: Bearer <API key>`,
      { field },
    );
  const needed = neededRole(info);
  return new AppError(
    "FORBIDDEN",
    `${field} needs the ${needed} role; this ${principal.kind === "jwt" ? "token" : "key"} has ${principal.role}`,
    { field, role: principal.role, needed },
  );
}

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  AuthScopes: Record<Role, boolean>;
  DefaultFieldNullability: false;
  Scalars: {
    ID: { Input: string; Output: string };
    JSON: { Input: unknown; Output: unknown };
    DateTime: { Input: Date; Output: Date };
  };
}>({
  plugins: [ScopeAuthPlugin, RelayPlugin, DataloaderPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    // A subscription is refused when it starts, not at its first event.
    authorizeOnSubscribe: true,
    authScopes: async (context) => {
      const { role } = await context.auth.principal();
      return {
        viewer: roleAllows(role, "viewer"),
        operator: roleAllows(role, "operator"),
        admin: roleAllows(role, "admin"),
      };
    },
    unauthorizedError: (_parent, context, info) => refusal(context, info),
  },
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
