/**
 * `npm run keys -- create --role admin [--label NAME] [--expires 30d]`, `list`, `revoke ID`:
 * API keys made directly on the configured database (DATABASE_URL), since the first admin
 * key cannot come from an API that needs one.
 */
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../config.ts";
import { isRole, ROLES } from "../domain/access.ts";
import { generateApiKey } from "../domain/api-keys.ts";
import { openStore } from "../store/index.ts";

const USAGE = `usage: npm run keys -- create --role ${ROLES.join("|")} [--label NAME] [--expires 30d|12h|2027-01-01]
       npm run keys -- list
       npm run keys -- revoke <id>`;

function expiryOf(raw: string | undefined): Date | null {
  if (!raw) return null;
  const relative = /^(\d+)(h|d)$/.exec(raw);
  const at = relative
    ? new Date(Date.now() + Number(relative[1]) * (relative[2] === "h" ? 3_600_000 : 86_400_000))
    : new Date(raw);
  if (Number.isNaN(at.getTime()) || at.getTime() <= Date.now())
    throw new ConfigError(`--expires must be a future date or a span like 30d, got "${raw}"`);
  return at;
}

export async function keysMain(argv: readonly string[], env = process.env): Promise<number> {
  const { positionals, values } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { role: { type: "string" }, label: { type: "string" }, expires: { type: "string" } },
  });
  const [command, id] = positionals;
  if (!["create", "list", "revoke"].includes(command ?? "") || (command === "revoke" && !id)) {
    console.error(USAGE);
    return 2;
  }
  if (command === "create" && !isRole(values.role)) {
    console.error(`--role must be one of ${ROLES.join(", ")}\n${USAGE}`);
    return 2;
  }
  const config = loadConfig(env);
  const expiresAt = expiryOf(values.expires);
  const store = await openStore({
    databaseUrl: config.databaseUrl,
    provider: config.databaseProvider,
  });
  try {
    if (command === "create") {
      const role = values.role as (typeof ROLES)[number];
      const made = generateApiKey(role, values.label ?? `${role} key`, expiresAt);
      await store.admin.createApiKey(made.record);
      console.log(made.key);
      console.error(
        `created ${role} key ${made.record.id} ("${made.record.label}")${expiresAt ? `, expires ${expiresAt.toISOString()}` : ""}: the key above is shown only now`,
      );
    } else if (command === "list") {
      for (const key of await store.admin.listApiKeys()) {
        const state = key.revokedAt
          ? "revoked"
          : key.expiresAt && key.expiresAt <= new Date()
            ? "expired"
            : "active";
        console.log(
          [
            key.id,
            key.prefix,
            key.role,
            state,
            key.expiresAt?.toISOString() ?? "-",
            key.label,
          ].join("\t"),
        );
      }
    } else {
      const revoked = await store.admin.revokeApiKey(id!, new Date());
      if (!revoked) {
        console.error(`no API key with id "${id}"`);
        return 1;
      }
      console.log(`revoked ${revoked.id} ("${revoked.label}")`);
    }
    return 0;
  } finally {
    await store.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  keysMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : String(error));
      process.exit(1);
    },
  );
}
