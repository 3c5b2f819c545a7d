import { defineConfig } from "vitest/config";

export default defineConfig({
  // graphql ships both ESM (.mjs) and CommonJS; Pothos and yoga load one, vite would resolve the
  // other for our own imports, and graphql refuses two copies of itself. One entry for all.
  resolve: { alias: { graphql: "graphql/index.js" } },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Database and multi-process suites start servers and databases of their own; a few files
    // at a time keep a 2-core machine responsive.
    maxWorkers: 4,
    globalSetup: ["test/helpers/global-setup.ts"],
  },
});
