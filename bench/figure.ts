/**
 * Runs one figure in this process and writes its result as JSON to the given file:
 *   node --expose-gc --import tsx bench/figure.ts <name> <out.json> [--quick]
 * run.ts starts one such process per figure, so that no figure inherits another's heap,
 * sockets or timers.
 */
import { writeFileSync } from "node:fs";
import type { Figure } from "./lib/report.ts";

const [name, out] = process.argv.slice(2);
if (!name || !out) {
  console.error("usage: bench/figure.ts <name> <out.json> [--quick]");
  process.exit(2);
}
const quick = process.argv.includes("--quick");
const log = (message: string) => process.stderr.write(`  [${name}] ${message}\n`);
const module = (await import(`./${name}.ts`)) as { run: Figure };
const result = await module.run({ quick, log });
writeFileSync(out, JSON.stringify(result, null, 2));
// Pools, sockets and timers a figure leaves behind must not keep the process alive.
process.exit(0);
