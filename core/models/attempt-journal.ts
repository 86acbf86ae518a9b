// Model attempts that no checkpoint holds. A step's model calls are counted in the usage the
// step writes when it finishes; an attempt of a step that never finished (the process was
// killed, the run was cancelled or timed out, the step failed for another reason) would be
// forgotten, though the endpoint was paid for it. So each attempt of a checkpointed step is
// written down here first, beside the checkpoints (the same SQLite file, or the same Postgres
// schema: core/storage/postgres/attempt-journal.ts): a row when it starts (one call), its tokens
// when it ends. When the same step runs again (same parent checkpoint,
// same task id: LangGraph derives task ids from them), its first model call adds what the earlier
// executions of that step spent, and the step's usage carries it into the state. Rows of steps
// that have since been checkpointed are dropped then, as they are already counted.
import { randomUUID } from "node:crypto";
import type { RunnableConfig } from "@langchain/core/runnables";
import type Database from "better-sqlite3";
import { addUsage, ZERO_USAGE, type TokenUsage } from "../usage.ts";

/** A checkpoint saver that keeps a journal answers this symbol (PreparedSqliteSaver). */
export const ATTEMPT_JOURNAL = Symbol.for("refinery.attemptJournal");

export interface AttemptKey {
  threadId: string;
  /** The checkpoint the step runs from. */
  parentId: string;
  /** LangGraph's task id: the same when the step runs again from the same checkpoint. */
  taskId: string;
  /** This execution of the step (a new one each time it runs). */
  exec: string;
}

/** A value, or a promise of it: the SQLite journal answers at once, the Postgres one later. */
export type MaybePromise<T> = T | Promise<T>;

export interface AttemptJournal {
  /**
   * Writes an attempt down as it starts (committed before the call goes out) and returns its
   * row; with `carry`, also what earlier executions of this step spent (none of it in any
   * checkpoint), dropping the rows of the thread's steps that have been checkpointed since. A
   * step's first call carries; its retries do not.
   */
  start(key: AttemptKey, node: string, carry: boolean): MaybePromise<AttemptStart>;
  /** Records what the attempt cost once it ended (answered or failed). */
  end(row: number | bigint, usage: Partial<TokenUsage>, threadId: string): MaybePromise<void>;
  /**
   * Drops a thread's rows: its run finished, every attempt it made is in a checkpoint. Deferred
   * like the tokens: rows a crash leaves are dropped by the thread's next step instead.
   */
  clear(threadId: string): MaybePromise<void>;
}

export interface AttemptStart {
  row: number | bigint;
  /** What earlier executions of the step spent (only when asked to carry, and any was). */
  carried?: TokenUsage;
}

/** Sums of journal rows as both backends read them. */
export interface CarriedRow {
  n: number | string;
  calls: number | string;
  prompt: number | string;
  completion: number | string;
  total: number | string;
  estimated: number | string;
}

/** The usage in a sum of journal rows, or undefined when there were none. */
export function carriedUsage(r: CarriedRow | undefined): TokenUsage | undefined {
  if (!r || Number(r.n) === 0) return undefined;
  const estimated = Number(r.estimated);
  return addUsage(ZERO_USAGE, {
    calls: Number(r.calls),
    promptTokens: Number(r.prompt),
    completionTokens: Number(r.completion),
    totalTokens: Number(r.total),
    ...(estimated > 0 ? { estimatedTokens: estimated } : {}),
  });
}

/** The journal of a checkpoint saver, if it keeps one. */
export function attemptJournalOf(saver: unknown): AttemptJournal | undefined {
  const s = saver as { [ATTEMPT_JOURNAL]?: () => AttemptJournal | undefined } | undefined;
  return typeof s?.[ATTEMPT_JOURNAL] === "function" ? s[ATTEMPT_JOURNAL]() : undefined;
}

export interface AttemptScope {
  journal: AttemptJournal;
  key: AttemptKey;
  node: string;
  /** The step's first model call in this execution: the one that carries earlier spend. */
  first: boolean;
}

/** One execution id per task execution (its scratchpad object is new each time it runs). */
const executions = new WeakMap<object, string>();

/**
 * Where a model call made in a node stands: its thread, the checkpoint its step runs from and the
 * step's task, when the graph runs with a saver that keeps a journal; undefined otherwise (no
 * checkpointer, a subgraph's step, a call outside a graph).
 */
export function attemptScope(config: RunnableConfig | undefined): AttemptScope | undefined {
  const c = config?.configurable as Record<string, unknown> | undefined;
  if (!c) return undefined;
  const journal = attemptJournalOf(c.__pregel_checkpointer);
  if (!journal) return undefined;
  const ns = c.checkpoint_ns;
  // A subgraph's steps run from the subgraph's checkpoints; only the root graph's are journaled.
  if (typeof ns === "string" && ns.includes("|")) return undefined;
  const threadId = c.thread_id;
  const parentId = (c.checkpoint_map as Record<string, unknown> | undefined)?.[""];
  const taskId = c.__pregel_task_id;
  const pad = c.__pregel_scratchpad;
  if (
    typeof threadId !== "string" ||
    typeof parentId !== "string" ||
    typeof taskId !== "string" ||
    typeof pad !== "object" ||
    pad === null
  ) {
    return undefined;
  }
  let exec = executions.get(pad);
  const first = exec === undefined;
  if (exec === undefined) {
    exec = randomUUID();
    executions.set(pad, exec);
  }
  const node = (config?.metadata as { langgraph_node?: unknown } | undefined)?.langgraph_node;
  return {
    journal,
    key: { threadId, parentId, taskId, exec },
    node: typeof node === "string" ? node : "",
    first,
  };
}

/** Databases whose journal table exists (created once per connection, not per call). */
const tables = new WeakSet<Database.Database>();

export function ensureAttemptJournalTable(db: Database.Database): void {
  if (tables.has(db)) return;
  db.exec(`CREATE TABLE IF NOT EXISTS refinery_model_attempts (
    id INTEGER PRIMARY KEY,
    thread_id TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    exec TEXT NOT NULL,
    node TEXT NOT NULL,
    calls INTEGER NOT NULL DEFAULT 1,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens INTEGER NOT NULL DEFAULT 0,
    estimated_tokens INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX IF NOT EXISTS refinery_model_attempts_thread ON refinery_model_attempts(thread_id);`);
  tables.add(db);
}

/** Drops a thread's journal (the thread is deleted, or a run of it rolled back); all without `threadId`. */
export function clearAttemptJournal(db: Database.Database, threadId?: string): void {
  ensureAttemptJournalTable(db);
  if (threadId === undefined) db.prepare("DELETE FROM refinery_model_attempts").run();
  else db.prepare("DELETE FROM refinery_model_attempts WHERE thread_id = ?").run(threadId);
}

/**
 * The journal in a SQLite file. An attempt's row commits before the call goes out. What can wait
 * (an attempt's tokens, dropping rows already counted) goes to `defer` when given: the saver
 * commits it with the step's checkpoint writes, one commit fewer per call; a crash before that
 * loses only the tokens of attempts whose step was not checkpointed (their calls stay counted).
 */
export function createSqliteAttemptJournal(
  db: Database.Database,
  defer: (threadId: string, write: () => void) => void = (_thread, write) => write(),
): SqliteAttemptJournal {
  ensureAttemptJournalTable(db);
  const insert = db.prepare(
    "INSERT INTO refinery_model_attempts (thread_id, parent_id, task_id, exec, node) VALUES (?, ?, ?, ?, ?)",
  );
  const update = db.prepare(
    `UPDATE refinery_model_attempts SET prompt_tokens = ?, completion_tokens = ?, total_tokens = ?,
       estimated_tokens = ? WHERE id = ?`,
  );
  const dropOthers = db.prepare(
    "DELETE FROM refinery_model_attempts WHERE thread_id = ? AND parent_id <> ?",
  );
  const sum = db.prepare(
    `SELECT COUNT(*) AS n, TOTAL(calls) AS calls, TOTAL(prompt_tokens) AS prompt,
       TOTAL(completion_tokens) AS completion, TOTAL(total_tokens) AS total,
       TOTAL(estimated_tokens) AS estimated
     FROM refinery_model_attempts WHERE thread_id = ? AND parent_id = ? AND task_id = ? AND exec <> ?`,
  );
  const clear = db.prepare("DELETE FROM refinery_model_attempts WHERE thread_id = ?");
  const carried = (key: AttemptKey) => {
    defer(key.threadId, () => dropOthers.run(key.threadId, key.parentId));
    return carriedUsage(
      sum.get(key.threadId, key.parentId, key.taskId, key.exec) as CarriedRow | undefined,
    );
  };
  const begin = (key: AttemptKey, node: string) =>
    insert.run(key.threadId, key.parentId, key.taskId, key.exec, node).lastInsertRowid;
  return {
    begin,
    carried,
    start(key, node, carry) {
      const earlier = carry ? carried(key) : undefined;
      return { row: begin(key, node), ...(earlier ? { carried: earlier } : {}) };
    },
    end(row, usage, threadId) {
      defer(threadId, () =>
        update.run(
          usage.promptTokens ?? 0,
          usage.completionTokens ?? 0,
          usage.totalTokens ?? 0,
          usage.estimatedTokens ?? 0,
          row,
        ),
      );
    },
    clear(threadId) {
      defer(threadId, () => clear.run(threadId));
    },
  };
}

/** The SQLite journal answers at once; its parts are also callable one by one (tests). */
export interface SqliteAttemptJournal extends AttemptJournal {
  start(key: AttemptKey, node: string, carry: boolean): AttemptStart;
  begin(key: AttemptKey, node: string): number | bigint;
  carried(key: AttemptKey): TokenUsage | undefined;
  end(row: number | bigint, usage: Partial<TokenUsage>, threadId: string): void;
  clear(threadId: string): void;
}
