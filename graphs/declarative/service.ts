// Declarative graphs as ordinary graphs of the server: registered over HTTP (persisted and
// versioned in the spec store) or loaded from a folder at start-up (read-only, the file is the
// source of truth), compiled onto the server's checkpointer and added to the graph registry.
// A run uses the latest version unless its configurable names `graph_version`.
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import type { RefineOptions } from "../../core/config.ts";
import { isRefineryError, RefineryError } from "../../core/errors.ts";
import type { ModelProvider } from "../../core/models/provider.ts";
import type { FeedbackSource } from "../../nodes/support.ts";
import type { LessonSource } from "../../nodes/generate.ts";
import type { GraphEntry, GraphRegistry, RunnableGraph } from "../registry.ts";
import { compileValidated, validateGraphSpec, type ValidatedSpec } from "./compile.ts";
import { readSpecFolder } from "./documents.ts";
import { defaultNodeKinds, type NodeKindRegistry } from "./kinds.ts";
import type { GraphSpec } from "./spec.ts";
import type { GraphSpecRecord, GraphSpecStore } from "../../core/storage/graph-specs.ts";

export interface GraphSpecServiceDeps {
  registry: GraphRegistry;
  store: GraphSpecStore;
  checkpointer: BaseCheckpointSaver;
  provider: ModelProvider;
  kinds?: NodeKindRegistry;
  defaults?: RefineOptions;
  inbox?: FeedbackSource;
  lessons?: LessonSource;
  log?: (
    level: "info" | "warn" | "error",
    message: string,
    fields?: Record<string, unknown>,
  ) => void;
}

export interface GraphSpecInfo {
  graph_id: string;
  version: number;
  /** Every stored version (a file-defined graph has only 1). */
  versions: number[];
  description: string | null;
  /** "api" (registered over HTTP, persisted) or "file" (loaded from the graphs folder). */
  source: "api" | "file";
  file?: string;
  created_at: string;
  /** Node name -> kind. */
  nodes: Record<string, string>;
}

export interface GraphSpecDetail extends GraphSpecInfo {
  spec: GraphSpec;
}

export interface GraphSpecService {
  /** Registers the latest stored version of every persisted graph (a broken one is logged and skipped). */
  restore(): Promise<string[]>;
  /** Registers every spec file of a folder; any invalid file stops start-up with its path. */
  loadFolder(dir: string): Promise<string[]>;
  /**
   * Registers a spec (a new version when the id exists and the spec changed). Throws
   * `invalid_config` naming the problem's path, or `conflict` for an id that is not declarative.
   */
  register(document: unknown, graphId?: string): Promise<GraphSpecDetail & { created: boolean }>;
  get(graphId: string, version?: number): Promise<GraphSpecDetail | undefined>;
  list(): Promise<GraphSpecInfo[]>;
  /** Deletes every version and unregisters the graph; false when the id is unknown. */
  delete(graphId: string): Promise<boolean>;
  has(graphId: string): boolean;
  /**
   * Re-reads one graph from the store after another thread registered a version of it or
   * deleted it (run threads follow the server thread this way). Graphs from files are kept.
   */
  reload(graphId: string): Promise<void>;
  /** Checks a run's `graph_version`, if any, names a stored version. */
  checkConfig(graphId: string, config: Record<string, unknown> | undefined): void;
}

interface Owned {
  source: "api" | "file";
  file?: string;
  latest: GraphSpecRecord;
  versions: number[];
  compiled: Map<number, RunnableGraph>;
}

function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stable(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function versionOf(config: Record<string, unknown> | undefined): number | undefined {
  const configurable = config?.configurable as Record<string, unknown> | undefined;
  const raw = configurable?.graph_version;
  if (raw === undefined || raw === null) return undefined;
  const n = typeof raw === "string" ? Number(raw) : raw;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) {
    throw new RefineryError("invalid_input", "graph_version must be a positive integer", {
      field: "config.configurable.graph_version",
    });
  }
  return n;
}

export function createGraphSpecService(deps: GraphSpecServiceDeps): GraphSpecService {
  const kinds = deps.kinds ?? defaultNodeKinds;
  const owned = new Map<string, Owned>();

  const validate = (document: unknown) => validateGraphSpec(document, kinds, deps.defaults);
  const compile = (validated: ValidatedSpec) =>
    compileValidated(validated, {
      provider: deps.provider,
      kinds,
      defaults: deps.defaults,
      inbox: deps.inbox,
      lessons: deps.lessons,
      checkpointer: deps.checkpointer,
    }) as unknown as RunnableGraph;

  const detail = (o: Owned, record: GraphSpecRecord): GraphSpecDetail => {
    const spec = record.spec as GraphSpec;
    return {
      graph_id: record.graph_id,
      version: record.version,
      versions: o.versions,
      description: spec.description ?? null,
      source: o.source,
      ...(o.file ? { file: o.file } : {}),
      created_at: record.created_at,
      nodes: Object.fromEntries(Object.entries(spec.nodes).map(([name, n]) => [name, n.kind])),
      spec,
    };
  };

  async function graphAt(graphId: string, version: number): Promise<RunnableGraph> {
    const o = owned.get(graphId);
    if (!o) throw new RefineryError("not_found", `graph "${graphId}" is not registered`);
    const hit = o.compiled.get(version);
    if (hit) return hit;
    const record = o.source === "api" ? await deps.store.get(graphId, version) : undefined;
    if (!record) {
      throw new RefineryError("not_found", `graph "${graphId}" has no version ${version}`, {
        field: "config.configurable.graph_version",
        fix: `use one of: ${o.versions.join(", ")}`,
      });
    }
    const graph = compile(validate(record.spec));
    o.compiled.set(version, graph);
    return graph;
  }

  function install(o: Owned, graph: RunnableGraph): void {
    const graphId = o.latest.graph_id;
    o.compiled.set(o.latest.version, graph);
    owned.set(graphId, o);
    const entry: GraphEntry = {
      graphId,
      source: o.source === "file" ? `spec:${o.file}` : "spec:api",
      description: (o.latest.spec as GraphSpec).description,
      get: async (config) => {
        const version = versionOf(config);
        const current = owned.get(graphId) ?? o;
        return graphAt(graphId, version ?? current.latest.version);
      },
    };
    deps.registry.register(entry, { replace: true });
  }

  function refuseForeign(graphId: string, field: string): void {
    const o = owned.get(graphId);
    if (!o && deps.registry.entry(graphId)) {
      throw new RefineryError(
        "conflict",
        `graph "${graphId}" is not a declarative graph (built in or from langgraph.json)`,
        { field, fix: "choose another id" },
      );
    }
    if (o?.source === "file") {
      throw new RefineryError("conflict", `graph "${graphId}" is defined by the file ${o.file}`, {
        field,
        fix: "edit the file and restart the server, or choose another id",
      });
    }
  }

  return {
    async restore() {
      const loaded: string[] = [];
      for (const record of await deps.store.latest()) {
        try {
          if (deps.registry.entry(record.graph_id)) refuseForeign(record.graph_id, "id");
          const graph = compile(validate(record.spec));
          const versions = await deps.store.versions(record.graph_id);
          install({ source: "api", latest: record, versions, compiled: new Map() }, graph);
          loaded.push(record.graph_id);
        } catch (err) {
          deps.log?.("error", `stored graph "${record.graph_id}" was not registered`, {
            graph_id: record.graph_id,
            version: record.version,
            error: isRefineryError(err) ? err.toLine() : (err as Error).message,
          });
        }
      }
      return loaded;
    },

    async loadFolder(dir) {
      const files = new Map<string, string>();
      const loaded: string[] = [];
      for (const { file, document } of readSpecFolder(dir)) {
        let validated: ValidatedSpec;
        try {
          validated = validate(document);
        } catch (err) {
          if (!isRefineryError(err)) throw err;
          throw new RefineryError(err.code, `${file}: ${err.message}`, {
            field: err.field,
            fix: err.fix,
          });
        }
        const graphId = validated.spec.id;
        const other = files.get(graphId);
        if (other) {
          throw new RefineryError(
            "invalid_config",
            `${file}: graph id "${graphId}" is also defined by ${other}`,
            {
              field: "id",
              fix: "give every spec file its own id",
            },
          );
        }
        files.set(graphId, file);
        const previous = owned.get(graphId);
        if (!previous && deps.registry.entry(graphId)) {
          throw new RefineryError(
            "invalid_config",
            `${file}: graph id "${graphId}" is already taken (built in or from langgraph.json)`,
            { field: "id", fix: "rename the graph" },
          );
        }
        if (previous?.source === "api") {
          deps.log?.(
            "warn",
            `graph "${graphId}" from ${file} replaces the one registered over HTTP`,
            {
              graph_id: graphId,
            },
          );
        }
        const record: GraphSpecRecord = {
          graph_id: graphId,
          version: 1,
          spec: validated.spec,
          created_at: new Date().toISOString(),
        };
        install(
          { source: "file", file, latest: record, versions: [1], compiled: new Map() },
          compile(validated),
        );
        loaded.push(graphId);
      }
      return loaded;
    },

    async register(document, graphId) {
      if (
        graphId !== undefined &&
        document &&
        typeof document === "object" &&
        !Array.isArray(document)
      ) {
        const id = (document as { id?: unknown }).id;
        if (id === undefined) document = { ...document, id: graphId };
        else if (id !== graphId) {
          throw new RefineryError(
            "invalid_input",
            `the spec's id "${String(id)}" differs from the URL's "${graphId}"`,
            {
              field: "id",
              fix: "drop id from the body or make it match the URL",
            },
          );
        }
      }
      const validated = validate(document);
      const id = validated.spec.id;
      refuseForeign(id, "id");
      const current = owned.get(id);
      if (current && stable(current.latest.spec) === stable(validated.spec))
        return { ...detail(current, current.latest), created: false };
      const graph = compile(validated);
      const record = await deps.store.put(id, validated.spec);
      const o: Owned = {
        source: "api",
        latest: record,
        versions: [...(current?.versions ?? []), record.version],
        compiled: current?.compiled ?? new Map(),
      };
      install(o, graph);
      deps.log?.("info", "graph registered", { graph_id: id, version: record.version });
      return { ...detail(o, record), created: true };
    },

    async get(graphId, version) {
      const o = owned.get(graphId);
      if (!o) return undefined;
      if (version === undefined || version === o.latest.version) return detail(o, o.latest);
      if (o.source === "file") return undefined;
      const record = await deps.store.get(graphId, version);
      return record ? detail(o, record) : undefined;
    },

    async list() {
      return [...owned.values()]
        .sort((a, b) => (a.latest.graph_id < b.latest.graph_id ? -1 : 1))
        .map((o) => {
          const { spec: _spec, ...info } = detail(o, o.latest);
          return info;
        });
    },

    async delete(graphId) {
      const o = owned.get(graphId);
      if (!o) return false;
      refuseForeign(graphId, "graph_id");
      await deps.store.delete(graphId);
      owned.delete(graphId);
      deps.registry.unregister(graphId);
      deps.log?.("info", "graph deleted", { graph_id: graphId });
      return true;
    },

    has: (graphId) => owned.has(graphId),

    async reload(graphId) {
      const o = owned.get(graphId);
      if (o?.source === "file") return;
      const versions = await deps.store.versions(graphId);
      const newest = versions.length ? Math.max(...versions) : undefined;
      const record = newest === undefined ? undefined : await deps.store.get(graphId, newest);
      if (!record) {
        if (o) {
          owned.delete(graphId);
          deps.registry.unregister(graphId);
        }
        return;
      }
      if (o && o.latest.version === record.version) return;
      const graph = compile(validate(record.spec));
      install(
        { source: "api", latest: record, versions, compiled: o?.compiled ?? new Map() },
        graph,
      );
    },

    checkConfig(graphId, config) {
      const o = owned.get(graphId);
      const version = versionOf(config);
      if (!o || version === undefined) return;
      if (!o.versions.includes(version)) {
        throw new RefineryError("not_found", `graph "${graphId}" has no version ${version}`, {
          field: "config.configurable.graph_version",
          fix: `use one of: ${o.versions.join(", ")}`,
        });
      }
    },
  };
}
