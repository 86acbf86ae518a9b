// A lighter carrier for LangChain's per-call config in async context.
//
// Every runnable call in a LangGraph run (each node, each channel write, each edge) goes through
// @langchain/core's AsyncLocalStorageProvider.runWithConfig, which stores the call's config in
// async context for getConfig(), interrupt() and nested model calls. When the call carries no
// callbacks it wraps that config in a brand-new LangSmith RunTree that is never traced (built
// with `tracingEnabled: false`): some 40 property definitions, a dozen environment reads and a
// UUIDv7 from crypto.getRandomValues per call. On the server bench's graph that was about a fifth
// of a run's CPU (bench/RESULTS.md, "Run context", 2026-12-06).
//
// installLightRunContext() keeps the library's behaviour and changes only that case: the config
// rides on an object that inherits from one untraced RunTree made once, so anything that looks
// at the store still sees a RunTree (isRunTree, createChild for a traceable function called in a
// node, setContextVariable's copy) whose `extra` holds this call's config. Calls with callbacks
// (a tracer, handlers passed by the caller) and calls that ask for no root run tree take the
// library's own path unchanged, so LangSmith tracing works as before.
import { AsyncLocalStorageProviderSingleton } from "@langchain/core/singletons";
import { RunTree } from "langsmith";

const LC_CHILD_KEY = Symbol.for("lc:child_config");
const CONTEXT_VARIABLES_KEY = Symbol.for("lc:context_variables");

type Provider = typeof AsyncLocalStorageProviderSingleton;
type RunWithConfig = Provider["runWithConfig"];
type Store = Record<PropertyKey, unknown> & { extra?: Record<PropertyKey, unknown> };

const provider = AsyncLocalStorageProviderSingleton;
/** The library's own method (on the provider's prototype), captured before any install. */
const original = provider.runWithConfig as RunWithConfig | undefined;
/** Made on first install, once per process (or worker thread); install and uninstall swap it. */
let light: RunWithConfig | undefined;

/** True when the call's config has callbacks, which only the library's path handles. */
function hasCallbacks(config: Parameters<RunWithConfig>[0]): boolean {
  const callbacks = (config as { callbacks?: unknown } | undefined)?.callbacks;
  if (callbacks === undefined || callbacks === null) return false;
  return !Array.isArray(callbacks) || callbacks.length > 0;
}

/**
 * Installs the lighter path on the process's (or worker thread's) LangChain context provider.
 * Idempotent. Returns whether it is active (false if @langchain/core no longer has the method).
 */
export function installLightRunContext(): boolean {
  if (typeof original !== "function") return false;
  light ??= createLight(original.bind(provider) as RunWithConfig);
  provider.runWithConfig = light;
  return true;
}

/** Puts the library's own runWithConfig back (tests and the bench compare both paths). */
export function uninstallLightRunContext(): void {
  if (original) provider.runWithConfig = original;
}

function createLight(library: RunWithConfig): RunWithConfig {
  // The one RunTree every light store inherits from: what the library builds per call.
  const template = new RunTree({ name: "<runnable_lambda>", tracingEnabled: false });
  return ((config, callback, avoidCreatingRootRunTree) => {
    if (avoidCreatingRootRunTree || hasCallbacks(config)) {
      return library(config, callback, avoidCreatingRootRunTree);
    }
    const storage = provider.getInstance();
    const previous = storage.getStore() as Store | undefined;
    const store = Object.create(template) as Store;
    store.extra = { ...template.extra, [LC_CHILD_KEY]: config };
    if (previous !== undefined && previous[CONTEXT_VARIABLES_KEY] !== undefined) {
      store[CONTEXT_VARIABLES_KEY] = previous[CONTEXT_VARIABLES_KEY];
    }
    return storage.run(store, callback);
  }) as RunWithConfig;
}
