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
 * containmentSql's test in JavaScript, for documents Postgres cannot read (packed thread values):
 * whether `doc` holds `filter` with exactly the semantics of the SQL conditions above.
 */
export function containsJson(doc: unknown, filter: Record<string, unknown>): boolean {
  for (const [key, value] of Object.entries(filter)) {
    const at = child(doc, key);
    if (value === null) {
      if (at !== null) return false;
    } else if (Array.isArray(value)) {
      if (at === undefined || !jsonbEqual(at, value)) return false;
    } else if (typeof value === "object") {
      if (!isObject(at) || !containsJson(at, value as Record<string, unknown>)) return false;
    } else if (!isScalar(value) || at === undefined || !jsonbEqual(at, value)) {
      return false;
    }
  }
  return true;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** `#>` one step: an object's key, or an array's index (negative from the end), as Postgres. */
function child(doc: unknown, key: string): unknown {
  if (isObject(doc)) return Object.hasOwn(doc, key) ? doc[key] : undefined;
  if (Array.isArray(doc) && /^-?\d+$/.test(key)) {
    const i = Number(key);
    return doc[i < 0 ? doc.length + i : i];
  }
  return undefined;
}

/** JSONB equality: objects key by key in any order, arrays in order, numbers by value. */
function jsonbEqual(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) &&
      Array.isArray(b) &&
      a.length === b.length &&
      a.every((x, i) => jsonbEqual(x, b[i]))
    );
  }
  if (isObject(a) || isObject(b)) {
    if (!isObject(a) || !isObject(b)) return false;
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length &&
      keys.every((k) => Object.hasOwn(b, k) && jsonbEqual(a[k], b[k]))
    );
  }
  return a === b;
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
