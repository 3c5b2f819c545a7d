/**
 * The run dashboard at /dashboard: a page and its prebuilt assets (dashboard/static, built by
 * `npm run dashboard:build` and committed), served from memory by this process. Nothing is
 * loaded from another host; the page's Content-Security-Policy allows its own origin only.
 */
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";

export const DASHBOARD_PATH = "/dashboard";

// dashboard/static sits two levels above this file both in src/server/ and in dist/server/.
const STATIC = new URL("../../dashboard/static/", import.meta.url);

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
};

/** The assets the page needs; anything else under /dashboard/ is the page (client routing). */
const ASSETS = ["app.js", "style.css", "favicon.svg"] as const;

interface Asset {
  readonly body: Buffer;
  readonly type: string;
}

function load(name: string): Asset {
  const extension = name.slice(name.lastIndexOf(".") + 1);
  return { body: readFileSync(new URL(name, STATIC)), type: TYPES[extension]! };
}

/**
 * The page's policy: scripts, styles, images and connections from this origin only (the
 * WebSocket named explicitly, as `'self'` does not cover ws: in every browser), no frames,
 * no plugins, no inline code.
 */
export function dashboardPolicy(host: string | undefined): string {
  const connect =
    host && /^[\w.:[\]-]+$/.test(host) ? `'self' ws://${host} wss://${host}` : "'self'";
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src ${connect}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/** Serves the dashboard; returns false for a request that is not the dashboard's. */
export function createDashboardHandler(): (req: IncomingMessage, res: ServerResponse) => boolean {
  const page = load("index.html");
  const assets = new Map<string, Asset>(ASSETS.map((name) => [name, load(name)]));
  return (req, res) => {
    const pathname = new URL(req.url ?? "/", "http://dashboard").pathname;
    if (pathname !== DASHBOARD_PATH && !pathname.startsWith(`${DASHBOARD_PATH}/`)) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return true;
    }
    const name = pathname.slice(DASHBOARD_PATH.length + 1);
    const asset = assets.get(name) ?? page;
    res.writeHead(200, {
      "content-type": asset.type,
      "content-length": asset.body.length,
      "content-security-policy": dashboardPolicy(req.headers.host),
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      // The page may change with each release; the assets are small.
      "cache-control": "no-cache",
    });
    res.end(req.method === "HEAD" ? undefined : asset.body);
    return true;
  };
}
