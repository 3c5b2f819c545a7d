/**
 * Limits on GraphQL documents: a document nested too deeply to parse (a stack overflow in the
 * parser) is a parse error, not a server error; a query deeper than `maxDepth` selections is
 * refused before it runs (pipeline → runs → pipeline → runs … would otherwise multiply work).
 */
import {
  type ASTVisitor,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  parse,
  type SelectionSetNode,
  type ValidationContext,
} from "graphql";
import type { Plugin } from "graphql-yoga";

/** @default 20 */
export const MAX_QUERY_DEPTH = 20;
/** Tokens in one document; definitions this large belong in variables. */
export const MAX_TOKENS = 1_000_000;

function depthRule(maxDepth: number) {
  return (context: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const definition of context.getDocument().definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION)
        fragments.set(definition.name.value, definition);
    }
    // Depth of a selection set, fragments expanded; each fragment counted once per path.
    const depthOf = (set: SelectionSetNode, seen: ReadonlySet<string>): number => {
      let deepest = 0;
      for (const selection of set.selections) {
        if (selection.kind === Kind.FIELD) {
          deepest = Math.max(
            deepest,
            selection.selectionSet ? 1 + depthOf(selection.selectionSet, seen) : 1,
          );
        } else if (selection.kind === Kind.INLINE_FRAGMENT) {
          deepest = Math.max(deepest, depthOf(selection.selectionSet, seen));
        } else if (!seen.has(selection.name.value)) {
          const fragment = fragments.get(selection.name.value);
          if (fragment)
            deepest = Math.max(
              deepest,
              depthOf(fragment.selectionSet, new Set([...seen, selection.name.value])),
            );
        }
      }
      return deepest;
    };
    return {
      OperationDefinition(operation) {
        const depth = depthOf(operation.selectionSet, new Set());
        if (depth > maxDepth) {
          context.reportError(
            new GraphQLError(`query is ${depth} levels deep; the limit is ${maxDepth}`, {
              nodes: [operation],
              extensions: { code: "QUERY_TOO_DEEP" },
            }),
          );
        }
      },
    };
  };
}

/** The yoga plugin. */
export function useDocumentLimits(maxDepth = MAX_QUERY_DEPTH): Plugin {
  return {
    onParse({ setParseFn }) {
      setParseFn((source, options) => {
        try {
          return parse(source, { ...options, maxTokens: MAX_TOKENS });
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
    onValidate({ addValidationRule }) {
      addValidationRule(depthRule(maxDepth));
    },
  };
}
