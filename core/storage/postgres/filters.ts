// SQL for the metadata filters of searches on JSONB columns, to the semantics the SQLite storage
// has (core/storage/sqlite/storage.ts): containment for `metadata`/`values` queries, and auth filters as
// core/auth-filters.ts `isAuthMatching` defines them. Every value and key is a bound parameter.
import type { Access, AuthFilters } from "../types.ts";

/** Adds a parameter and returns its placeholder (`$n`). */
export type Bind = (value: unknown) => string;

const isScalar = (v: unknown): v is string | number | boolean =>
  typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v));

/**
 * Containment of `filter` in a JSONB column: nested objects key by key (any order), scalars equal
 * in type and value, `null` only a JSON null, arrays as whole values (in order). Not `@>`, whose
 * arrays match any superset, so both backends answer the same.
 */
export function containmentSql(
  column: string,
  filter: Record<string, unknown> | undefined,
  bind: Bind,
  path: string[] = [],
): string[] {
  if (!filter) return [];
  const out: string[] = [];
  for (const [key, value] of Object.entries(filter)) {
    const keys = [...path, key];
    if (value !== null && typeof value !== "object" && !isScalar(value)) {
      out.push("FALSE");
      continue;
    }
    const at = `(${column} #> ${bind(keys)}::text[])`;
    if (value === null) {
      out.push(`jsonb_typeof(${at}) = 'null'`);
    } else if (Array.isArray(value)) {
      out.push(`${at} = ${bind(JSON.stringify(value))}::jsonb`);
    } else if (typeof value === "object") {
      out.push(`jsonb_typeof(${at}) = 'object'`);
      out.push(...containmentSql(column, value as Record<string, unknown>, bind, keys));
    } else {
      out.push(`${at} = ${bind(JSON.stringify(value))}::jsonb`);
    }
  }
  return out;
}

/**
 * Auth filters on a JSONB metadata column, as isAuthMatching: a plain value (or a truthy `$eq`)
 * is strict equality (objects never equal), `$contains` needs an array field holding every value;
 * an object with neither operator constrains nothing.
 */
export function authFilterSql(column: string, filters: AuthFilters | undefined, bind: Bind) {
  if (!filters) return [];
  const out: string[] = [];
  for (const [key, expected] of Object.entries(filters)) {
    // Bound only when used: a filter that constrains nothing leaves no unused parameter.
    let bound: string | undefined;
    const field = () => (bound ??= `(${column} -> ${bind(key)}::text)`);
    if (typeof expected === "object" && expected !== null) {
      const ops = expected as { $eq?: unknown; $contains?: unknown };
      if (ops.$eq) {
        out.push(equalsSql(field, ops.$eq, bind));
      } else if (ops.$contains) {
        const wanted = Array.isArray(ops.$contains) ? ops.$contains : [ops.$contains];
        out.push(`jsonb_typeof(${field()}) = 'array'`);
        for (const value of wanted) {
          out.push(
            value === null || isScalar(value)
              ? `${field()} @> ${bind(JSON.stringify([value]))}::jsonb`
              : "FALSE",
          );
        }
      }
    } else {
      out.push(equalsSql(field, expected, bind));
    }
  }
  return out;
}

/** `field` === `value` in JavaScript's sense, for a JSONB field. */
function equalsSql(field: () => string, value: unknown, bind: Bind): string {
  if (value === null) return `jsonb_typeof(${field()}) = 'null'`;
  if (isScalar(value)) return `${field()} = ${bind(JSON.stringify(value))}::jsonb`;
  return "FALSE";
}

/**
 * Which rows `access` reaches, in SQL: every row without filters; with `system`, also the
 * server's own assistants (`metadata.created_by` is "system").
 */
export function accessSql(column: string, access: Access | undefined, bind: Bind): string[] {
  if (!access?.filters) return [];
  const conds = authFilterSql(column, access.filters, bind);
  if (conds.length === 0) return [];
  const all = conds.join(" AND ");
  return [
    access.system ? `((${column} -> 'created_by') = '"system"'::jsonb OR (${all}))` : `(${all})`,
  ];
}
