// The graph registry: the built-in graphs plus those declared in a langgraph.json
// (`{"graphs": {"id": "./file.ts:export"}, "env": {...}}`). Every graph runs on the server's
// own checkpointer; an export may be a compiled graph, a StateGraph or a factory.
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { BaseCheckpointSaver, BaseStore } from "@langchain/langgraph";
import { v5 as uuidv5 } from "uuid";
import { z } from "zod";
import { fromZodError, RefineryError } from "../core/errors.ts";

/** The namespace the LangGraph server uses for system assistant ids: uuid5(graph_id, NS). */
export const ASSISTANT_NAMESPACE = "6ba7b821-9dad-11d1-80b4-00c04fd430c8";

export function systemAssistantId(graphId: string): string {
  return uuidv5(graphId, ASSISTANT_NAMESPACE);
}

/** What the server needs from a compiled graph (a LangGraph Pregel). */
export interface RunnableGraph {
  stream(input: unknown, options?: Record<string, unknown>): Promise<AsyncIterable<unknown>>;
  getState(
    config: Record<string, unknown>,
    options?: Record<string, unknown>,
  ): Promise<StateSnapshotLike>;
  getStateHistory(
    config: Record<string, unknown>,
    options?: Record<string, unknown>,
  ): AsyncIterable<StateSnapshotLike>;
  updateState(
    config: Record<string, unknown>,
    values: unknown,
    asNode?: string,
  ): Promise<{ configurable?: Record<string, unknown> }>;
  getGraphAsync(
    config?: Record<string, unknown>,
  ): Promise<{ toJSON(): unknown; drawMermaid?(opts?: unknown): string }>;
  checkpointer?: unknown;
  store?: unknown;
  nodes?: Record<string, unknown>;
}

export interface StateSnapshotLike {
  values: unknown;
  next: string[];
  tasks: {
    id: string;
    name: string;
    path?: unknown[];
    error?: unknown;
    interrupts?: { id?: string; value: unknown }[];
    state?: unknown;
    result?: unknown;
  }[];
  metadata?: Record<string, unknown>;
  createdAt?: string;
  config: { configurable?: Record<string, unknown> };
  parentConfig?: { configurable?: Record<string, unknown> };
}

export interface GraphEntry {
  graphId: string;
  /** "builtin" or the langgraph.json spec ("./file.ts:export"). */
  source: string;
  description?: string;
  get(config?: Record<string, unknown>): Promise<RunnableGraph>;
}

export interface GraphRegistry {
  ids(): string[];
  entry(graphId: string): GraphEntry | undefined;
  get(graphId: string, config?: Record<string, unknown>): Promise<RunnableGraph>;
  /** Adds a graph at run time (declarative graphs); `replace` swaps an entry with the same id. */
  register(entry: GraphEntry, options?: { replace?: boolean }): void;
  /** Removes a graph added at run time; false when no graph has that id. */
  unregister(graphId: string): boolean;
}

export interface RegistryOptions {
  builtins: Record<string, { graph: RunnableGraph; description?: string }>;
  /** Path of a langgraph.json; its graphs are added to the built-ins. */
  configPath?: string;
  checkpointer: BaseCheckpointSaver;
  store?: BaseStore;
  log?: (level: "info" | "warn", message: string, fields?: Record<string, unknown>) => void;
}

const LangGraphJsonSchema = z
  .object({
    graphs: z.record(
      z.string().regex(/^[A-Za-z0-9_.-]+$/, "graph ids may contain letters, digits, _ . -"),
      z.string().regex(/^.+:[A-Za-z_$][\w$]*$/, 'expected "./path/to/file.ts:exportName"'),
    ),
    env: z.union([z.record(z.string(), z.string()), z.string()]).optional(),
  })
  .loose();

export async function createGraphRegistry(options: RegistryOptions): Promise<GraphRegistry> {
  const entries = new Map<string, GraphEntry>();
  for (const [graphId, { graph, description }] of Object.entries(options.builtins)) {
    entries.set(graphId, { graphId, source: "builtin", description, get: async () => graph });
  }
  if (options.configPath) {
    for (const entry of await loadLangGraphJson(options.configPath, options)) {
      if (entries.has(entry.graphId)) {
        throw new RefineryError(
          "invalid_config",
          `graph id "${entry.graphId}" is already registered (built-in)`,
          {
            field: `graphs.${entry.graphId}`,
            fix: "rename the graph in langgraph.json",
          },
        );
      }
      entries.set(entry.graphId, entry);
    }
  }
  return {
    ids: () => [...entries.keys()],
    entry: (id) => entries.get(id),
    async get(id, config) {
      const entry = entries.get(id);
      if (!entry)
        throw new RefineryError("not_found", `graph "${id}" is not registered`, {
          field: "graph_id",
        });
      return entry.get(config);
    },
    register(entry, { replace = false } = {}) {
      if (entries.has(entry.graphId) && !replace) {
        throw new RefineryError("conflict", `graph "${entry.graphId}" is already registered`, {
          field: "graph_id",
          fix: "choose another graph id",
        });
      }
      entries.set(entry.graphId, entry);
    },
    unregister: (id) => entries.delete(id),
  };
}

async function loadLangGraphJson(path: string, options: RegistryOptions): Promise<GraphEntry[]> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new RefineryError(
      "invalid_config",
      `cannot read ${path}: ${(err as Error).message.split("\n")[0]}`,
      {
        field: "--config",
        fix: "pass the path of a valid langgraph.json",
      },
    );
  }
  const parsed = LangGraphJsonSchema.safeParse(raw);
  if (!parsed.success) throw fromZodError(parsed.error, path, "invalid_config");
  const base = dirname(resolve(path));
  const env = parsed.data.env;
  if (env && typeof env === "object") {
    for (const [k, v] of Object.entries(env)) process.env[k] ??= v;
  }
  const out: GraphEntry[] = [];
  for (const [graphId, spec] of Object.entries(parsed.data.graphs)) {
    const cut = spec.lastIndexOf(":");
    const file = spec.slice(0, cut);
    const exportName = spec.slice(cut + 1);
    const abs = isAbsolute(file) ? file : resolve(base, file);
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
    } catch (err) {
      throw new RefineryError(
        "invalid_config",
        `cannot load graph "${graphId}" from ${abs}: ${(err as Error).message.split("\n")[0]}`,
        {
          field: `graphs.${graphId}`,
          fix: "check the path (relative to langgraph.json) and that the file compiles",
        },
      );
    }
    const exported = mod[exportName];
    if (exported === undefined) {
      throw new RefineryError("invalid_config", `${abs} has no export "${exportName}"`, {
        field: `graphs.${graphId}`,
        fix: `export the graph as \`export const ${exportName} = ...\``,
      });
    }
    out.push(makeEntry(graphId, spec, exported, options));
  }
  return out;
}

function isCompiled(x: unknown): x is RunnableGraph {
  return (
    typeof x === "object" &&
    x !== null &&
    typeof (x as RunnableGraph).getState === "function" &&
    typeof (x as RunnableGraph).stream === "function"
  );
}

function isStateGraph(x: unknown): x is { compile(opts: Record<string, unknown>): RunnableGraph } {
  return (
    typeof x === "object" &&
    x !== null &&
    typeof (x as { compile?: unknown }).compile === "function"
  );
}

function makeEntry(
  graphId: string,
  source: string,
  exported: unknown,
  options: RegistryOptions,
): GraphEntry {
  const attach = (g: unknown): RunnableGraph => {
    if (isStateGraph(g) && !isCompiled(g))
      return g.compile({ checkpointer: options.checkpointer, store: options.store });
    if (isCompiled(g)) {
      if (
        g.checkpointer &&
        g.checkpointer !== options.checkpointer &&
        typeof g.checkpointer === "object"
      ) {
        options.log?.(
          "warn",
          `graph "${graphId}" was compiled with its own checkpointer; the server's durable checkpointer is used instead so runs survive restarts`,
          { graph_id: graphId },
        );
      }
      g.checkpointer = options.checkpointer;
      if (options.store) g.store = options.store;
      return g;
    }
    throw new RefineryError("invalid_config", `export for graph "${graphId}" is not a graph`, {
      field: `graphs.${graphId}`,
      fix: "export a compiled graph, a StateGraph, or a function (config) => graph",
    });
  };
  if (typeof exported === "function" && !isStateGraph(exported)) {
    const factory = exported as (config: Record<string, unknown>) => unknown;
    return { graphId, source, get: async (config) => attach(await factory(config ?? {})) };
  }
  const graph = attach(exported);
  return { graphId, source, get: async () => graph };
}
