#!/usr/bin/env node
/** Entry of the `pipelines` CLI (package.json "bin"; `npm run cli -- <command>`). */
import { main } from "./main.ts";

// A reader that went away (`| head`) ends the output, not with a stack.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});

process.exitCode = await main(process.argv.slice(2), process.env, {
  out: process.stdout,
  err: process.stderr,
  tty: Boolean(process.stdout.isTTY),
});
