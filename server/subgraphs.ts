// GET /assistants/{id}/subgraphs[/{namespace}]: the subgraphs of a graph, keyed by namespace
// (`node` or `node|inner`, no task ids), each with its JSON schemas, as the LangGraph server
// answers (langgraph-api's assistants.mjs: LangGraph's getSubgraphsAsync, then a schema per graph).
import { RefineryError } from "../core/errors.ts";
import type { SchemaHelpers } from "../graphs/schemas/runtime.ts";

/** A graph's JSON schemas in the LangGraph server's shape (GraphSchema). */
export interface GraphSchema {
  state?: unknown;
  input?: unknown;
  output?: unknown;
  config?: unknown;
}

interface WithSubgraphs {
  getSubgraphsAsync?(namespace?: string, recurse?: boolean): AsyncIterable<[string, unknown]>;
  getSubgraphs?(namespace?: string, recurse?: boolean): Iterable<[string, unknown]>;
}

/** The most subgraphs one request lists (a graph's own nesting is finite; this bounds the work). */
const MAX_SUBGRAPHS = 1000;

/**
 * The schemas of one subgraph. The reference takes them from the state definition at run time
 * (zod, StateSchema) or else from the TypeScript source; here: LangGraph's own zod helpers, and
 * an empty object for other states. The schema extraction module (Annotation/zod states) takes
 * this over: it is the one function to swap.
 */
export async function subgraphSchemaOf(
  graph: unknown,
  /** The zod helpers of the LangGraph copy the graph's module imported (graphs/schemas). */
  helpers?: SchemaHelpers,
): Promise<GraphSchema> {
  try {
    const zod = helpers ?? (await import("@langchain/langgraph/zod/schema"));
    const g = graph as Parameters<typeof zod.getUpdateTypeSchema>[0];
    const found = {
      state: zod.getUpdateTypeSchema(g),
      input: zod.getInputTypeSchema(g),
      output: zod.getOutputTypeSchema(g),
      config: zod.getConfigTypeSchema(g),
    };
    if (Object.values(found).some((v) => v != null)) return found;
  } catch {
    // not a zod state
  }
  return {};
}

/** `recurse` as the LangGraph server reads it (true/1/yes, false/0/no), or a 422 naming it. */
export function parseRecurse(raw: unknown): boolean {
  if (raw === undefined) return false;
  const v = typeof raw === "string" ? raw.toLowerCase() : undefined;
  if (v === "true" || v === "1" || v === "yes") return true;
  if (v === "false" || v === "0" || v === "no" || v === "") return false;
  throw new RefineryError("invalid_input", "recurse must be a boolean", {
    field: "recurse",
    fix: "pass recurse=true or recurse=false",
  });
}

/**
 * The subgraphs of `graph` under `namespace` (all of the first level without one; with
 * `recurse`, nested ones too, as `outer|inner`), each with its schemas.
 */
export async function subgraphsOf(
  graph: unknown,
  namespace: string | undefined,
  recurse: boolean,
  schemaOf: (subgraph: unknown) => Promise<GraphSchema> = subgraphSchemaOf,
): Promise<Record<string, GraphSchema>> {
  const g = graph as WithSubgraphs;
  const found: [string, unknown][] = [];
  if (typeof g.getSubgraphsAsync === "function") {
    for await (const entry of g.getSubgraphsAsync(namespace, recurse)) {
      found.push(entry);
      if (found.length >= MAX_SUBGRAPHS) break;
    }
  } else if (typeof g.getSubgraphs === "function") {
    for (const entry of g.getSubgraphs(namespace, recurse)) {
      found.push(entry);
      if (found.length >= MAX_SUBGRAPHS) break;
    }
  }
  const out: Record<string, GraphSchema> = {};
  for (const [ns, subgraph] of found) out[ns] = await schemaOf(subgraph);
  return out;
}

/**
 * The nodes of a graph's subgraphs (at any depth) that are not the graph's own, each with the
 * namespace of the first subgraph that has it: a run's interrupt_before/after cannot reach them.
 */
export async function subgraphNodesOf(graph: unknown): Promise<Map<string, string>> {
  const own = new Set(Object.keys((graph as { nodes?: object }).nodes ?? {}));
  const out = new Map<string, string>();
  const g = graph as WithSubgraphs;
  if (typeof g.getSubgraphsAsync !== "function") return out;
  let seen = 0;
  for await (const [ns, sub] of g.getSubgraphsAsync(undefined, true)) {
    for (const n of Object.keys((sub as { nodes?: object }).nodes ?? {}))
      if (!own.has(n) && !n.startsWith("__") && !out.has(n)) out.set(n, ns);
    if (++seen >= MAX_SUBGRAPHS) break;
  }
  return out;
}
