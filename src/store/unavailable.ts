/**
 * Which database errors mean "the database is not there right now" (unreachable, restarting,
 * out of disk, read-only) rather than "this statement is wrong". The engine waits out the
 * first kind and retries; the second kind is a bug or bad data and is reported as such.
 *
 * Errors arrive raw from pg or better-sqlite3, or wrapped by Prisma (a known request error
 * whose `meta.driverAdapterError` carries the driver's kind) or by our own code (`cause`):
 * the whole chain is looked at.
 */

/** Node.js socket errors: the server is not reachable or went away. */
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOENT",
]);

/**
 * PostgreSQL SQLSTATE classes and codes: 08 connection exception, 53 insufficient resources
 * (disk full, too many connections), 57P01–57P03 shutting down / starting up, 58 system
 * error (I/O), 25006 read-only transaction (a standby, or default_transaction_read_only).
 */
const PG_CLASSES = ["08", "53", "58"];
const PG_CODES = new Set(["57P01", "57P02", "57P03", "25006"]);

/** better-sqlite3 codes (extended codes start with these): disk full, read-only, I/O, locked. */
const SQLITE_PREFIXES = [
  "SQLITE_FULL",
  "SQLITE_READONLY",
  "SQLITE_IOERR",
  "SQLITE_BUSY",
  "SQLITE_CANTOPEN",
];

/** Prisma's driver adapter error kinds that mean the same. */
const ADAPTER_KINDS = new Set([
  "DatabaseNotReachable",
  "ConnectionClosed",
  "SocketTimeout",
  "TooManyConnections",
  "TlsConnectionError",
]);

/** Prisma engine codes: cannot reach, timed out, connection closed, pool timeout. */
const PRISMA_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024"]);

/** pg raises these as plain Errors, without a code. */
const PG_MESSAGES = [
  /^Connection terminated/,
  /timeout exceeded when trying to connect/,
  /Client has encountered a connection error and is not queryable/,
  /Connection closed/i,
  /terminating connection/,
];

function oneIsUnavailable(error: Record<string, unknown>): boolean {
  const code = typeof error.code === "string" ? error.code : undefined;
  if (code) {
    if (SOCKET_CODES.has(code) || PG_CODES.has(code) || PRISMA_CODES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code) && PG_CLASSES.includes(code.slice(0, 2))) return true;
    if (SQLITE_PREFIXES.some((prefix) => code.startsWith(prefix))) return true;
  }
  if (typeof error.kind === "string" && ADAPTER_KINDS.has(error.kind)) return true;
  if (error.kind === "postgres" && typeof error.code === "string") {
    const pgCode = error.code;
    if (PG_CODES.has(pgCode) || PG_CLASSES.includes(pgCode.slice(0, 2))) return true;
  }
  const message = typeof error.message === "string" ? error.message : "";
  return PG_MESSAGES.some((pattern) => pattern.test(message));
}

/** True when `error` (or what it wraps) says the database is unavailable, not that a statement failed. */
export function isStoreUnavailable(error: unknown): boolean {
  let current: unknown = error;
  // Bounded: a cause chain longer than this is not an error we made.
  for (let depth = 0; depth < 8 && current && typeof current === "object"; depth++) {
    const record = current as Record<string, unknown>;
    if (record.unavailable === true) return true;
    if (oneIsUnavailable(record)) return true;
    const meta = record.meta as Record<string, unknown> | undefined;
    const adapter = meta?.driverAdapterError as Record<string, unknown> | undefined;
    if (adapter && isStoreUnavailable(adapter.cause ?? adapter)) return true;
    if (Array.isArray(record.errors) && record.errors.some((inner) => isStoreUnavailable(inner)))
      return true;
    current = record.cause;
  }
  return false;
}
