/**
 * Per-principal limits the document limits cannot see: mutations per minute (runs and other
 * writes apart; rate-limiter-flexible's in-memory limiter, so counted per instance) answered
 * with 429 and Retry-After, and a cap on open subscriptions.
 */
import { type ExecutionArgs, GraphQLError, Kind, type OperationDefinitionNode } from "graphql";
import type { Plugin } from "graphql-yoga";
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import type { SecurityConfig } from "../config.ts";
import { AppError } from "../domain/errors.ts";
import type { GraphQLContext } from "../schema/context.ts";

/** Mutations that start runs; every other mutation is a write. */
const RUN_FIELDS = new Set(["runPipeline", "rerunRun"]);

function rootFields(args: ExecutionArgs): string[] {
  const operation = args.document.definitions.find(
    (d): d is OperationDefinitionNode =>
      d.kind === Kind.OPERATION_DEFINITION &&
      (args.operationName == null || d.name?.value === args.operationName),
  );
  if (!operation || operation.operation !== "mutation") return [];
  return operation.selectionSet.selections.flatMap((s) =>
    s.kind === Kind.FIELD ? [s.name.value] : [],
  );
}

/** The yoga plugin: refuses a mutation over its principal's budget before it executes. */
export function useRateLimits(security: SecurityConfig): Plugin<GraphQLContext> {
  const limiter = (points: number) =>
    points > 0 ? new RateLimiterMemory({ points, duration: 60 }) : undefined;
  const runs = limiter(security.runsPerMinute);
  const writes = limiter(security.writesPerMinute);
  return {
    async onExecute({ args, setResultAndStopExecution }) {
      const fields = rootFields(args);
      if (fields.length === 0) return;
      const context = args.contextValue as GraphQLContext;
      const { id } = await context.auth.principal();
      const runCount = fields.filter((f) => RUN_FIELDS.has(f)).length;
      const writeCount = fields.length - runCount;
      for (const [bucket, limit, count, perMinute] of [
        ["runs", runs, runCount, security.runsPerMinute],
        ["writes", writes, writeCount, security.writesPerMinute],
      ] as const) {
        if (!limit || count === 0) continue;
        try {
          await limit.consume(id, count);
        } catch (refusal) {
          if (!(refusal instanceof RateLimiterRes)) throw refusal;
          const seconds = Math.max(1, Math.ceil(refusal.msBeforeNext / 1000));
          setResultAndStopExecution({
            errors: [
              new GraphQLError(
                `rate limit: at most ${perMinute} ${bucket === "runs" ? "run starts" : "writes"} a minute; retry in ${seconds} s`,
                {
                  extensions: {
                    code: "RATE_LIMITED",
                    retryAfterSeconds: seconds,
                    http: { status: 429, headers: { "retry-after": String(seconds) } },
                  },
                },
              ),
            ],
          });
          return;
        }
      }
    },
  };
}

/** Open subscriptions by principal id. */
export function createSubscriptionCap(max: number) {
  const open = new Map<string, number>();
  const release = (id: string) => {
    const left = (open.get(id) ?? 1) - 1;
    if (left <= 0) open.delete(id);
    else open.set(id, left);
  };
  return {
    open: (id: string) => open.get(id) ?? 0,
    /** Counts `source` against `id` until it ends, fails or is closed by the client. */
    async track<T>(id: string, source: () => Promise<AsyncIterable<T>>): Promise<AsyncIterable<T>> {
      const count = open.get(id) ?? 0;
      if (count >= max) {
        throw new AppError(
          "LIMIT_REACHED",
          `${max} subscriptions are open for this key, the most MAX_SUBSCRIPTIONS_PER_KEY allows`,
          { limit: max },
        );
      }
      open.set(id, count + 1);
      let iterable: AsyncIterable<T>;
      try {
        iterable = await source();
      } catch (error) {
        release(id);
        throw error;
      }
      const iterator = iterable[Symbol.asyncIterator]();
      let released = false;
      const done = () => {
        if (!released) {
          released = true;
          release(id);
        }
      };
      return {
        [Symbol.asyncIterator]: () => ({
          async next() {
            try {
              const step = await iterator.next();
              if (step.done) done();
              return step;
            } catch (error) {
              done();
              throw error;
            }
          },
          async return(value?: unknown) {
            done();
            return (await iterator.return?.(value)) ?? { done: true, value: undefined };
          },
          async throw(error?: unknown) {
            done();
            if (iterator.throw) return iterator.throw(error);
            throw error;
          },
        }),
      };
    },
  };
}
