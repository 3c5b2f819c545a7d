/**
 * Prisma chores, all offline:
 *
 *   tsx scripts/prisma.ts generate         derive the PostgreSQL schema, generate both clients
 *   tsx scripts/prisma.ts migration <name> write a new migration for both databases
 *   tsx scripts/prisma.ts check            fail if the derived schema or the migrations lag
 *                                          behind prisma/schema.prisma
 *
 * prisma/schema.prisma (SQLite) is the one source. The PostgreSQL schema differs only in its
 * datasource, its client's output and `timestamptz` columns, so it is derived, not written.
 * Each migration folder keeps a snapshot of the schema it leads to; the next migration is the
 * diff from that snapshot, which `prisma migrate diff` computes without any database.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const sqliteSchema = path.join(root, "prisma", "schema.prisma");
const postgresSchema = path.join(root, "prisma", "postgresql", "schema.prisma");
const migrationsDir = path.join(root, "prisma", "migrations");
const providers = [
  { name: "sqlite", schema: sqliteSchema },
  { name: "postgresql", schema: postgresSchema },
] as const;

const prismaBin = path.join(root, "node_modules", ".bin", "prisma");
function prisma(args: string[]): string {
  return execFileSync(prismaBin, args, {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, CHECKPOINT_DISABLE: "1", PRISMA_HIDE_UPDATE_MESSAGE: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** The PostgreSQL schema, derived from the SQLite one. */
export function derivePostgresSchema(source = readFileSync(sqliteSchema, "utf8")): string {
  const header =
    "// GENERATED from prisma/schema.prisma by `npm run prisma:generate`. Do not edit.\n\n";
  return (
    header +
    source
      .replace('provider = "sqlite"', 'provider = "postgresql"')
      .replace('url      = "file:./unused.db"', 'url      = "postgresql://unused"')
      .replace(
        'output       = "../src/store/generated/sqlite"',
        'output       = "../../src/store/generated/postgresql"',
      )
      // timestamptz: instants, whatever the server's time zone.
      .replace(/^(\s+\w+\s+DateTime\??)(\s*)$/gm, "$1 @db.Timestamptz(3)$2")
  );
}

function writeDerivedSchema(): void {
  mkdirSync(path.dirname(postgresSchema), { recursive: true });
  writeFileSync(postgresSchema, derivePostgresSchema());
}

function lastSnapshot(provider: string): string | undefined {
  const dir = path.join(migrationsDir, provider);
  if (!existsSync(dir)) return undefined;
  const last = readdirSync(dir)
    .filter((name) => existsSync(path.join(dir, name, "migration.sql")))
    .sort()
    .at(-1);
  return last ? path.join(dir, last, "snapshot.prisma") : undefined;
}

/** SQL that takes the last migration's snapshot to the current schema ("" when in step). */
function pendingDiff(provider: (typeof providers)[number]): string {
  const from = lastSnapshot(provider.name);
  const sql = prisma([
    "migrate",
    "diff",
    ...(from ? ["--from-schema-datamodel", from] : ["--from-empty"]),
    "--to-schema-datamodel",
    provider.schema,
    "--script",
  ]);
  return sql.includes("This is an empty migration")
    ? ""
    : sql.replace(/^Loaded Prisma config.*\n+/m, "");
}

function generate(): void {
  writeDerivedSchema();
  for (const provider of providers) prisma(["generate", "--schema", provider.schema]);
  console.log("prisma: generated the sqlite and postgresql clients");
}

function migration(name: string | undefined): void {
  if (!name || !/^[a-z0-9_]+$/.test(name)) {
    throw new TypeError(`Expected a migration name of a-z, 0-9 and _, got \`${name}\``);
  }
  writeDerivedSchema();
  const stamp = new Date().toISOString().replace(/\D/g, "").slice(0, 14);
  for (const provider of providers) {
    const sql = pendingDiff(provider);
    if (!sql) {
      console.log(`prisma: ${provider.name} is up to date, no migration written`);
      continue;
    }
    const dir = path.join(migrationsDir, provider.name, `${stamp}_${name}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "migration.sql"), sql);
    writeFileSync(path.join(dir, "snapshot.prisma"), readFileSync(provider.schema, "utf8"));
    console.log(`prisma: wrote ${path.relative(root, dir)}/migration.sql`);
  }
}

function check(): void {
  const problems: string[] = [];
  if (
    !existsSync(postgresSchema) ||
    readFileSync(postgresSchema, "utf8") !== derivePostgresSchema()
  ) {
    problems.push("prisma/postgresql/schema.prisma is stale: run `npm run prisma:generate`");
  }
  for (const provider of providers) {
    if (pendingDiff(provider)) {
      problems.push(
        `the ${provider.name} migrations lag behind the schema: run \`npm run prisma:migration -- <name>\``,
      );
    }
  }
  if (problems.length > 0) {
    console.error(problems.join("\n"));
    process.exit(1);
  }
  console.log("prisma: schemas and migrations are in step");
}

const [command, argument] = process.argv.slice(2);
if (command === "generate") generate();
else if (command === "migration") migration(argument);
else if (command === "check") check();
else if (command !== undefined) {
  console.error(`unknown command "${command}"; expected generate, migration <name> or check`);
  process.exit(2);
}
