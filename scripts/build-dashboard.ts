/**
 * Bundles the dashboard's browser code (dashboard/src) into dashboard/static/app.js, which is
 * committed: users run no build step. `--check` builds in memory and fails when the committed
 * bundle differs (CI and test/dashboard-serve.test.ts run it).
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { build } from "esbuild";

const root = path.resolve(import.meta.dirname, "..");
const outfile = path.join(root, "dashboard/static/app.js");

/** The bundle as esbuild makes it from the current sources. */
export async function bundleDashboard(): Promise<string> {
  const result = await build({
    entryPoints: [path.join(root, "dashboard/src/main.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    // DASHBOARD_MINIFY=0 keeps names readable in a CPU profile of the page (never committed).
    minify: process.env.DASHBOARD_MINIFY !== "0",
    legalComments: "eof",
    write: false,
    outfile,
    logLevel: "silent",
  });
  return result.outputFiles[0]!.text;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bundle = await bundleDashboard();
  if (process.argv.includes("--check")) {
    const committed = readFileSync(outfile, "utf8");
    if (committed !== bundle) {
      console.error("dashboard/static/app.js is out of date: run `npm run dashboard:build`");
      process.exit(1);
    }
    console.log("dashboard/static/app.js is current");
  } else {
    writeFileSync(outfile, bundle);
    console.log(`wrote dashboard/static/app.js (${Math.round(bundle.length / 1024)} KiB)`);
  }
}
