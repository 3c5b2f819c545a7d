/**
 * JWT verification (@graphql-yoga/plugin-jwt) through the server: an HS256 shared secret
 * (JWT_SECRET) and the RS256 keys of a JWKS served from 127.0.0.1 (JWT_JWKS_URL). A token's
 * role claim gives the role; an expired token, a bad signature, a wrong issuer or a claim that
 * names no role is UNAUTHENTICATED. Tokens are signed here with node:crypto.
 */
import { createHmac, createSign, generateKeyPairSync, type KeyObject } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createClient } from "graphql-ws";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { generateApiKey } from "../src/domain/api-keys.ts";
import { MemoryStore } from "../src/store/memory.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

const SECRET = "a-shared-secret-of-the-test-0123456789";
const now = () => Math.floor(Date.now() / 1000);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

function hs256(payload: Record<string, unknown>, secret = SECRET): string {
  const head = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(payload)}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

function rs256(payload: Record<string, unknown>, key: KeyObject, kid: string): string {
  const head = `${b64({ alg: "RS256", typ: "JWT", kid })}.${b64(payload)}`;
  return `${head}.${createSign("RSA-SHA256").update(head).sign(key).toString("base64url")}`;
}

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

type Body = { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] };

async function post(query: string, token?: string) {
  const response = await server!.app.yoga.fetch("http://localhost/graphql", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query }),
  });
  const body = (await response.json()) as Body;
  return { status: response.status, code: body.errors?.[0]?.extensions?.code, body };
}

const CREATE = `mutation { createPipeline(input: { name: "j", nodes: [{ id: "t", type: TRIGGER }], edges: [] }) { id } }`;
const RUN = 'mutation { runPipeline(id: "none") { id } }';

describe("JWT with a shared secret (JWT_SECRET)", () => {
  it("acts with the role of each token's claim", async () => {
    server = await startTestServer(new MemoryStore(), { JWT_SECRET: SECRET });
    const token = (role: string) => hs256({ sub: `user-${role}`, role, exp: now() + 600 });
    expect((await post("{ viewer { kind role label } }", token("viewer"))).body).toEqual({
      data: { viewer: { kind: "jwt", role: "viewer", label: "user-viewer" } },
    });
    // viewer: reads, may not run; operator: runs (the pipeline is missing), may not create.
    expect((await post(RUN, token("viewer"))).code).toBe("FORBIDDEN");
    expect((await post(RUN, token("operator"))).code).toBe("NOT_FOUND");
    expect((await post(CREATE, token("operator"))).code).toBe("FORBIDDEN");
    const created = await post(CREATE, token("admin"));
    expect([created.status, created.body.errors]).toEqual([200, undefined]);
  });

  it("refuses an expired token, a bad signature and no token with UNAUTHENTICATED (401)", async () => {
    server = await startTestServer(new MemoryStore(), { JWT_SECRET: SECRET });
    const claims = { sub: "u", role: "admin" };
    const cases = {
      expired: hs256({ ...claims, exp: now() - 60 }),
      badSignature: hs256({ ...claims, exp: now() + 600 }, "another-secret-0123456789abcdef"),
      unsigned: `${b64({ alg: "none", typ: "JWT" })}.${b64({ ...claims, exp: now() + 600 })}.`,
      garbage: "not.a.jwt",
    };
    const seen: Record<string, unknown> = {};
    for (const [name, token] of Object.entries(cases)) {
      const { status, code } = await post("{ viewer { role } }", token);
      seen[name] = [status, code];
    }
    seen.none = await post("{ pipelines { edges { node { id } } } }").then((r) => [
      r.status,
      r.code,
    ]);
    const refused = [401, "UNAUTHENTICATED"];
    const expiredBody = (await post("{ viewer { role } }", cases.expired)).body;
    expect(expiredBody.errors?.[0]?.message).toMatch(/^this token expired at \d{4}-\d\d-\d\dT/);
    expect(seen).toEqual({
      expired: refused,
      badSignature: refused,
      unsigned: refused,
      garbage: refused,
      none: refused,
    });
  });

  it("refuses a token whose claim names no role with UNAUTHENTICATED, naming the claim", async () => {
    server = await startTestServer(new MemoryStore(), {
      JWT_SECRET: SECRET,
      JWT_ROLE_CLAIM: "pipelines_role",
    });
    const exp = now() + 600;
    const wrong = await post(
      "{ viewer { role } }",
      hs256({ sub: "u", pipelines_role: "root", exp }),
    );
    expect([wrong.status, wrong.code, wrong.body.errors?.[0]?.message]).toEqual([
      401,
      "UNAUTHENTICATED",
      'the token\'s "pipelines_role" claim must be viewer, operator or admin, got "root"',
    ]);
    // The claim is read from JWT_ROLE_CLAIM only: "role" alone is not enough.
    const other = await post("{ viewer { role } }", hs256({ sub: "u", role: "admin", exp }));
    expect([other.status, other.code]).toEqual([401, "UNAUTHENTICATED"]);
    const right = await post(
      "{ viewer { role } }",
      hs256({ sub: "u", pipelines_role: "operator", exp }),
    );
    expect(right.body).toEqual({ data: { viewer: { role: "operator" } } });
  });

  it("checks JWT_ISSUER and JWT_AUDIENCE when set", async () => {
    server = await startTestServer(new MemoryStore(), {
      JWT_SECRET: SECRET,
      JWT_ISSUER: "https://issuer.test",
      JWT_AUDIENCE: "pipelines",
    });
    const base = { sub: "u", role: "viewer", exp: now() + 600 };
    const good = { ...base, iss: "https://issuer.test", aud: "pipelines" };
    expect((await post("{ viewer { role } }", hs256(good))).body).toEqual({
      data: { viewer: { role: "viewer" } },
    });
    for (const bad of [{ ...good, iss: "https://other.test" }, { ...good, aud: "other" }, base]) {
      const { status, code } = await post("{ viewer { role } }", hs256(bad));
      expect([status, code]).toEqual([401, "UNAUTHENTICATED"]);
    }
  });

  it("accepts API keys beside JWTs", async () => {
    const store = new MemoryStore();
    const made = generateApiKey("operator", "ops", null);
    await store.admin.createApiKey(made.record);
    server = await startTestServer(store, { JWT_SECRET: SECRET });
    expect((await post("{ viewer { kind role } }", made.key)).body).toEqual({
      data: { viewer: { kind: "key", role: "operator" } },
    });
  });

  it("lets a JWT subscribe over graphql-ws, and refuses a bad one", async () => {
    server = await startTestServer(new MemoryStore(), { JWT_SECRET: SECRET });
    const subscribeOnce = (token: string) => {
      const client = createClient({
        url: server!.wsUrl,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: true,
        connectionParams: { authorization: `Bearer ${token}` },
      });
      return new Promise<string>((resolve) => {
        client.subscribe(
          { query: 'subscription { runEvents(runId: "none") { seq } }' },
          {
            next: (value) =>
              resolve(`next:${JSON.stringify(value.errors?.map((e) => e.extensions?.code))}`),
            error: (error) =>
              resolve(
                `error:${Array.isArray(error) ? error.map((e) => e.extensions?.code).join(",") : (error as { code?: number }).code}`,
              ),
            complete: () => resolve("complete"),
          },
        );
      }).finally(() => void client.dispose());
    };
    // A viewer may subscribe: the run does not exist, so the answer is NOT_FOUND, not a refusal.
    const viewer = await subscribeOnce(hs256({ sub: "u", role: "viewer", exp: now() + 600 }));
    expect(viewer).toMatch(/NOT_FOUND/);
    const expired = await subscribeOnce(hs256({ sub: "u", role: "viewer", exp: now() - 60 }));
    expect(expired).toBe("error:4401");
  });
});

describe("JWT with a JWKS served from 127.0.0.1 (JWT_JWKS_URL)", () => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const stranger = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
  let jwks: Server;
  let jwksUrl: string;
  beforeAll(async () => {
    const jwk = { ...publicKey.export({ format: "jwk" }), kid: "k1", use: "sig", alg: "RS256" };
    jwks = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
    jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => jwks.close(() => resolve())));

  it("verifies RS256 tokens with the published key and refuses others", async () => {
    server = await startTestServer(new MemoryStore(), { JWT_JWKS_URL: jwksUrl });
    const claims = { sub: "svc", role: "operator", exp: now() + 600 };
    expect(
      (await post("{ viewer { kind role label } }", rs256(claims, privateKey, "k1"))).body,
    ).toEqual({
      data: { viewer: { kind: "jwt", role: "operator", label: "svc" } },
    });
    for (const token of [
      rs256(claims, stranger, "k1"),
      rs256(claims, privateKey, "unknown-kid"),
      rs256({ ...claims, exp: now() - 60 }, privateKey, "k1"),
      hs256(claims),
    ]) {
      const { status, code } = await post("{ viewer { role } }", token);
      expect([status, code]).toEqual([401, "UNAUTHENTICATED"]);
    }
  });
});
