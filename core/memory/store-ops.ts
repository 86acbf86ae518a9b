// What the SQLite and Postgres stores share: how a batch is planned (reads first, then the
// de-duplicated puts, as LangGraph's InMemoryStore does), how a search filter is validated into
// conditions each backend turns into SQL, and how listNamespaces selects, cuts and sorts.
import {
  validateNamespace,
  type GetOperation,
  type ListNamespacesOperation,
  type MatchCondition,
  type Operation,
  type PutOperation,
  type SearchOperation,
} from "@langchain/langgraph-checkpoint";
import { RefineryError } from "../errors.ts";

/**
 * What the Store API adds to LangGraph's operations (LangGraph's server semantics): a put's
 * `ttl` in minutes (null or absent: never expires), and whether a read pushes the expiry of what
 * it returns `ttl` minutes from now (`refreshTtl`, default true).
 */
export interface TtlOptions {
  ttl?: number | null;
  refreshTtl?: boolean;
}

/** Whether a get or search refreshes the TTL of what it reads (LangGraph's default: yes). */
export function refreshes(op: object): boolean {
  return (op as TtlOptions).refreshTtl !== false;
}

/** A put's TTL in milliseconds, or null when it never expires. */
export function ttlMsOf(op: PutOperation): number | null {
  const ttl = (op as PutOperation & TtlOptions).ttl;
  return typeof ttl === "number" ? Math.round(ttl * 60_000) : null;
}

/** Joins namespace labels; labels cannot contain it (`validateNamespace` rejects ':' and '.'). */
export const NS_SEPARATOR = ":";

export const joinNamespace = (namespace: readonly string[]): string => namespace.join(NS_SEPARATOR);
export const splitNamespace = (path: string): string[] => path.split(NS_SEPARATOR);

/**
 * The half-open range [from, to) of joined paths strictly below `prefix`; with `path = prefix`
 * it selects the prefix and everything under it, label by label (["a"] never matches ["ab"]).
 * Compared bytewise, so Postgres columns need COLLATE "C".
 */
export function descendantRange(prefix: readonly string[]): { from: string; to: string } {
  const path = joinNamespace(prefix);
  return { from: `${path}${NS_SEPARATOR}`, to: `${path};` };
}

export type Scalar = string | number | boolean | null;

export type Condition =
  | { field: string; op: "eq" | "ne"; value: Scalar }
  | { field: string; op: "gt" | "gte" | "lt" | "lte"; value: number }
  | { field: string; op: "in" | "nin"; values: Scalar[] }
  | { field: string; op: "absent" };

const RANGE_OPS = { $gt: "gt", $gte: "gte", $lt: "lt", $lte: "lte" } as const;
const OPERATORS = new Set(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"]);

function filterError(field: string, message: string): RefineryError {
  return new RefineryError("invalid_input", message, {
    field: `filter.${field}`,
    fix: "filter top-level fields by a string, number, boolean or null, or with $eq/$ne/$gt/$gte/$lt/$lte/$in/$nin",
  });
}

function scalar(field: string, value: unknown): Scalar {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number" && Number.isFinite(value)) return value;
  throw filterError(field, `cannot compare with ${describe(value)}`);
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return String(value);
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/**
 * Validates a search filter into conditions on top-level value fields, ANDed together. Equality
 * is type-strict (`"1"` is not `1`, `true` is not `1`); `$ne`/`$nin` also match items without the
 * field; `$gt`/`$gte`/`$lt`/`$lte` take a number and match only fields holding a JSON number;
 * `undefined` matches items without the field. Objects and arrays as values are refused (the
 * reference store compares them by identity, so they never match there).
 */
export function parseFilter(filter: Record<string, unknown> | undefined): Condition[] {
  if (filter === undefined || filter === null) return [];
  if (typeof filter !== "object" || Array.isArray(filter)) {
    throw filterError("", "a filter must be an object of field conditions");
  }
  const out: Condition[] = [];
  for (const [field, spec] of Object.entries(filter)) {
    if (spec === undefined) {
      out.push({ field, op: "absent" });
    } else if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
      out.push({ field, op: "eq", value: scalar(field, spec) });
    } else {
      const ops = Object.entries(spec as Record<string, unknown>);
      if (!ops.some(([op]) => op.startsWith("$"))) {
        throw filterError(field, "cannot compare with an object (filters match top-level fields)");
      }
      for (const [op, operand] of ops) {
        if (!OPERATORS.has(op)) throw filterError(field, `unknown operator ${op}`);
        const where = `${field}.${op}`;
        if (op === "$eq" || op === "$ne") {
          out.push({ field, op: op === "$eq" ? "eq" : "ne", value: scalar(where, operand) });
        } else if (op === "$in" || op === "$nin") {
          if (!Array.isArray(operand)) throw filterError(where, "expects an array");
          const values = operand.map((v, i) => scalar(`${where}[${i}]`, v));
          out.push({ field, op: op === "$in" ? "in" : "nin", values });
        } else {
          if (typeof operand !== "number" || !Number.isFinite(operand)) {
            throw filterError(where, `expects a number, got ${describe(operand)}`);
          }
          out.push({ field, op: RANGE_OPS[op as keyof typeof RANGE_OPS], value: operand });
        }
      }
    }
  }
  return out;
}

export type Read =
  | { kind: "get"; index: number; op: GetOperation }
  | { kind: "search"; index: number; op: SearchOperation; conditions: Condition[] }
  | { kind: "list"; index: number; op: ListNamespacesOperation };

export interface BatchPlan {
  reads: Read[];
  /** One put per (namespace, key), the last one given, sorted so concurrent batches lock in order. */
  puts: PutOperation[];
}

/**
 * Splits a batch the way LangGraph's stores run it: every read sees the store as it was before
 * the batch, then the puts apply, the last put of a key winning. Invalid input throws before
 * anything runs.
 */
export function planBatch(operations: readonly Operation[]): BatchPlan {
  const reads: Read[] = [];
  const puts = new Map<string, PutOperation>();
  operations.forEach((op, index) => {
    if ("namespacePrefix" in op) {
      validateNamespace(op.namespacePrefix, { allowEmpty: true, allowReservedRoot: true });
      reads.push({ kind: "search", index, op, conditions: parseFilter(op.filter) });
    } else if ("value" in op) {
      validateNamespace(op.namespace, { allowReservedRoot: true });
      if (op.value !== null && (typeof op.value !== "object" || Array.isArray(op.value))) {
        throw new RefineryError("invalid_input", "a stored value must be a JSON object", {
          field: "value",
          fix: "wrap the value in an object, e.g. { value: ... }",
        });
      }
      puts.set(JSON.stringify([op.namespace, op.key]), op);
    } else if ("key" in op && "namespace" in op) {
      validateNamespace(op.namespace, { allowEmpty: true, allowReservedRoot: true });
      reads.push({ kind: "get", index, op });
    } else if ("matchConditions" in op || "limit" in op) {
      reads.push({ kind: "list", index, op });
    } else {
      throw new RefineryError("invalid_input", `unknown store operation ${JSON.stringify(op)}`);
    }
  });
  const sorted = [...puts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { reads, puts: sorted.map(([, op]) => op) };
}

/** A prefix every listed namespace must start with that SQL can narrow by (no "*" labels). */
export function literalPrefix(op: ListNamespacesOperation): string[] | undefined {
  const prefix = op.matchConditions?.find((c) => c.matchType === "prefix")?.path ?? [];
  const wildcard = prefix.indexOf("*");
  const literal = wildcard === -1 ? prefix : prefix.slice(0, wildcard);
  return literal.length > 0 ? literal : undefined;
}

function matches(condition: MatchCondition, ns: readonly string[]): boolean {
  const { matchType, path } = condition;
  if (path.length > ns.length) return false;
  const offset = matchType === "prefix" ? 0 : ns.length - path.length;
  return path.every((label, i) => label === "*" || ns[offset + i] === label);
}

/**
 * Applies listNamespaces to the distinct namespaces holding items: every match condition
 * ("*" matches any one label), then `maxDepth` cuts and merges, then sorted by the joined path
 * (localeCompare, as the reference does), then offset and limit.
 */
export function selectNamespaces(
  all: readonly string[][],
  op: ListNamespacesOperation,
): string[][] {
  let namespaces = all.filter((ns) => (op.matchConditions ?? []).every((c) => matches(c, ns)));
  if (op.maxDepth !== undefined) {
    const cut = new Set(namespaces.map((ns) => joinNamespace(ns.slice(0, op.maxDepth))));
    namespaces = [...cut].map(splitNamespace);
  }
  namespaces.sort((a, b) => joinNamespace(a).localeCompare(joinNamespace(b)));
  const offset = op.offset ?? 0;
  return namespaces.slice(offset, offset + (op.limit ?? namespaces.length));
}
