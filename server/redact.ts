// What leaves the server never shows a secret (core/secrets.ts): the shapes that can carry one
// are assistants (config, context), runs (their config and input), thread values and state (the
// refine graph keeps its input `options`, verifiers included), and stream chunks.
import { redactSecrets } from "../core/secrets.ts";
import type { Assistant, Run, Thread } from "../core/storage/types.ts";

export function publicAssistant(a: Assistant): Assistant {
  const config = redactSecrets(a.config);
  const context = redactSecrets(a.context);
  return config === a.config && context === a.context ? a : { ...a, config, context };
}

export function publicRun(run: Run): Run {
  const kwargs = redactSecrets(run.kwargs);
  // lost_to_storage is the server's own bookkeeping, not part of a run as the protocol has it.
  const { lost_to_storage: _, ...rest } = run;
  return kwargs === run.kwargs && run.lost_to_storage === undefined ? run : { ...rest, kwargs };
}

/** Graph state values: the refine graph's `options` (its input options) may hold secrets. */
export function publicValues<T>(values: T): T {
  if (!values || typeof values !== "object" || Array.isArray(values)) return values;
  const v = values as Record<string, unknown>;
  if (v.options === null || typeof v.options !== "object") return values;
  const options = redactSecrets(v.options);
  return (options === v.options ? values : { ...v, options }) as T;
}

export function publicThread(t: Thread): Thread {
  const values = publicValues(t.values);
  // As the LangGraph server answers: a thread that never ran has no `values` and no
  // `interrupts`, and `error` is there only when its last run failed (issue 22).
  const { values: _values, interrupts, error, ...rest } = t;
  return {
    ...rest,
    // The configurable its runs were given: may carry secrets (models' API keys).
    config: redactSecrets(t.config) as Thread["config"],
    ...(values === null ? {} : { values, interrupts }),
    ...(error === null ? {} : { error }),
  } as Thread;
}

/**
 * A thread state (GET .../state, history): its values, its checkpoint metadata, and each task's
 * result and subgraph state.
 */
export function publicState<T extends Record<string, unknown>>(state: T): T {
  const values = publicValues(state.values);
  const metadata = redactSecrets(state.metadata);
  const tasks = Array.isArray(state.tasks) ? state.tasks.map(publicTask) : state.tasks;
  const changed =
    values !== state.values ||
    metadata !== state.metadata ||
    (Array.isArray(tasks) && tasks.some((t, i) => t !== (state.tasks as unknown[])[i]));
  return changed ? { ...state, values, metadata, tasks } : state;
}

function publicTask(task: unknown): unknown {
  if (!task || typeof task !== "object") return task;
  const t = task as Record<string, unknown>;
  const result = publicValues(t.result);
  const state =
    t.state && typeof t.state === "object"
      ? publicState(t.state as Record<string, unknown>)
      : t.state;
  return result === t.result && state === t.state ? task : { ...t, result, state };
}

/** A stream chunk of any mode, before it is published. */
export function publicChunk(mode: string, data: unknown): unknown {
  if (mode === "values") return publicValues(data);
  if (mode === "updates" && data && typeof data === "object" && !Array.isArray(data)) {
    let out: Record<string, unknown> | undefined;
    for (const [node, update] of Object.entries(data as Record<string, unknown>)) {
      const next = publicValues(update);
      if (next !== update) (out ??= { ...(data as Record<string, unknown>) })[node] = next;
    }
    return out ?? data;
  }
  if (mode === "checkpoints" || mode === "tasks") return publicCheckpoint(data);
  if (mode === "debug" && data && typeof data === "object") {
    const d = data as { payload?: unknown };
    const payload = publicCheckpoint(d.payload);
    return payload === d.payload ? data : { ...d, payload };
  }
  return data;
}

/** Checkpoint-like payloads: their values (or a task's input) and their configs and metadata. */
function publicCheckpoint(data: unknown): unknown {
  if (!data || typeof data !== "object" || Array.isArray(data)) return data;
  const d = data as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  for (const key of ["values", "input", "result"]) {
    if (!(key in d)) continue;
    const next = publicValues(d[key]);
    if (next !== d[key]) (out ??= { ...d })[key] = next;
  }
  for (const key of ["config", "parent_config", "parentConfig", "metadata"]) {
    if (!(key in d)) continue;
    const next = withoutRuntimeKeys(redactSecrets(d[key]));
    if (next !== d[key]) (out ??= { ...d })[key] = next;
  }
  return out ?? data;
}

/**
 * Keys the server adds to a run's `configurable` for its own use (the run's deadline, the store's
 * tenant prefix), never shown to clients.
 */
const RUNTIME_ONLY_KEYS = ["refinery_run_deadline", "refinery_store_partition"];

/** `record` without the runtime-only keys (itself when it has none). */
function withoutRuntimeOnly(record: Record<string, unknown>): Record<string, unknown> {
  if (!RUNTIME_ONLY_KEYS.some((k) => k in record)) return record;
  const rest = { ...record };
  for (const k of RUNTIME_ONLY_KEYS) delete rest[k];
  return rest;
}

function withoutRuntimeKeys(config: unknown): unknown {
  const configurable = (config as { configurable?: Record<string, unknown> } | null)?.configurable;
  if (!configurable) return config;
  const rest = withoutRuntimeOnly(configurable);
  return rest === configurable ? config : { ...(config as object), configurable: rest };
}

/**
 * Callback event metadata (events and messages stream modes): LangChain copies the run's
 * configurable values into it, so the runner's own keys are dropped and secrets redacted.
 */
export function publicMetadata(
  metadata: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  return metadata && withoutRuntimeOnly(redactSecrets(metadata));
}

/**
 * One event of the `events` stream mode: its metadata as publicMetadata shows it, and the state
 * a chain event carries (input, output, chunk) as publicValues does.
 */
export function publicEvent<
  T extends { metadata?: Record<string, unknown>; data?: Record<string, unknown> },
>(event: T): T {
  const metadata = publicMetadata(event.metadata);
  let data = event.data;
  for (const key of ["input", "output", "chunk"]) {
    if (!data || !(key in data)) continue;
    const next = publicValues(data[key]);
    if (next !== data[key]) data = { ...data, [key]: next };
  }
  return metadata === event.metadata && data === event.data ? event : { ...event, metadata, data };
}
