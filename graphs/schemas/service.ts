// The schemas of a graph for GET /assistants/:id/schemas, as the LangGraph server 1.5.1 finds
// them: read off the compiled graph when its state is a StateSchema or zod (runtime.ts, cheap,
// every request), else derived from its TypeScript source (static.ts) in a worker thread, once
// per graph and cached for the life of the process. Bounded: one worker at a time (requests
// arriving meanwhile are batched into the next one, sharing its type-check), a deadline after
// which the worker is terminated, a heap limit, and a size limit on source files. A graph whose
// extraction failed or timed out gets no static schemas (null), and is not retried.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { ROOT } from "../../core/paths.ts";
import type { GraphEntry } from "../registry.ts";
import { runtimeSchemas, type GraphSchemas, type SchemaHelpers } from "./runtime.ts";
import type { StaticSchemas, StaticSpec } from "./static.ts";

export type { GraphSchemas } from "./runtime.ts";

export interface SchemaServiceOptions {
  /** How long one extraction may take before its worker is terminated (default 30 s). */
  timeoutMs?: number;
  /** The worker's old-generation heap limit (default 1536 MB). */
  maxHeapMb?: number;
  /** Told when an extraction fails (the graph then has null schemas). */
  warn?: (message: string, fields: Record<string, unknown>) => void;
}

export interface SchemaService {
  /** The graph's schemas; undefined when there are none to give. */
  schemasOf(entry: GraphEntry, graph: unknown): Promise<GraphSchemas | undefined>;
  /** Stops a running extraction (its requests get no static schemas); for server shutdown. */
  close(): Promise<void>;
}

// The worker is a plain .mjs file of the sources that loads static.ts (and the TypeScript
// compiler) through tsx, from the sources and from the build alike.
const WORKER = pathToFileURL(join(ROOT, "graphs", "schemas", "thread.mjs"));

type Outcome = StaticSchemas | { error: string };

/** The schema helpers of each LangGraph copy a graph module resolved, by package folder. */
const helpersByPackage = new Map<string, Promise<SchemaHelpers | undefined>>();

/**
 * `@langchain/langgraph/zod/schema` as the graph module at `file` imports it (its ES module
 * build, found through the package's exports), so the registry read is the one the graph wrote
 * to; undefined when it cannot be found (Refinery's own copy is used then).
 */
export function schemaHelpersFor(file: string): Promise<SchemaHelpers | undefined> {
  let dir: string;
  try {
    dir = dirname(createRequire(file).resolve("@langchain/langgraph/package.json"));
  } catch {
    return Promise.resolve(undefined);
  }
  let helpers = helpersByPackage.get(dir);
  if (!helpers) {
    helpers = (async () => {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
          exports?: Record<string, { import?: string | { default?: string } }>;
        };
        const target = pkg.exports?.["./zod/schema"]?.import;
        const rel = typeof target === "string" ? target : target?.default;
        if (!rel) return undefined;
        return (await import(pathToFileURL(join(dir, rel)).href)) as SchemaHelpers;
      } catch {
        return undefined;
      }
    })();
    helpersByPackage.set(dir, helpers);
  }
  return helpers;
}

export function createSchemaService(options: SchemaServiceOptions = {}): SchemaService {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const cache = new Map<string, Promise<StaticSchemas | undefined>>();
  let waiting: { spec: StaticSpec; resolve: (o: Outcome) => void }[] = [];
  let busy = false;
  let current: Worker | undefined;

  const runBatch = (batch: typeof waiting): Promise<void> =>
    new Promise((done) => {
      const finish = (outcomes: (spec: StaticSpec) => Outcome) => {
        clearTimeout(timer);
        for (const { spec, resolve } of batch) resolve(outcomes(spec));
        done();
      };
      let settled = false;
      const once = (outcomes: (spec: StaticSpec) => Outcome) => {
        if (settled) return;
        settled = true;
        finish(outcomes);
        if (current === worker) current = undefined;
        void worker.terminate();
      };
      const worker = new Worker(WORKER, {
        workerData: { specs: batch.map((b) => b.spec) },
        resourceLimits: { maxOldGenerationSizeMb: options.maxHeapMb ?? 1536 },
        stdout: true,
        stderr: true,
      });
      current = worker;
      worker.unref();
      worker.stdout.resume();
      worker.stderr.resume();
      const timer = setTimeout(
        () =>
          once(() => ({
            error: `schema extraction took longer than ${timeoutMs} ms and was stopped`,
          })),
        timeoutMs,
      );
      worker.on("message", (msg: { schemas?: Record<string, Outcome>; error?: string }) =>
        once(
          (spec) =>
            msg.schemas?.[spec.graphId] ?? { error: msg.error ?? "no schemas were extracted" },
        ),
      );
      worker.on("error", (err) => once(() => ({ error: err.message.split("\n")[0] ?? "" })));
      worker.on("exit", (code) =>
        once(() => ({ error: `the schema worker exited with code ${code}` })),
      );
    });

  const pump = async () => {
    if (busy) return;
    busy = true;
    try {
      while (waiting.length) {
        const batch = waiting;
        waiting = [];
        await runBatch(batch);
      }
    } finally {
      busy = false;
    }
  };

  const staticSchemas = (spec: StaticSpec): Promise<StaticSchemas | undefined> => {
    const key = `${spec.graphId}\0${spec.sourceFile}\0${spec.exportSymbol}`;
    let found = cache.get(key);
    if (!found) {
      found = new Promise<Outcome>((resolve) => {
        waiting.push({ spec, resolve });
        void pump();
      }).then((outcome) => {
        if ("error" in outcome) {
          options.warn?.(`no schemas for graph "${spec.graphId}": ${String(outcome.error)}`, {
            graph_id: spec.graphId,
          });
          return undefined;
        }
        return outcome as StaticSchemas;
      });
      cache.set(key, found);
    }
    return found;
  };

  return {
    async close() {
      await current?.terminate();
    },
    async schemasOf(entry, graph) {
      const helpers = entry.file ? await schemaHelpersFor(entry.file.path) : undefined;
      const live = runtimeSchemas(graph, helpers);
      if (live) return live;
      if (!entry.file) return undefined;
      return staticSchemas({
        graphId: entry.graphId,
        sourceFile: entry.file.path,
        exportSymbol: entry.file.exportName,
      });
    },
  };
}
