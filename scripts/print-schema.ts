/**
 * Prints the schema to graphql/schema.graphql (`npm run schema:print`). With `--check` it
 * fails instead of writing when the file differs, which CI and a test rely on.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { printSchema } from "graphql";
import { sortedSchema } from "../src/schema/index.ts";

export const SCHEMA_FILE = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../graphql/schema.graphql",
);

export function printedSchema(): string {
  return `${printSchema(sortedSchema)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const printed = printedSchema();
  if (process.argv.includes("--check")) {
    const current = readFileSync(SCHEMA_FILE, "utf8");
    if (current !== printed) {
      console.error("graphql/schema.graphql is out of date: run `npm run schema:print`");
      process.exit(1);
    }
    console.log("graphql/schema.graphql is up to date");
  } else {
    writeFileSync(SCHEMA_FILE, printed);
    console.log(`wrote ${path.relative(process.cwd(), SCHEMA_FILE)}`);
  }
}
