// JSON shapes of the LangGraph server protocol: messages as plain dicts, state snapshots as
// ThreadState, errors as {error, message}.
import { isRefineryError } from "../core/errors.ts";
import type { StateSnapshotLike } from "../graphs/registry.ts";

/**
 * A value already serialized by toJson (a run thread serializes its stream chunks): written as
 * is, and parsed back only if something serializes it inside another value.
 */
export class JsonText {
  constructor(readonly json: string) {}
  toJSON(): unknown {
    return JSON.parse(this.json);
  }
}

/** JSON.stringify that turns LangChain messages into `{...data, type}` dicts, as the protocol does. */
export function toJson(value: unknown): string {
  if (value instanceof JsonText) return value.json;
  return JSON.stringify(value, function (this: Record<string, unknown>, key, v) {
    const raw = this[key] as {
      toDict?: () => { type: string; data: Record<string, unknown> };
    } | null;
    if (raw && typeof raw === "object" && typeof raw.toDict === "function") {
      const { type, data } = raw.toDict();
      return { ...data, type };
    }
    return v as unknown;
  });
}

/** A JSON-safe copy (messages as dicts), for values kept in storage. */
export function toPlain<T = unknown>(value: unknown): T {
  return value === undefined ? (undefined as T) : (JSON.parse(toJson(value)) as T);
}

export interface CheckpointRef {
  thread_id: string;
  checkpoint_ns: string;
  checkpoint_id: string;
  checkpoint_map: Record<string, unknown> | null;
}

export function checkpointRef(
  config: { configurable?: Record<string, unknown> } | undefined,
): CheckpointRef | null {
  const c = config?.configurable;
  if (!c || typeof c.thread_id !== "string" || typeof c.checkpoint_id !== "string") return null;
  return {
    thread_id: c.thread_id,
    checkpoint_ns: typeof c.checkpoint_ns === "string" ? c.checkpoint_ns : "",
    checkpoint_id: c.checkpoint_id,
    checkpoint_map: (c.checkpoint_map as Record<string, unknown> | undefined) ?? null,
  };
}

type ConfigLike = { configurable?: Record<string, unknown>; [key: string]: unknown };

/** A graph config as clients may see it: no callbacks, no internal (`__`) configurable keys. */
function publicConfig(config: ConfigLike | null | undefined): ConfigLike | null {
  if (!config || typeof config !== "object") return null;
  const { callbacks: _callbacks, ...rest } = config;
  if (!rest.configurable) return rest;
  const configurable = Object.fromEntries(
    Object.entries(rest.configurable).filter(([k]) => !k.startsWith("__")),
  );
  return { ...rest, configurable };
}

/**
 * A `debug` or `checkpoints` stream chunk in its protocol shape: checkpoint payloads carry
 * `checkpoint` / `parent_checkpoint` refs and `parent_config`, and never the server's
 * callbacks (the messages-mode handler would otherwise be serialized onto the wire).
 */
export function toStreamChunk(mode: string, data: unknown): unknown {
  const chunk = data as { type?: string; payload?: Record<string, unknown> } | null;
  if (mode === "debug" && chunk?.type === "checkpoint" && chunk.payload) {
    const { parentConfig, ...payload } = chunk.payload as {
      config?: ConfigLike;
      parentConfig?: ConfigLike;
    };
    return {
      ...chunk,
      payload: {
        ...payload,
        config: publicConfig(payload.config),
        parent_config: publicConfig(parentConfig),
        checkpoint: checkpointRef(payload.config),
        parent_checkpoint: checkpointRef(parentConfig),
      },
    };
  }
  if (mode === "checkpoints" && data && typeof data === "object") {
    const c = data as { config?: ConfigLike; parentConfig?: ConfigLike };
    return {
      ...c,
      config: publicConfig(c.config),
      ...("parentConfig" in c ? { parentConfig: publicConfig(c.parentConfig) } : {}),
    };
  }
  return data;
}

/**
 * An error as API answers and streams show it, as the LangGraph server names it: Refinery's own
 * errors by their code (model_error, storage_error, ...), any other by its name, also when it
 * carries a code (a node's socket error is "Error", not "ECONNRESET"). The logs keep the code
 * (serializeError).
 */
export function publicError(error: unknown): { error: string; message: string } {
  const out = serializeError(error);
  return error instanceof Error && !isRefineryError(error) ? { ...out, error: error.name } : out;
}

/** An error for the logs and between threads: named by its code when it has one, else its name. */
export function serializeError(error: unknown): { error: string; message: string } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { error: typeof code === "string" ? code : error.name, message: error.message };
  }
  // A task error read back from a checkpoint is a plain {name, message} object, not an Error.
  const e = error as { name?: unknown; message?: unknown } | null;
  if (e && typeof e === "object" && typeof e.message === "string") {
    return { error: typeof e.name === "string" ? e.name : "Error", message: e.message };
  }
  return {
    error: "Error",
    message: typeof error === "string" ? error : (JSON.stringify(error) ?? String(error)),
  };
}

export function toThreadState(state: StateSnapshotLike, nested = false): Record<string, unknown> {
  return {
    values: state.values ?? {},
    next: state.next,
    tasks: state.tasks.map((t) => ({
      id: t.id,
      name: t.name,
      path: t.path ?? [],
      error: t.error != null ? serializeError(t.error).message : null,
      interrupts: (t.interrupts ?? []).map((i) => ({ id: i.id, value: i.value })),
      // A subgraph task read without `subgraphs`: where its state is ({thread_id,
      // checkpoint_ns}, the namespace with the task id), as the LangGraph server answers; a
      // client passes it back as `checkpoint` to read or update that subgraph's state.
      checkpoint:
        t.state && typeof t.state === "object" && "configurable" in (t.state as object)
          ? (publicConfig(t.state as ConfigLike)?.configurable ?? null)
          : null,
      state:
        t.state && typeof t.state === "object" && "values" in (t.state as object)
          ? toThreadState(t.state as StateSnapshotLike, true)
          : null,
      result: t.result ?? null,
    })),
    // A subgraph that has not started has no checkpoint, hence no metadata (left out, as the
    // LangGraph server leaves it).
    metadata: nested ? state.metadata : (state.metadata ?? {}),
    created_at: state.createdAt ?? null,
    checkpoint: checkpointRef(state.config),
    parent_checkpoint: checkpointRef(state.parentConfig),
  };
}

export function interruptsOf(state: StateSnapshotLike): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const t of state.tasks) {
    if (t.interrupts?.length) out[t.id] = t.interrupts.map((i) => ({ id: i.id, value: i.value }));
  }
  return out;
}
