/**
 * The first module the entry imports: it stops the process with one line when Node.js is older
 * than package.json's `engines`. ES modules are evaluated in import order, so this runs before
 * any later import loads a native addon (better-sqlite3), whose ABI error on an old Node.js
 * would be long and misleading. It imports only Node's built-ins and `semver` (plain JS).
 */
import { readFileSync } from "node:fs";
import semver from "semver";

/** package.json, one level above both `src/` and the compiled `dist/`. */
const manifest = new URL("../package.json", import.meta.url);

/**
 * The line to print when `version` does not satisfy `range`; undefined when it does.
 * @example nodeVersionProblem("18.20.4", ">=20.19")
 */
export function nodeVersionProblem(version: string, range: string): string | undefined {
  if (semver.satisfies(version, range)) return undefined;
  return `Node.js ${version} is too old: this server needs Node.js ${range} (package.json "engines"); install a newer Node.js and start again`;
}

const { engines } = JSON.parse(readFileSync(manifest, "utf8")) as {
  engines?: { node?: string };
};
const problem = engines?.node ? nodeVersionProblem(process.versions.node, engines.node) : undefined;
if (problem) {
  console.error(`failed to start: ${problem}`);
  process.exit(1);
}
