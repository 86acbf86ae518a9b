// Row filters returned by auth handlers, matched as the LangGraph server matches them
// (libs/langgraph-api/src/auth/index.mts `isAuthMatching`), so an auth module written for it
// behaves the same here. Storage applies them: in JavaScript for a row read by id, in SQL for
// searches (core/storage/sqlite/storage.ts, core/storage/postgres/filters.ts), all to these semantics.
import type { AuthFilters } from "./storage/types.ts";

/**
 * True when `metadata` satisfies every filter key:
 * - a plain value (or `{$eq: v}` with a truthy `v`) must equal the field strictly (===);
 * - `{$contains: v}` needs an array field that includes `v` (every element, for a list);
 * - an object with neither operator constrains nothing; no filters match everything.
 */
export function isAuthMatching(
  metadata: Record<string, unknown> | undefined | null,
  filters: AuthFilters | undefined,
): boolean {
  if (filters == null) return true;
  for (const [key, expected] of Object.entries(filters)) {
    const actual = metadata?.[key];
    if (typeof expected === "object" && expected !== null) {
      const ops = expected as { $eq?: unknown; $contains?: unknown };
      if (ops.$eq) {
        if (actual !== ops.$eq) return false;
      } else if (ops.$contains) {
        if (!Array.isArray(actual)) return false;
        const wanted = Array.isArray(ops.$contains) ? ops.$contains : [ops.$contains];
        if (!wanted.every((v) => actual.includes(v))) return false;
      }
    } else if (actual !== expected) {
      return false;
    }
  }
  return true;
}
