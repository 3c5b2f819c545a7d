/**
 * Limits on GraphQL documents. graphql-armor does what it covers: tokens (its counting
 * parser), depth, aliases, directives and cost, each refusal given a stable code here. Kept
 * of our own, because no library covers it: a document nested too deeply for the parser's
 * recursion (a RangeError, which would otherwise be a 500) becomes a parse error. Field
 * suggestions ("Did you mean …") are blocked with introspection off, since they would spell
 * out the schema that turning introspection off hides.
 */
import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { maxDepthPlugin } from "@escape.tech/graphql-armor-max-depth";
import { MaxTokensParserWLexer } from "@escape.tech/graphql-armor-max-tokens";
import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { SecurityConfig } from "../config.ts";

/** The codes of the refusals, as README's error table lists them. */
export const DOCUMENT_LIMIT_CODES = [
  "QUERY_TOO_DEEP",
  "TOO_MANY_ALIASES",
  "TOO_MANY_DIRECTIVES",
  "TOO_MANY_TOKENS",
  "QUERY_TOO_COSTLY",
] as const;

/** Gives armor's refusal (a plain GraphQLError) its code. */
const coded =
  (code: (typeof DOCUMENT_LIMIT_CODES)[number]) => (_context: unknown, error: GraphQLError) => {
    (error.extensions as Record<string, unknown>).code = code;
  };

/** The yoga plugins. */
export function useDocumentLimits(security: SecurityConfig): Plugin[] {
  const { maxDepth, maxAliases, maxDirectives, maxTokens, maxCost } = security.document;
  const tokens = { n: maxTokens, onReject: [coded("TOO_MANY_TOKENS")] };
  const parsing: Plugin = {
    onParse({ setParseFn }) {
      setParseFn((source, options) => {
        try {
          return new MaxTokensParserWLexer(source, { ...options, ...tokens }).parseDocument();
        } catch (error) {
          if (error instanceof RangeError) {
            throw new GraphQLError("Syntax Error: document nested too deeply to parse", {
              extensions: { code: "GRAPHQL_PARSE_FAILED" },
            });
          }
          throw error;
        }
      });
    },
  };
  // Depth first, on its own: a query too deep is also too costly, and depth says why better.
  const depth = maxDepthPlugin({
    n: maxDepth,
    flattenFragments: true,
    onReject: [coded("QUERY_TOO_DEEP")],
  }) as Plugin;
  const armor = EnvelopArmorPlugin({
    maxTokens: { enabled: false },
    maxDepth: { enabled: false },
    maxAliases: { n: maxAliases, onReject: [coded("TOO_MANY_ALIASES")] },
    maxDirectives: { n: maxDirectives, onReject: [coded("TOO_MANY_DIRECTIVES")] },
    costLimit: { maxCost, onReject: [coded("QUERY_TOO_COSTLY")] },
    blockFieldSuggestion: { enabled: !security.introspection },
  }) as Plugin;
  return [parsing, depth, armor];
}
