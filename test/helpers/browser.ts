/**
 * Debian's Chromium through playwright-core (never a downloaded browser), and browser
 * contexts that refuse and record every request to a host other than 127.0.0.1/localhost.
 */
import { existsSync } from "node:fs";
import { type Browser, type BrowserContext, chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
export const chromiumAvailable = existsSync(CHROMIUM);

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

const LOCAL = new Set(["127.0.0.1", "localhost"]);

/** A context whose requests off this machine are aborted and listed in `offHost`. */
export async function localOnlyContext(
  browser: Browser,
  options: { width?: number; height?: number } = {},
): Promise<{ context: BrowserContext; offHost: string[] }> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1400, height: options.height ?? 1000 },
  });
  const offHost: string[] = [];
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (LOCAL.has(url.hostname) || ["data:", "blob:"].includes(url.protocol))
      return route.continue();
    offHost.push(url.toString());
    return route.abort("blockedbyclient");
  });
  context.on("page", (page) =>
    page.on("websocket", (socket) => {
      if (!LOCAL.has(new URL(socket.url()).hostname)) offHost.push(socket.url());
    }),
  );
  return { context, offHost };
}
