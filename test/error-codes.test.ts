/**
 * The README's error-code table lists every code a client can get, and only those: the
 * domain's, the HTTP side's, and the codes of the yoga version installed. Then the request
 * mistakes that yoga answers are sent for real.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_CODES } from "../src/domain/errors.ts";
import { SERVER_ERROR_CODES } from "../src/server/errors.ts";
import { MemoryStore } from "../src/store/memory.ts";
import { repoRoot } from "./helpers/process.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

const known = new Set<string>([...Object.keys(ERROR_CODES), ...SERVER_ERROR_CODES]);

/** Yoga codes no request can reach here, with the reason. */
const UNREACHABLE: Record<string, string> = {
  // Only from yoga's multipart file limits and its body-size plugin, neither of which is set:
  // useBodyLimits answers PAYLOAD_TOO_LARGE first.
  REQUEST_ENTITY_TOO_LARGE: "not configured",
};

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "generated" ? [] : files(full);
    return /\.(ts|js)$/.test(entry.name) ? [full] : [];
  });
}

/** Codes written as `code: "X"`, `refusal(n, "X"` or `new AppError("X"` in these files. */
function codesIn(paths: readonly string[]): Set<string> {
  const found = new Set<string>();
  const patterns = [
    /\bcode: ["']([A-Z][A-Z_]+)["']/g,
    /refusal\(\d+, "([A-Z][A-Z_]+)"/g,
    /new AppError\(\s*"([A-Z][A-Z_]+)"/g,
  ];
  for (const file of paths) {
    const text = readFileSync(file, "utf8");
    for (const pattern of patterns) for (const [, code] of text.matchAll(pattern)) found.add(code!);
  }
  return found;
}

describe("the README's table of error codes", () => {
  const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
  const section = readme.slice(
    readme.indexOf("### Error codes"),
    readme.indexOf("## Configuration"),
  );
  const listed = new Set(
    section
      .split("\n")
      .filter((line) => line.startsWith("| `"))
      .flatMap((line) => [...line.split("|")[1]!.matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]!)),
  );

  it("lists exactly the codes of the domain and of the HTTP side", () => {
    expect([...listed].sort()).toEqual([...known].sort());
  });

  it("misses no code written in the server's own code", () => {
    // Node failures (RetryableError, PermanentError: NODE_FAILED `data.code`) are data of a
    // run, not errors of a request; they are not written in these forms.
    const src = path.join(repoRoot, "src");
    const written = codesIn(
      ["server", "schema", "engine", "domain"].flatMap((dir) => files(path.join(src, dir))),
    );
    expect(written.size).toBeGreaterThan(8);
    expect([...written].filter((code) => !known.has(code))).toEqual([]);
  });

  it("misses no code of the installed graphql-yoga", () => {
    const yoga = codesIn(files(path.join(repoRoot, "node_modules", "graphql-yoga", "esm")));
    expect([...yoga].filter((code) => !known.has(code) && !(code in UNREACHABLE))).toEqual([]);
  });
});

describe("request mistakes", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(new MemoryStore());
  });
  afterAll(() => server.close());

  const post = (body: string) =>
    fetch(server.url, { method: "POST", headers: { "content-type": "application/json" }, body });
  const codeOf = async (response: Response) => {
    const body = (await response.json()) as { errors: { extensions: { code: string } }[] };
    return [response.status, body.errors.map((e) => e.extensions.code)];
  };

  it("answers BAD_REQUEST for what is not a GraphQL request", async () => {
    expect(await codeOf(await post("{nope"))).toEqual([400, ["BAD_REQUEST"]]);
    expect(await codeOf(await post("{}"))).toEqual([200, ["BAD_REQUEST"]]);
    expect(
      await codeOf(await post(JSON.stringify({ query: "{ __typename }", variables: "x" }))),
    ).toEqual([400, ["BAD_REQUEST"]]);
    const mutation = encodeURIComponent('mutation { deletePipeline(id: "x") }');
    expect(
      await codeOf(
        // With the CSRF header: without one, CSRF prevention refuses first (security.test.ts).
        await fetch(`${server.url}?query=${mutation}`, {
          headers: { accept: "application/json", "x-graphql-yoga-csrf": "1" },
        }),
      ),
    ).toEqual([405, ["BAD_REQUEST"]]);
    expect(
      await codeOf(
        await fetch(server.url, {
          method: "PUT",
          body: "{}",
          headers: { "x-graphql-yoga-csrf": "1" },
        }),
      ),
    ).toEqual([405, ["BAD_REQUEST"]]);
  });

  it("answers OPERATION_RESOLUTION_FAILURE when it cannot tell which operation to run", async () => {
    const twoOperations = "query A { __typename } query B { __typename }";
    expect(await codeOf(await post(JSON.stringify({ query: twoOperations })))).toEqual([
      400,
      ["OPERATION_RESOLUTION_FAILURE"],
    ]);
    expect(
      await codeOf(await post(JSON.stringify({ query: twoOperations, operationName: "C" }))),
    ).toEqual([400, ["OPERATION_RESOLUTION_FAILURE"]]);
  });

  it("answers GRAPHQL_PARSE_FAILED and GRAPHQL_VALIDATION_FAILED for a bad document", async () => {
    // HTTP 200: a client that does not ask for application/graphql-response+json gets the
    // errors in a successful response, as GraphQL over HTTP has it for application/json.
    expect(await codeOf(await post(JSON.stringify({ query: "{ pipelines {" })))).toEqual([
      200,
      ["GRAPHQL_PARSE_FAILED"],
    ]);
    expect(await codeOf(await post(JSON.stringify({ query: "{ nothing }" })))).toEqual([
      200,
      ["GRAPHQL_VALIDATION_FAILED"],
    ]);
  });
});
