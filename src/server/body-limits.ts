/**
 * Request bodies: a POST streamed without a length (chunked) is refused with 411, and one over
 * the limit with 413 before a byte of it is read (the connection is closed so that the
 * client's upload stops). Requests made in-process through `yoga.fetch` carry their body whole
 * and need no length.
 */
import type { Plugin } from "graphql-yoga";

export interface BodyLimitsOptions {
  /** Largest request body, in bytes. */
  readonly maxRequestBytes: number;
}

const refusal = (status: number, code: string, message: string, headers: HeadersInit = {}) =>
  Response.json({ errors: [{ message, extensions: { code } }] }, { status, headers });

/** The yoga plugin. */
export function useBodyLimits({ maxRequestBytes }: BodyLimitsOptions): Plugin {
  if (!Number.isInteger(maxRequestBytes) || maxRequestBytes < 1)
    throw new TypeError(
      `Expected \`maxRequestBytes\` >= 1, got \`${maxRequestBytes}\` (${typeof maxRequestBytes})`,
    );
  return {
    onRequest({ request, endResponse }) {
      if (request.method !== "POST") return;
      const length = request.headers.get("content-length");
      if (length === null && request.headers.has("transfer-encoding")) {
        endResponse(
          refusal(411, "LENGTH_REQUIRED", "a request body needs a Content-Length header"),
        );
      } else if (length !== null && Number(length) > maxRequestBytes) {
        endResponse(
          refusal(
            413,
            "PAYLOAD_TOO_LARGE",
            `request body of ${length} bytes is over the limit of ${maxRequestBytes}`,
            { connection: "close" },
          ),
        );
      }
    },
  };
}
