/**
 * HTTP for the `http` action, refusing private, loopback and link-local addresses unless the
 * host is allowed (`HTTP_ACTION_ALLOWLIST`). The check runs in the socket's DNS lookup, on the
 * address actually connected to, so a name that resolves to a public address at check time
 * and a private one at connect time (DNS rebinding) is still refused. Redirects are followed
 * (at most 5) and each hop is checked the same way.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http from "node:http";
import https from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";
import { abortError, PermanentError, RetryableError } from "../errors.ts";

const blocked = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  blocked.addSubnet(network, prefix, "ipv4");
}
for (const [network, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
  ["64:ff9b::", 96],
] as const) {
  blocked.addSubnet(network, prefix, "ipv6");
}

/** True for addresses the http action may not reach without the allowlist. */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return blocked.check(mapped[1]!, "ipv4");
  const family = isIP(address);
  if (family === 0) return true;
  return blocked.check(address, family === 6 ? "ipv6" : "ipv4");
}

export interface HttpRequestOptions {
  readonly url: string;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  /** Hosts (names or addresses, lower case) exempt from the private-address check. */
  readonly allowlist: readonly string[];
  /** @default 5 MiB */
  readonly maxResponseBytes?: number;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly url: string;
}

function refuse(host: string, address: string): PermanentError {
  return new PermanentError(
    `http action refused host "${host}": ${address} is a private, loopback or link-local address; add it to HTTP_ACTION_ALLOWLIST to allow it`,
    "HOST_NOT_ALLOWED",
  );
}

function guardedLookup(host: string): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, "", 0);
      const list = addresses as LookupAddress[];
      const bad = list.find((entry) => isPrivateAddress(entry.address));
      if (bad)
        return callback(refuse(host, bad.address) as unknown as NodeJS.ErrnoException, "", 0);
      if (options.all)
        return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
      callback(null, list[0]!.address, list[0]!.family);
    });
  };
}

const RETRYABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
]);

function once(options: HttpRequestOptions, url: URL): Promise<HttpResponse> {
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const allowed = options.allowlist.includes(host);
  if (!allowed && isIP(host) !== 0 && isPrivateAddress(host))
    return Promise.reject(refuse(host, host));
  const client = url.protocol === "https:" ? https : http;
  const limit = options.maxResponseBytes ?? 5 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const request = client.request(
      url,
      {
        method: options.method,
        headers:
          options.body === undefined
            ? options.headers
            : { ...options.headers, "content-length": Buffer.byteLength(options.body) },
        signal: options.signal,
        timeout: options.timeoutMs,
        ...(allowed ? {} : { lookup: guardedLookup(host) }),
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) {
            request.destroy(
              new PermanentError(
                `response from ${host} is larger than ${limit} bytes`,
                "RESPONSE_TOO_LARGE",
              ),
            );
            return;
          }
          chunks.push(chunk);
        });
        response.on("error", reject);
        response.on("end", () => {
          const headers: Record<string, string> = {};
          for (const [key, value] of Object.entries(response.headers)) {
            if (value !== undefined) headers[key] = Array.isArray(value) ? value.join(", ") : value;
          }
          resolve({
            status: response.statusCode ?? 0,
            headers,
            body: Buffer.concat(chunks).toString("utf8"),
            url: url.toString(),
          });
        });
      },
    );
    request.on("timeout", () =>
      request.destroy(
        new RetryableError(`request to ${host} timed out after ${options.timeoutMs} ms`, "TIMEOUT"),
      ),
    );
    request.on("error", (error: NodeJS.ErrnoException) => {
      if (options.signal.aborted) return reject(abortError(options.signal));
      if (error instanceof PermanentError || error instanceof RetryableError) return reject(error);
      const retryable = error.code === undefined || RETRYABLE_CODES.has(error.code);
      const message = `request to ${host} failed: ${error.code ?? error.message}`;
      reject(
        retryable
          ? new RetryableError(message, "NETWORK", { cause: error })
          : new PermanentError(message, "NETWORK", { cause: error }),
      );
    });
    if (options.body !== undefined) request.write(options.body);
    request.end();
  });
}

/** Sends the request, following redirects; rejects with a RetryableError or PermanentError. */
export async function httpRequest(options: HttpRequestOptions): Promise<HttpResponse> {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new PermanentError(`"${options.url}" is not a valid URL`, "INVALID_URL");
  }
  let current = options;
  for (let hop = 0; ; hop++) {
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new PermanentError(
        `only http and https URLs are allowed, got ${url.protocol}`,
        "INVALID_URL",
      );
    }
    const response = await once(current, url);
    const location = response.headers.location;
    if (response.status < 300 || response.status >= 400 || response.status === 304 || !location)
      return response;
    if (hop >= 5)
      throw new PermanentError(`more than 5 redirects from ${options.url}`, "TOO_MANY_REDIRECTS");
    url = new URL(location, url);
    if (
      response.status === 303 ||
      ((response.status === 301 || response.status === 302) && current.method === "POST")
    ) {
      const { body: _body, ...rest } = current;
      current = { ...rest, method: "GET" };
    }
  }
}
