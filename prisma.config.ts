// Prisma CLI configuration. `engine: "js"` with a driver adapter keeps every Prisma command
// offline: no native engine is downloaded. The commands this project runs (generate, migrate
// diff) read no live database; the in-memory SQLite adapter is there because the JS engine
// requires one. See scripts/prisma.ts and src/store/migrate.ts.
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "prisma/schema.prisma",
  experimental: { adapter: true },
  engine: "js",
  async adapter() {
    return new PrismaBetterSQLite3({ url: ":memory:" });
  },
});
