/**
 * /dashboard as served by the process: the page and its assets with a strict
 * Content-Security-Policy and no other host named; the committed bundle is the one the
 * sources build; GraphiQL leads to it.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleDashboard } from "../scripts/build-dashboard.ts";
import { dashboardPolicy } from "../src/server/dashboard.ts";
import { graphiqlOptions } from "../src/server/graphiql.ts";
import { freshStore } from "./helpers/databases.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

describe("/dashboard", () => {
  let server: TestServer;
  let origin: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const fresh = await freshStore("memory");
    cleanup = fresh.cleanup;
    server = await startTestServer(fresh.store);
    origin = server.url.replace(/\/graphql$/, "");
  });
  afterAll(async () => {
    await server?.close();
    await cleanup?.();
  });

  it("serves the page, at any path under it, with a policy allowing this origin only", async () => {
    for (const path of ["/dashboard", "/dashboard/", "/dashboard/runs/x"]) {
      const response = await fetch(`${origin}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
      const host = new URL(origin).host;
      expect(response.headers.get("content-security-policy")).toBe(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
          `font-src 'self'; connect-src 'self' ws://${host} wss://${host}; base-uri 'none'; ` +
          "form-action 'none'; frame-ancestors 'none'",
      );
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      const html = await response.text();
      expect(html).toContain('<script type="module" src="/dashboard/app.js"></script>');
      // No address of another host in the page.
      expect(html.match(/(?:src|href)="[^"]*"/g)).toEqual([
        'href="/dashboard/favicon.svg"',
        'href="/dashboard/style.css"',
        'src="/dashboard/app.js"',
        'href="/graphql"',
      ]);
    }
  });

  it("serves the assets as committed, and refuses other methods", async () => {
    for (const [name, type] of [
      ["app.js", "text/javascript; charset=utf-8"],
      ["style.css", "text/css; charset=utf-8"],
      ["favicon.svg", "image/svg+xml"],
    ] as const) {
      const response = await fetch(`${origin}/dashboard/${name}`);
      expect(response.headers.get("content-type")).toBe(type);
      expect(await response.text()).toBe(
        readFileSync(new URL(`../dashboard/static/${name}`, import.meta.url), "utf8"),
      );
    }
    const post = await fetch(`${origin}/dashboard`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });

  it("names no other origin in its script", () => {
    const bundle = readFileSync(new URL("../dashboard/static/app.js", import.meta.url), "utf8");
    // Addresses in the bundled libraries' strings and licences are not requests; what the
    // page may reach is fixed by the policy above. The code itself builds only this origin's.
    expect(bundle).toContain('new URL("/graphql",location.href)');
  });

  it("keeps a host header out of the policy unless it is a plain host", () => {
    expect(dashboardPolicy("127.0.0.1:4000")).toContain(
      "connect-src 'self' ws://127.0.0.1:4000 wss://127.0.0.1:4000;",
    );
    expect(dashboardPolicy("evil; script-src *")).toContain("connect-src 'self';");
    expect(dashboardPolicy(undefined)).toContain("connect-src 'self';");
  });

  it("is the bundle its sources build (run `npm run dashboard:build` after a change)", async () => {
    const committed = readFileSync(new URL("../dashboard/static/app.js", import.meta.url), "utf8");
    expect((await bundleDashboard()) === committed).toBe(true);
  });

  it("is named by GraphiQL's first tab", () => {
    expect(graphiqlOptions.defaultTabs[0]!.query.split("\n")[0]).toBe(
      "# Watch runs live, with their DAG and timeline, in the dashboard: /dashboard",
    );
  });
});
