// What executes graphs in one thread: the persistence backend (SQLite file or Postgres: storage,
// checkpoints, feedback inbox, checkpoint admin, run records, graph specs), the engine (model
// provider, settings and the `refine` graph), lessons memory, and the graph registry with
// langgraph.json and declarative graphs. The server's main thread opens one (start.ts); every run
// thread opens its own on the same database (run-thread.ts).
import { readEnv } from "../core/env.ts";
import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { processSettingsFromEnv, type ProcessSettings } from "../core/config.ts";
import { RefineryError } from "../core/errors.ts";
import { outboundPolicyFromEnv, setOutboundPolicy } from "../core/net/policy.ts";
import type { ModelProvider } from "../core/models/provider.ts";
import { openBackend, type PersistenceBackend } from "../core/storage/backend.ts";
import { startGraphSpecs, type GraphSpecService } from "../graphs/declarative/index.ts";
import { openEngine, type Engine } from "../graphs/engine.ts";
import { openStore } from "../core/memory/open-store.ts";
import { createUserStore, type UserStore } from "../core/memory/user-store.ts";
import { openLearning, type LessonSource } from "../graphs/learning.ts";
import { createGraphRegistry, systemAssistantId, type GraphRegistry } from "../graphs/registry.ts";
import type { RunnableGraph } from "../graphs/registry.ts";
import type { Logger } from "./log.ts";
import { importUserModule } from "../core/import-module.ts";

export interface RuntimeOptions {
  env: Record<string, string | undefined>;
  /** langgraph.json; default: REFINERY_CONFIG, else ./langgraph.json when it exists. */
  configPath?: string;
  /** A live provider (tests inject scripted models); otherwise REFINERY_PROVIDER_MODULE or env. */
  provider?: ModelProvider;
  log: Logger;
  /**
   * A run thread's runtime: the server thread opened the same database first (checked the
   * SQLite file's integrity, or migrated the Postgres schema).
   */
  thread?: boolean;
}

export type Runtime = Awaited<ReturnType<typeof openRuntime>>;

/**
 * What every thread that runs graphs sets up first (the server thread, run threads, eval
 * threads): the process settings, this thread's outbound policy and the model provider.
 */
export async function prepareGraphThread(
  env: Record<string, string | undefined>,
  provider?: ModelProvider,
): Promise<{ settings: ProcessSettings; provider?: ModelProvider }> {
  const settings: ProcessSettings = processSettingsFromEnv(env);
  // Webhooks and webhook verifiers of this thread: strict, REFINERY_OUTBOUND_ALLOW opens hosts.
  setOutboundPolicy(outboundPolicyFromEnv(env));
  return {
    settings,
    provider: provider ?? (await loadProviderModule(readEnv(env).REFINERY_PROVIDER_MODULE, env)),
  };
}

export async function openRuntime(options: RuntimeOptions) {
  const { env, log } = options;
  const { settings, provider } = await prepareGraphThread(env, options.provider);
  const envSettings = readEnv(env);
  const backend: PersistenceBackend = await openBackend(settings, {
    thread: options.thread,
    runMetadata: true,
    compactAfterRuns: true,
  });
  const { saver, storage, inbox, checkpoints } = backend;
  // Lessons memory (the backend's store, or Postgres with REFINERY_STORE_URL) and run records.
  const learning = await openLearning(settings, backend).catch(async (err: unknown) => {
    await backend.close();
    throw err;
  });
  const lessons: LessonSource = {
    retrieve: async (assistantId, task, limit) =>
      learning.memory
        ? learning.memory.retrieve(assistantId ?? systemAssistantId("refine"), task, limit)
        : [],
  };
  const engine: Engine = openEngine({
    settings,
    provider,
    checkpointer: { saver, close: () => {} },
    lessons,
    inbox,
  });
  // The Store API's store (/store/*, config.store in graphs): the same backend as the lessons.
  const opened = await openStore(
    settings.storeUrl ? { postgresUrl: settings.storeUrl } : backend.store,
  ).catch(async (err: unknown) => {
    await learning.close();
    await backend.close();
    throw err;
  });
  const userStore: UserStore = createUserStore(opened.store, opened.kind);

  const configPath =
    options.configPath ??
    envSettings.REFINERY_CONFIG ??
    (existsSync("langgraph.json") ? "langgraph.json" : undefined);
  const registry: GraphRegistry = await createGraphRegistry({
    builtins: {
      refine: {
        graph: engine.graph as unknown as RunnableGraph,
        description: "generate -> critique -> verify -> revise with a stop policy",
      },
    },
    configPath,
    checkpointer: saver,
    env,
    log: (level, msg, fields) => log(level, msg, fields),
  });
  // Declarative graphs: stored ones, then REFINERY_GRAPHS_DIR (default ./graphs.d when present).
  const graphsDir =
    envSettings.REFINERY_GRAPHS_DIR ?? (existsSync("graphs.d") ? "graphs.d" : undefined);
  const graphSpecs: GraphSpecService = await startGraphSpecs({
    store: backend.graphSpecs,
    registry,
    checkpointer: saver,
    provider: engine.provider,
    inbox,
    lessons,
    graphsDir,
    nodeKindModules: envSettings.REFINERY_NODE_KINDS,
    log: (level, msg, fields) => log(level, msg, fields),
  });

  return {
    settings,
    engine,
    backend,
    saver,
    storage,
    inbox,
    checkpoints,
    learning,
    userStore,
    registry,
    graphSpecs,
    configPath,
    async close(): Promise<void> {
      await learning.close();
      await opened.close();
      engine.close();
      await backend.close();
    },
  };
}

/**
 * A model provider from a module: `REFINERY_PROVIDER_MODULE=./path/to/file.ts#exportName`. The
 * export is a `ModelProvider` or a function of the environment returning one. Every thread that
 * runs graphs imports it, which is how a custom provider reaches the run threads.
 */
export async function loadProviderModule(
  spec: string | undefined,
  env: Record<string, string | undefined>,
): Promise<ModelProvider | undefined> {
  if (!spec) return undefined;
  const cut = spec.lastIndexOf("#");
  const fix = 'use "./path/to/module.ts#exportName"';
  if (cut <= 0 || cut === spec.length - 1) {
    throw new RefineryError(
      "invalid_config",
      `REFINERY_PROVIDER_MODULE "${spec}" names no export`,
      {
        field: "REFINERY_PROVIDER_MODULE",
        fix,
      },
    );
  }
  const path = spec.slice(0, cut);
  const name = spec.slice(cut + 1);
  const abs = isAbsolute(path) ? path : resolve(path);
  if (!existsSync(abs)) {
    throw new RefineryError("invalid_config", `REFINERY_PROVIDER_MODULE: ${abs} does not exist`, {
      field: "REFINERY_PROVIDER_MODULE",
      fix,
    });
  }
  const mod = (await importUserModule(abs)) as Record<string, unknown>;
  const exported = mod[name];
  const value =
    typeof exported === "function" ? await (exported as (e: unknown) => unknown)(env) : exported;
  const provider = value as Partial<ModelProvider> | undefined;
  if (!provider || typeof provider.forRole !== "function") {
    throw new RefineryError(
      "invalid_config",
      `REFINERY_PROVIDER_MODULE: export "${name}" of ${abs} is not a model provider`,
      {
        field: "REFINERY_PROVIDER_MODULE",
        fix: "export { forRole(role, models), offline } or a function (env) => such an object",
      },
    );
  }
  return provider as ModelProvider;
}
