/** The GraphQL schema: every domain module registers its types on the builder. */
import { lexicographicSortSchema } from "graphql";
import { builder } from "./builder.ts";
import "./scalars.ts";
import "./definition.ts";
import "./pipeline.ts";
import "./versions.ts";
import "./events.ts";
import "./run.ts";
import "./breaker.ts";
import "./access.ts";

export type { GraphQLContext } from "./context.ts";
export { createLoaders } from "./context.ts";

/** The executable schema. Built once per process. */
export const schema = builder.toSchema();

/** The schema as SDL, sorted so that the printed file is stable. */
export const sortedSchema = lexicographicSortSchema(schema);
