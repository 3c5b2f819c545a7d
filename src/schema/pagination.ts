/** Relay connections over keyset pages (newest first); the cursor is the item's id. */
import { BadInputError } from "../domain/errors.ts";
import type { Page, PageArgs } from "../store/types.ts";

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

/** Reads `first`/`after`; `last`/`before` are not supported (lists are newest first). */
export function pageArgs(args: {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}): PageArgs {
  if (args.last != null || args.before != null) {
    throw new BadInputError("paginate with first and after; last and before are not supported");
  }
  const first = args.first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 0 || first > MAX_PAGE_SIZE) {
    throw new BadInputError(`first must be 0 to ${MAX_PAGE_SIZE}, got ${first}`);
  }
  return { first, after: args.after ?? null };
}

export function toConnection<T extends { id: string }>(page: Page<T>, args: PageArgs) {
  const edges = page.items.map((node) => ({ cursor: node.id, node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: page.hasNextPage,
      hasPreviousPage: Boolean(args.after),
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}
