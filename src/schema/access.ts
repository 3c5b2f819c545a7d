/** Who may do what: API keys and secrets (admin only), and the caller's own principal. */
import { type ApiKeyRecord, isRole, ROLE_DESCRIPTIONS, ROLES } from "../domain/access.ts";
import { generateApiKey } from "../domain/api-keys.ts";
import { BadInputError, NotFoundError } from "../domain/errors.ts";
import { builder, describedValues, requires } from "./builder.ts";

const RoleEnum = builder.enumType("Role", {
  description: "What a key or token may do; each role may do all the roles before it may.",
  values: describedValues(ROLES, ROLE_DESCRIPTIONS),
});

const ApiKeyRef = builder.objectRef<ApiKeyRecord>("ApiKey").implement({
  description: "An API key, without the key itself (shown once, by createApiKey).",
  fields: (t) => ({
    id: t.exposeID("id", { description: "The key's id (revokeApiKey takes it)." }),
    label: t.exposeString("label", { description: "Who or what holds it." }),
    role: t.field({ type: RoleEnum, description: "What it may do.", resolve: (k) => k.role }),
    prefix: t.exposeString("prefix", {
      description: "The key's first characters, to tell keys apart.",
    }),
    createdAt: t.expose("createdAt", { type: "DateTime", description: "When it was made." }),
    expiresAt: t.expose("expiresAt", {
      type: "DateTime",
      nullable: true,
      description: "When it stops working; null: never.",
    }),
    revokedAt: t.expose("revokedAt", {
      type: "DateTime",
      nullable: true,
      description: "When it was revoked; null while it is not.",
    }),
    lastUsedAt: t.expose("lastUsedAt", {
      type: "DateTime",
      nullable: true,
      description: "When a request last used it (to the minute).",
    }),
    active: t.boolean({
      description: "Neither revoked nor expired.",
      resolve: (k) => !k.revokedAt && (!k.expiresAt || k.expiresAt > new Date()),
    }),
  }),
});

const CreatedApiKey = builder
  .objectRef<{ key: string; apiKey: ApiKeyRecord }>("CreatedApiKey")
  .implement({
    description: "A new key: `key` is shown this once and cannot be read again.",
    fields: (t) => ({
      key: t.exposeString("key", {
        description: "The key: send it as Authorization: Bearer <key>.",
      }),
      apiKey: t.field({ type: ApiKeyRef, description: "Its record.", resolve: (c) => c.apiKey }),
    }),
  });

const SecretInfo = builder
  .objectRef<{ name: string; createdAt?: Date; updatedAt: Date }>("Secret")
  .implement({
    description: "A stored secret: its name only; its value is never returned.",
    fields: (t) => ({
      name: t.exposeString("name", { description: "Referenced as {{secrets.NAME}}." }),
      updatedAt: t.expose("updatedAt", { type: "DateTime", description: "When last set." }),
    }),
  });

const Viewer = builder
  .objectRef<{ kind: string; role: string | null; label: string | null }>("Viewer")
  .implement({
    description: "Who the request acts as.",
    fields: (t) => ({
      kind: t.exposeString("kind", {
        description: "key, jwt, or local (auth is off: a local server without keys, or AUTH=off).",
      }),
      role: t.field({
        type: RoleEnum,
        nullable: true,
        description: "What it may do.",
        resolve: (v) => (isRole(v.role) ? v.role : null),
      }),
      label: t.string({
        nullable: true,
        description: "The key's label.",
        resolve: (v) => v.label,
      }),
    }),
  });

builder.queryFields((t) => ({
  viewer: t.field({
    authScopes: requires("viewer"),
    type: Viewer,
    description: "Who this request acts as, and with which role.",
    resolve: async (_root, _args, ctx) => {
      const p = await ctx.auth.principal();
      return { kind: p.kind, role: p.role, label: p.label ?? null };
    },
  }),
  apiKeys: t.field({
    authScopes: requires("admin"),
    type: [ApiKeyRef],
    description: "Every API key, newest first, revoked and expired ones included.",
    resolve: (_root, _args, ctx) => ctx.store.admin.listApiKeys(),
  }),
  secrets: t.field({
    authScopes: requires("admin"),
    type: [SecretInfo],
    description: "The names of the stored secrets (never their values).",
    resolve: (_root, _args, ctx) => ctx.secrets.list(),
  }),
}));

builder.mutationFields((t) => ({
  createApiKey: t.field({
    authScopes: requires("admin"),
    type: CreatedApiKey,
    description: "Makes an API key; the answer holds the key, which is not shown again.",
    args: {
      role: t.arg({ type: RoleEnum, required: true, description: "What it may do." }),
      label: t.arg.string({ required: true, description: "Who or what holds it." }),
      expiresAt: t.arg({
        type: "DateTime",
        description: "When it stops working (default: never).",
      }),
    },
    resolve: async (_root, { role, label, expiresAt }, ctx) => {
      if (label.trim() === "" || label.length > 200)
        throw new BadInputError("label must be 1 to 200 characters");
      if (expiresAt && expiresAt.getTime() <= Date.now())
        throw new BadInputError(`expiresAt ${expiresAt.toISOString()} is in the past`);
      const { key, record } = generateApiKey(role, label.trim(), expiresAt ?? null);
      await ctx.store.admin.createApiKey(record);
      ctx.auth.keysChanged();
      return { key, apiKey: record };
    },
  }),
  revokeApiKey: t.field({
    authScopes: requires("admin"),
    type: ApiKeyRef,
    description: "Revokes a key at once, on every instance; revoking twice changes nothing.",
    args: { id: t.arg.id({ required: true, description: "The key's id." }) },
    resolve: async (_root, { id }, ctx) => {
      const revoked = await ctx.store.admin.revokeApiKey(id, new Date());
      if (!revoked) throw new NotFoundError("API key", id);
      ctx.auth.keysChanged();
      return revoked;
    },
  }),
  setSecret: t.field({
    authScopes: requires("admin"),
    type: SecretInfo,
    description:
      "Stores a secret, encrypted (AES-256-GCM under SECRETS_KEY), replacing one of the same name. Its value is never returned.",
    args: {
      name: t.arg.string({ required: true, description: "Letters, digits and _." }),
      value: t.arg.string({ required: true, description: "The value." }),
    },
    resolve: (_root, { name, value }, ctx) => ctx.secrets.set(name, value),
  }),
  deleteSecret: t.boolean({
    authScopes: requires("admin"),
    description: "Deletes a secret; false when there was none. Nodes using it then fail.",
    args: { name: t.arg.string({ required: true, description: "The secret's name." }) },
    resolve: (_root, { name }, ctx) => ctx.secrets.delete(name),
  }),
}));
