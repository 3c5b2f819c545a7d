/** The server's logger: JSON lines, each with the instance and, inside a request, its id. */
import pino, { type DestinationStream, type Logger } from "pino";
import type { Config } from "../config.ts";
import { currentRequestId } from "../server/request-context.ts";

/** A pino logger whose lines carry `requestId` while a request is handled (see request-context.ts). */
export function createLogger(
  config: Pick<Config, "logLevel" | "instanceId">,
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { instance: config.instanceId },
      mixin: () => {
        const requestId = currentRequestId();
        return requestId ? { requestId } : {};
      },
    },
    destination,
  );
}
