// The graph registry: the built-in graphs plus those declared in a langgraph.json
// (`{"graphs": {"id": "./file.ts:export"}, "env": {...}}`). Every graph runs on the server's
// own checkpointer. An export may be a compiled graph, a StateGraph builder, a Promise of either,
// a function of the run's config returning any of these (sync or async, called per run), or a
// LangChain `createAgent` agent (unwrapped to its compiled graph), as the LangGraph server loads them.
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parseEnv } from "node:util";
import type { BaseCheckpointSaver, BaseStore } from "@langchain/langgraph";
import { v5 as uuidv5 } from "uuid";
import { z } from "zod";
import { fromZodError, RefineryError } from "../core/errors.ts";
import { registerSdkLogger, type SdkLogSink } from "./sdk-logger.ts";
import { importModuleSpec } from "../core/import-module.ts";

/** The namespace the LangGraph server uses for system assistant ids: uuid5(graph_id, NS). */
export const ASSISTANT_NAMESPACE = "6ba7b821-9dad-11d1-80b4-00c04fd430c8";

export function systemAssistantId(graphId: string): string {
  return uuidv5(graphId, ASSISTANT_NAMESPACE);
}

/** What the server needs from a compiled graph (a LangGraph Pregel). */
export interface RunnableGraph {
  stream(input: unknown, options?: Record<string, unknown>): Promise<AsyncIterable<unknown>>;
  /** LangChain's callback events (`version: "v2"`), for the `events` and `messages` modes. */
  streamEvents?(input: unknown, options: Record<string, unknown>): AsyncIterable<unknown>;
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
  /** A langgraph.json graph's source file (absolute) and export, for static schema extraction. */
  file?: { path: string; exportName: string };
  description?: string;
  /** The system assistant's config and context (LANGGRAPH_CONFIG), for langgraph.json graphs. */
  defaults?: { config?: Record<string, unknown>; context?: Record<string, unknown> };
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
  /** The server's log; graphs' `getLogger()` (`@langchain/langgraph-sdk/logging`) writes here. */
  log?: SdkLogSink;
  /** The server's environment; its LANGGRAPH_CONFIG wins over langgraph.json's `env`. */
  env?: Record<string, string | undefined>;
}

/** A module export as langgraph.json names it: "./file.ts:export" (default export without ":"). */
const ModuleSpec = z
  .string()
  .regex(
    /^(.+:[A-Za-z_$][\w$]*|[^:]+)$/,
    'expected "./path/to/file.ts:exportName" (or "./path/to/file.ts" for the default export)',
  );

const OriginList = z.array(z.string().min(1)).max(1000);

/**
 * langgraph.json `http`, as the LangGraph server (JS) reads it: a Hono app mounted beside the
 * API (`app`), built-in route groups turned off, and CORS. Keys the LangGraph Platform has and
 * this server does not are accepted and reported in the log (`unsupportedHttpKeys`).
 */
const HttpSectionSchema = z
  .object({
    app: ModuleSpec.optional(),
    disable_assistants: z.boolean().optional(),
    disable_threads: z.boolean().optional(),
    disable_runs: z.boolean().optional(),
    disable_store: z.boolean().optional(),
    disable_meta: z.boolean().optional(),
    cors: z
      .strictObject({
        allow_origins: OriginList.optional(),
        allow_methods: z
          .array(z.string().regex(/^[A-Za-z]+$/, "expected an HTTP method"))
          .optional(),
        allow_headers: z
          .array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "expected a header name"))
          .optional(),
        allow_credentials: z.boolean().optional(),
        allow_origin_regex: z.string().min(1).optional(),
        expose_headers: z
          .array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "expected a header name"))
          .optional(),
        max_age: z.number().int().min(0).max(86_400).optional(),
      })
      .optional(),
  })
  .loose();

export type HttpSection = z.infer<typeof HttpSectionSchema>;

const HTTP_KEYS = new Set(Object.keys(HttpSectionSchema.shape));

/** What langgraph.json says about the HTTP server: the custom app, route groups, CORS, UI. */
export interface PlatformSections {
  /** The folder of langgraph.json: module paths are relative to it. */
  base: string;
  http?: HttpSection;
  /** Keys of `http` this server does not implement (logged at start-up). */
  unsupportedHttpKeys: string[];
  /** Generative UI: a UI module per name (the graph id the SDK asks for). */
  ui?: Record<string, string>;
  uiShared: string[];
}

/**
 * The `http`, `ui` and `ui_config` sections of a langgraph.json, checked with the same schema
 * the registry loads it with (errors name the field); undefined without a config file.
 */
export function platformSectionsOf(configPath: string | undefined): PlatformSections | undefined {
  if (!configPath) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(configPath, "utf8"));
  } catch {
    return undefined; // the graph registry reports an unreadable langgraph.json
  }
  const parsed = LangGraphJsonSchema.safeParse(raw);
  if (!parsed.success) {
    const err = fromZodError(parsed.error, "", "invalid_config", LangGraphJsonSchema);
    throw new RefineryError("invalid_config", `${configPath}: ${err.message}`, {
      ...(err.field ? { field: err.field } : {}),
      ...(err.fix ? { fix: err.fix } : {}),
    });
  }
  const { http, ui, ui_config: uiConfig } = parsed.data;
  return {
    base: dirname(resolve(configPath)),
    ...(http ? { http } : {}),
    unsupportedHttpKeys: Object.keys(http ?? {})
      .filter((k) => !HTTP_KEYS.has(k))
      .map((k) => `http.${k}`),
    ...(ui && Object.keys(ui).length > 0 ? { ui } : {}),
    uiShared: uiConfig?.shared ?? [],
  };
}

const LangGraphJsonSchema = z
  .object({
    graphs: z.record(
      z.string().regex(/^[A-Za-z0-9_.-]+$/, "graph ids may contain letters, digits, _ . -"),
      ModuleSpec,
    ),
    env: z.union([z.record(z.string(), z.string()), z.string().min(1)]).optional(),
    dependencies: z.array(z.string().min(1)).optional(),
    node_version: z
      .string()
      .regex(/^\d+(\.\d+){0,2}$/, 'expected a Node.js version such as "20"')
      .optional(),
    http: HttpSectionSchema.optional(),
    ui: z
      .record(
        z
          .string()
          .regex(/^[A-Za-z0-9_.-]+$/, "UI names (graph ids) may contain letters, digits, _ . -"),
        z.string().min(1, 'expected the path of a UI module, e.g. "./src/ui.tsx"'),
      )
      .optional(),
    ui_config: z
      .strictObject({
        shared: z
          .array(z.string().min(1))
          .max(100)
          .optional()
          .describe("more packages the page provides to the components, besides React and the SDK"),
      })
      .optional(),
  })
  .loose();

export async function createGraphRegistry(options: RegistryOptions): Promise<GraphRegistry> {
  // getLogger() of @langchain/langgraph-sdk/logging, for graph (and node kind) modules; they may
  // call it when they are imported.
  if (options.log) registerSdkLogger(options.log);
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

const LangGraphConfigSchema = z.record(z.string(), z.record(z.string(), z.unknown()));

function configError(message: string, field: string, fix: string): RefineryError {
  return new RefineryError("invalid_config", message, { field, fix });
}

/**
 * `env`: an object, or the path of a dotenv file relative to langgraph.json. A missing file is a
 * warning, as with `langgraphjs dev` (a fresh clone has no `.env`); an unreadable one an error.
 */
function readEnvSetting(
  env: string | Record<string, string>,
  base: string,
  path: string,
  log: RegistryOptions["log"],
): Record<string, string> {
  if (typeof env !== "string") return env;
  const file = isAbsolute(env) ? env : resolve(base, env);
  if (!existsSync(file)) {
    log?.("warn", `the env file ${file} named in ${path} does not exist; continuing without it`, {
      field: "env",
    });
    return {};
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw configError(
      `cannot read the env file ${file} named in ${path}: ${(err as Error).message.split("\n")[0]}`,
      "env",
      "give the path of a readable dotenv file relative to langgraph.json, or an object of variables",
    );
  }
  return parseEnv(text) as Record<string, string>;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
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
  const { env, dependencies, node_version: nodeVersion } = parsed.data;
  // Variables already set in the environment win over langgraph.json's.
  const fileEnv = env === undefined ? {} : readEnvSetting(env, base, path, options.log);
  for (const [k, v] of Object.entries(fileEnv)) process.env[k] ??= v;
  if (nodeVersion && compareVersions(process.versions.node, nodeVersion) < 0) {
    options.log?.(
      "warn",
      `langgraph.json asks for Node.js ${nodeVersion}; this server runs on ${process.versions.node}`,
      { field: "node_version" },
    );
  }
  // Dependencies are installed by the project (npm install); local ones must exist.
  for (const [i, dep] of (dependencies ?? []).entries()) {
    if (!dep.startsWith(".") && !isAbsolute(dep)) continue;
    const abs = isAbsolute(dep) ? dep : resolve(base, dep);
    if (!existsSync(abs)) {
      throw configError(
        `local dependency "${dep}" does not exist (resolved to ${abs})`,
        `dependencies[${i}]`,
        "give local dependencies as paths relative to langgraph.json",
      );
    }
  }
  // LANGGRAPH_CONFIG: per-graph config (`configurable`, ...) and `context` of system assistants.
  // The server's environment wins, then langgraph.json's env, then this process's.
  const rawDefaults =
    options.env?.LANGGRAPH_CONFIG ?? fileEnv.LANGGRAPH_CONFIG ?? process.env.LANGGRAPH_CONFIG;
  let defaults: z.infer<typeof LangGraphConfigSchema> = {};
  if (rawDefaults) {
    let json: unknown;
    try {
      json = JSON.parse(rawDefaults);
    } catch (err) {
      throw configError(
        `LANGGRAPH_CONFIG is not JSON: ${(err as Error).message.split("\n")[0]}`,
        "LANGGRAPH_CONFIG",
        'set it to {"<graph id>": {"configurable": {...}, "context": {...}}}',
      );
    }
    const checked = LangGraphConfigSchema.safeParse(json);
    if (!checked.success) throw fromZodError(checked.error, "LANGGRAPH_CONFIG", "invalid_config");
    defaults = checked.data;
    for (const graphId of Object.keys(defaults)) {
      if (!(graphId in parsed.data.graphs)) {
        options.log?.(
          "warn",
          `LANGGRAPH_CONFIG names graph "${graphId}", which langgraph.json does not declare`,
          {
            field: "LANGGRAPH_CONFIG",
          },
        );
      }
    }
  }
  const out: GraphEntry[] = [];
  for (const [graphId, spec] of Object.entries(parsed.data.graphs)) {
    // "./file.ts:name", or "./file.ts" for the default export as on the LangGraph server.
    const {
      abs,
      name: exportName,
      mod,
    } = await importModuleSpec(base, spec, `graphs.${graphId}`, `graph "${graphId}"`);
    let exported = mod[exportName];
    if (exported === undefined) {
      throw new RefineryError("invalid_config", `${abs} has no export "${exportName}"`, {
        field: `graphs.${graphId}`,
        fix:
          exportName === "default"
            ? "export the graph as `export default ...`, or name its export after a colon"
            : `export the graph as \`export const ${exportName} = ...\``,
      });
    }
    if (isThenable(exported)) {
      try {
        exported = await exported;
      } catch (err) {
        throw configError(
          `the export "${exportName}" of ${abs} is a Promise that rejected: ${(err as Error)?.message?.split("\n")[0] ?? String(err)}`,
          `graphs.${graphId}`,
          "make the Promise resolve to a graph",
        );
      }
    }
    const entry = makeEntry(graphId, spec, exported, options);
    entry.file = { path: abs, exportName };
    const { context, ...config } = defaults[graphId] ?? {};
    if (defaults[graphId]) {
      entry.defaults = {
        config,
        ...(context !== undefined ? { context: context as Record<string, unknown> } : {}),
      };
    }
    out.push(entry);
  }
  return out;
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return (
    (typeof x === "object" || typeof x === "function") &&
    x !== null &&
    typeof (x as { then?: unknown }).then === "function"
  );
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

/**
 * A LangChain 1.x `createAgent` agent wraps its compiled graph: it carries the outer builder and
 * the compiled Pregel under `.graph`. The LangGraph server unwraps it to that graph; so do we.
 */
function unwrapAgent(x: unknown): unknown {
  if (typeof x !== "object" || x === null) return x;
  const inner = (x as { graph?: unknown }).graph;
  const builder = (inner as { builder?: unknown } | null | undefined)?.builder;
  return isCompiled(inner) && typeof builder === "object" && builder !== null ? inner : x;
}

function makeEntry(
  graphId: string,
  source: string,
  exported: unknown,
  options: RegistryOptions,
): GraphEntry {
  const attach = (value: unknown): RunnableGraph => {
    const g = unwrapAgent(value);
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
      fix: "export a compiled graph, a StateGraph, a Promise of one, a function (config) => graph, or a createAgent agent",
    });
  };
  if (typeof exported === "function" && !isStateGraph(exported)) {
    const factory = exported as (config: Record<string, unknown>) => unknown;
    return {
      graphId,
      source,
      get: async (config) => attach(await factory(config ?? { configurable: {} })),
    };
  }
  const graph = attach(exported);
  return { graphId, source, get: async () => graph };
}
