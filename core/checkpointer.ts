// Opens the checkpoint store: a SQLite file by default (WAL, so a crash mid-write leaves the
// last committed checkpoint intact), or an in-memory saver for tests. The SQLite saver bounds
// what a run can store: one checkpoint, and all of a thread's checkpoints (StateLimits).
import {
  ATTEMPT_JOURNAL,
  clearAttemptJournal,
  createSqliteAttemptJournal,
  type AttemptJournal,
} from "./models/attempt-journal.ts";
import { ENV_DEFAULTS, readEnv, type EnvSettings } from "./env.ts";
import { mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { RunnableConfig } from "@langchain/core/runnables";
import { MemorySaver, type BaseCheckpointSaver } from "@langchain/langgraph";
import {
  copyCheckpoint,
  WRITES_IDX_MAP,
  type Checkpoint,
  type CheckpointListOptions,
  type CheckpointMetadata,
  type CheckpointTuple,
  type PendingWrite,
} from "@langchain/langgraph-checkpoint";
import { SqliteSaver } from "@langchain/langgraph-checkpoint-sqlite";
import Database from "better-sqlite3";
import { RefineryError } from "./errors.ts";
import { takeWriterTurns } from "./storage/sqlite/writer-turn.ts";
import {
  apply,
  applyMetadata,
  deltaOf,
  diff,
  diffMetadata,
  isMetadataDelta,
  MAX_DEPTH,
  pack,
  remember,
  sizeOf,
  unpacking,
  type Remembered,
} from "./checkpoint-delta.ts";
import {
  CheckpointArchive,
  createArchiveTable,
  type ArchivedCheckpoint,
} from "./checkpoint-archive.ts";

/** How much state the SQLite saver stores; 0 switches a limit off. */
export interface StateLimits {
  /** Largest serialized checkpoint, or one step's writes (REFINERY_MAX_CHECKPOINT_BYTES). */
  maxCheckpointBytes: number;
  /** Most bytes of checkpoints and writes one thread holds (REFINERY_MAX_THREAD_BYTES). */
  maxThreadBytes: number;
}

export const DEFAULT_STATE_LIMITS: StateLimits = {
  maxCheckpointBytes: ENV_DEFAULTS.REFINERY_MAX_CHECKPOINT_BYTES,
  maxThreadBytes: ENV_DEFAULTS.REFINERY_MAX_THREAD_BYTES,
};

/** The state limits among the parsed settings (whole bytes; 0: no limit). */
export function stateLimitsOf(e: EnvSettings): StateLimits {
  return {
    maxCheckpointBytes: e.REFINERY_MAX_CHECKPOINT_BYTES,
    maxThreadBytes: e.REFINERY_MAX_THREAD_BYTES,
  };
}

/** Reads REFINERY_MAX_CHECKPOINT_BYTES and REFINERY_MAX_THREAD_BYTES (whole bytes; 0: no limit). */
export function stateLimitsFromEnv(env: Record<string, string | undefined>): StateLimits {
  return stateLimitsOf(readEnv(env));
}

/**
 * A checkpoint, or a thread's checkpoints, would pass a StateLimits limit; nothing was written.
 * Its name is what a failed run reports as its error (`{error: "StateTooLarge", message}`).
 */
export class StateTooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StateTooLarge";
  }
}

/**
 * A run's checkpoint was refused because the run is no longer this attempt's to write: another
 * worker took it over after its lease lapsed (its attempt is higher now), or it ended. Nothing
 * was written; the run stops here without recording anything (server/run-runner.ts), as when its
 * heartbeat finds the lease gone, and the worker that holds it now continues it.
 */
export class StaleRunError extends Error {
  constructor(
    readonly runId: string,
    readonly attempt: number,
  ) {
    super(
      `run ${runId} attempt ${attempt} may not write checkpoints any more: another worker took it ` +
        "over after its lease lapsed (or it ended); this attempt stops without writing",
    );
    this.name = "RunLeaseLost";
  }
}

export function isStaleRunError(err: unknown): err is StaleRunError {
  return err instanceof Error && err.name === "RunLeaseLost";
}

/** The run and attempt a server run's checkpoint is written for (run-runner's config.metadata). */
export function runFenceOf(config: RunnableConfig): { runId: string; attempt: number } | undefined {
  const meta = config.metadata as { run_id?: unknown; run_attempt?: unknown } | undefined;
  return typeof meta?.run_id === "string" && typeof meta.run_attempt === "number"
    ? { runId: meta.run_id, attempt: meta.run_attempt }
    : undefined;
}

const mib = (bytes: number) =>
  `${(bytes / (1024 * 1024)).toFixed(bytes < 1024 * 1024 ? 3 : 1)} MiB`;

/** A checkpoint (or one step's writes) of `bytes` is over REFINERY_MAX_CHECKPOINT_BYTES. */
export function checkpointTooLarge(
  threadId: string,
  bytes: number,
  limit: number,
  what: "checkpoint" | "writes",
): StateTooLargeError {
  return new StateTooLargeError(
    `${what === "checkpoint" ? "a checkpoint" : "the writes of one step"} of thread ${threadId} ` +
      `would be ${mib(bytes)} serialized, over the limit of ${mib(limit)} ` +
      `(REFINERY_MAX_CHECKPOINT_BYTES=${limit}); nothing was written. Keep large ` +
      `data out of the graph state (store a reference to it), or raise the limit`,
  );
}

/** A thread would hold `total` bytes, over REFINERY_MAX_THREAD_BYTES. */
export function threadTooLarge(threadId: string, total: number, limit: number): StateTooLargeError {
  return new StateTooLargeError(
    `thread ${threadId} would hold ${mib(total)} of checkpoints, over the ` +
      `limit of ${mib(limit)} (REFINERY_MAX_THREAD_BYTES=${limit}); ` +
      `nothing was written. Continue on a new thread (or delete this one), or raise the limit`,
  );
}

/**
 * The checkpoint's metadata as the server stores it: the run's config.metadata (run_id,
 * graph_id, assistant_id…), as the LangGraph server stores it (LangGraph reads `run_id` there);
 * a subgraph's checkpoints also carry the checkpoint_map LangGraph hands the subgraph (the
 * checkpoint of each enclosing graph), as the LangGraph server copies it from the config.
 */
export function runCheckpointMetadata(
  config: RunnableConfig,
  metadata: CheckpointMetadata,
): CheckpointMetadata {
  const configurable = config.configurable ?? {};
  const map =
    ((configurable.checkpoint_ns as string | undefined) ?? "") !== ""
      ? configurable.checkpoint_map
      : undefined;
  return config.metadata
    ? ({
        ...(map ? { checkpoint_map: map } : {}),
        ...config.metadata,
        ...metadata,
      } as CheckpointMetadata)
    : metadata;
}

/**
 * The largest file (with its WAL) whose integrity is checked as it opens. PRAGMA quick_check
 * reads every page: 5.2 s for a 1.4 GB file with 100,000 threads (bench:large-db, 2026-12-07), so
 * above this size start-up would grow with the database. The server checks larger files on its
 * WAL thread after it listens (server/wal-checkpointer.ts) and logs a failure as an error.
 */
export const QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024;

const fileBytes = (file: string) => statSync(file, { throwIfNoEntry: false })?.size ?? 0;

/** The file and its WAL, in bytes. */
export const databaseBytes = (file: string) => fileBytes(file) + fileBytes(`${file}-wal`);

/**
 * PRAGMA quick_check on `db` (open on `file`) if the file is at most QUICK_CHECK_MAX_BYTES;
 * throws naming the first problem. True if it checked.
 */
export function quickCheckIfSmall(db: Database.Database, file: string): boolean {
  if (file === ":memory:" || databaseBytes(file) > QUICK_CHECK_MAX_BYTES) return false;
  const check = db.pragma("quick_check", { simple: true });
  if (check !== "ok") throw new Error(`integrity check failed: ${String(check)}`);
  return true;
}

/**
 * The library's `writes` table (same columns and key as @langchain/langgraph-checkpoint-sqlite
 * 1.0.4 creates), created WITHOUT ROWID when a file has none yet: a rowid table stores each row's
 * key twice, in the table and again in its primary-key index, and the keys (thread, checkpoint
 * and task ids: 108 of a pending write's ~200 bytes) are most of what a write stores. In the
 * server's file a default refine run's writes took 12.2 KB (7.4 table + 4.8 index), now 8.6 KB
 * (bench:storage, bench/RESULTS.md issue 20). `checkpoints` stays a rowid table: its rows are
 * ~800 bytes, and kept in key order (threads interleave) their pages filled less than the index
 * saved (11.8 KB a run against 10.1 KB). A file that already has the table keeps it as it is
 * (IF NOT EXISTS); both kinds read and write the same.
 */
export function createWritesTable(db: Database.Database): void {
  db.exec(`
CREATE TABLE IF NOT EXISTS writes (
  thread_id TEXT NOT NULL,
  checkpoint_ns TEXT NOT NULL DEFAULT '',
  checkpoint_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  channel TEXT NOT NULL,
  type TEXT,
  value BLOB,
  PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
) WITHOUT ROWID;`);
}

export interface OpenedCheckpointer {
  saver: BaseCheckpointSaver;
  /** The open database, shared with other tables that live beside the checkpoints. */
  db?: Database.Database;
  close(): void;
}

export function openSqliteCheckpointer(
  path: string,
  options: {
    /**
     * false skips the integrity check (a file another connection opened and checked); otherwise
     * files up to QUICK_CHECK_MAX_BYTES are checked (quickCheckIfSmall).
     */
    check?: boolean;
    limits?: StateLimits;
    /** Store each run's config.metadata in its checkpoints' metadata (the server). */
    runMetadata?: boolean;
    /** See PreparedSqliteSaver's `packOnCompact` (the server). */
    packOnCompact?: boolean;
  } = {},
): OpenedCheckpointer {
  const file = resolve(path);
  const fix = "set REFINERY_DB (or `db` in the config file) to a writable SQLite file path";
  try {
    if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) {
      throw new RefineryError("invalid_config", `database path ${file} is a directory`, {
        field: "REFINERY_DB",
        fix,
      });
    }
    mkdirSync(dirname(file), { recursive: true });
  } catch (err) {
    if (err instanceof RefineryError) throw err;
    throw new RefineryError(
      "invalid_config",
      `cannot create the database folder for ${file}: ${(err as Error).message}`,
      {
        field: "REFINERY_DB",
        fix,
      },
    );
  }
  let db: Database.Database;
  try {
    db = new Database(file);
    // Touch the schema so a file that is not a SQLite database fails here, not mid-run.
    db.pragma("schema_version");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("busy_timeout = 5000");
    if (options.check !== false) quickCheckIfSmall(db, file);
    takeWriterTurns(db);
  } catch (err) {
    throw new RefineryError(
      "storage_error",
      `cannot open ${file} as a SQLite database (${(err as Error).message})`,
      {
        field: "REFINERY_DB",
        fix: "point REFINERY_DB at a new file or a Refinery database; move the damaged file away",
      },
    );
  }
  const saver = new PreparedSqliteSaver(db, options.limits, {
    runMetadata: options.runMetadata,
    packOnCompact: options.packOnCompact,
  });
  return {
    saver,
    db,
    close: () => {
      if (!db.open) return;
      saver.flush(true);
      db.close();
    },
  };
}

export function openMemoryCheckpointer(): OpenedCheckpointer {
  return { saver: new MemorySaver(), close: () => {} };
}

/**
 * SqliteSaver whose `put` and `putWrites` reuse prepared statements (the library prepares the
 * same INSERT on every call, which cost more CPU than the insert itself) and commit together:
 * writes queued in one turn of the event loop share one transaction, and each call resolves once
 * its write is committed. LangGraph awaits every pending checkpoint write before a run's stream
 * ends, reads here commit the queue first, and `close` commits what is left. Same SQL, rows and
 * serialization as the library (@langchain/langgraph-checkpoint-sqlite 1.0.4), except that a
 * checkpoint whose parent this saver wrote or read is stored as a delta from it (only what
 * changed; see core/checkpoint-delta.ts): each channel value is stored once per version, not
 * once per checkpoint. Reads put the whole checkpoint back together; rows written by the library
 * (or before deltas) are whole checkpoints and read as they are, so existing files open unchanged.
 *
 * It also enforces `limits` before anything is queued: a checkpoint (or a step's writes) over
 * `maxCheckpointBytes`, or a thread whose rows would pass `maxThreadBytes`, throws
 * StateTooLargeError and writes nothing, so the run fails with that error. A thread's total is
 * summed once, then kept up to date here; it is summed again when a write does not follow this
 * saver's own last checkpoint of the thread (another connection, a run thread, a rollback or a
 * fork wrote in between). Rows a replace or ignore leaves unchanged are still counted, so the
 * total can only err high.
 */
export class PreparedSqliteSaver extends SqliteSaver {
  /** Bytes per thread, and the last checkpoint id this saver wrote per namespace; LRU order. */
  private readonly usage = new Map<string, { bytes: number; heads: Map<string, string> }>();
  private sizeStatement?: Database.Statement;

  constructor(
    db: Database.Database,
    private readonly limits: StateLimits = DEFAULT_STATE_LIMITS,
    private readonly options: {
      runMetadata?: boolean;
      /**
       * Store checkpoint rows as serialized and pack (deflate) only the one compact() leaves live,
       * for a caller that compacts each thread when its run ends (the server): the others move
       * into a segment that is deflated as a whole, so deflating each at put was spent twice.
       */
      packOnCompact?: boolean;
    } = {},
  ) {
    super(db);
    this.serde = unpacking(this.serde);
  }

  protected override setup(): void {
    if (!this.isSetup) {
      createWritesTable(this.db);
      createArchiveTable(this.db);
    }
    super.setup();
  }

  private archiveCache?: CheckpointArchive;

  /** The archive of finished runs' checkpoints (core/checkpoint-archive.ts). */
  private archive(): CheckpointArchive {
    this.setup();
    return (this.archiveCache ??= new CheckpointArchive(this.db));
  }

  /**
   * Moves the thread's checkpoints older than the latest of each namespace, with their pending
   * writes, into one archive segment (see core/checkpoint-archive.ts); reads find them there.
   * The server calls it when a run ends. Returns how many checkpoints moved.
   */
  compact(threadId: string): number {
    this.flush();
    const archive = this.archive();
    const moved = this.db.transaction(() => archive.compact(threadId)).immediate();
    // The thread's stored bytes shrank: sum them again at its next write.
    if (moved > 0) this.usage.delete(threadId);
    return moved;
  }

  /** Another connection compacted `threadId` (CompactionAware): sum its bytes again at its next write. */
  compacted(threadId: string): void {
    this.usage.delete(threadId);
  }

  /** A tuple as the library's getTuple builds one, from an archived checkpoint. */
  private async archivedTuple(
    threadId: string,
    ns: string,
    a: ArchivedCheckpoint,
    config?: RunnableConfig,
  ): Promise<CheckpointTuple> {
    const type = a.type ?? "json";
    return {
      config: config ?? {
        configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: a.id },
      },
      checkpoint: (await this.serde.loadsTyped(type, a.checkpoint)) as Checkpoint,
      metadata: (await this.serde.loadsTyped(
        type,
        a.metadata ?? new Uint8Array(),
      )) as CheckpointMetadata,
      parentConfig: a.parentId
        ? { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: a.parentId } }
        : undefined,
      // As the library reads them: the value's bytes as text.
      pendingWrites: await Promise.all(
        a.writes.map(
          async (w) =>
            [
              w.taskId,
              w.channel,
              await this.serde.loadsTyped(
                w.type ?? "json",
                w.value === null ? "" : Buffer.from(w.value).toString("utf8"),
              ),
            ] as [string, string, unknown],
        ),
      ),
    };
  }

  private queue: {
    threadId: string;
    write: () => void;
    resolve: () => void;
    reject: (err: unknown) => void;
  }[] = [];
  /** Threads whose writes are dropped (a run being rolled back), see fence(). */
  private readonly fenced = new Set<string>();

  /**
   * Drops every write to `threadId` from now on, queued ones included, until unfence(): a run
   * cancelled with rollback can still have writes in flight in LangGraph's loop after its stream
   * ended, and one landing after the rollback would bring the rolled-back run's state back.
   * Runs of a thread follow one another, so the next run of the thread lifts the fence.
   */
  fence(threadId: string): void {
    this.fenced.add(threadId);
    this.forget(threadId);
    if (this.fenced.size > 10_000) this.fenced.delete(this.fenced.values().next().value as string);
    this.flush();
  }

  unfence(threadId: string): void {
    this.fenced.delete(threadId);
  }
  private flushScheduled = false;

  /**
   * The state of recent checkpoints (written or read here) by thread, namespace and id: the next
   * checkpoint is stored as a delta from its parent's when the parent is here. Oldest first.
   */
  private readonly states = new Map<string, Remembered & { metadata?: CheckpointMetadata }>();

  private rememberState(
    threadId: string,
    ns: string,
    state: Remembered & { metadata?: CheckpointMetadata },
  ): string {
    const key = `${threadId}\u0000${ns}\u0000${state.id}`;
    this.states.delete(key);
    this.states.set(key, state);
    if (this.states.size > 1024) this.states.delete(this.states.keys().next().value as string);
    return key;
  }

  private forget(threadId: string): void {
    const prefix = `${threadId}\u0000`;
    for (const key of this.states.keys()) if (key.startsWith(prefix)) this.states.delete(key);
  }

  private rowStatement?: Database.Statement;

  /**
   * The whole checkpoint `stored` stands for: itself, or (a delta) applied to its parent's,
   * read from the file and put together the same way; `memo` keeps those found by id.
   */
  private async whole(
    threadId: string,
    ns: string,
    stored: Checkpoint,
    parentId: string | undefined,
    memo: Map<string, Checkpoint>,
    segments: Map<number, ArchivedCheckpoint[]> = new Map(),
  ): Promise<Checkpoint> {
    if (!deltaOf(stored)) return stored;
    let parent = parentId === undefined ? undefined : memo.get(parentId);
    if (!parent && parentId !== undefined) {
      this.rowStatement ??= this.db.prepare(
        "SELECT type, checkpoint, parent_checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
      );
      const row = this.rowStatement.get(threadId, ns, parentId) as
        | { type: string | null; checkpoint: Uint8Array; parent_checkpoint_id: string | null }
        | undefined;
      if (row) {
        const cp = (await this.serde.loadsTyped(row.type ?? "json", row.checkpoint)) as Checkpoint;
        parent = await this.whole(
          threadId,
          ns,
          cp,
          row.parent_checkpoint_id ?? undefined,
          memo,
          segments,
        );
      } else {
        const a = this.archive().find(threadId, ns, parentId, segments);
        if (a) {
          const cp = (await this.serde.loadsTyped(a.type ?? "json", a.checkpoint)) as Checkpoint;
          parent = await this.whole(threadId, ns, cp, a.parentId ?? undefined, memo, segments);
        }
      }
    }
    if (!parent) {
      throw new Error(
        `checkpoint ${stored.id} of thread ${threadId} is stored as a change to checkpoint ` +
          `${String(parentId)}, which is missing from the database`,
      );
    }
    const result = apply(parent, stored);
    memo.set(result.id, result);
    return result;
  }

  /**
   * The tuple with its whole checkpoint; `keep`: remembered for the next put (a run starts from
   * what getTuple read; a history listing is not worth measuring every state of).
   */
  private async completed(
    tuple: CheckpointTuple,
    memo: Map<string, Checkpoint>,
    keep: boolean,
    metadataMemo = new Map<string, CheckpointMetadata>(),
    segments = new Map<number, ArchivedCheckpoint[]>(),
  ) {
    const { thread_id, checkpoint_ns } = tuple.config.configurable ?? {};
    const threadId = thread_id as string;
    const ns = (checkpoint_ns as string | undefined) ?? "";
    const depth = deltaOf(tuple.checkpoint)?.depth ?? 0;
    const parentId = tuple.parentConfig?.configurable?.checkpoint_id as string | undefined;
    tuple.checkpoint = await this.whole(threadId, ns, tuple.checkpoint, parentId, memo, segments);
    if (tuple.metadata !== undefined) {
      tuple.metadata = await this.wholeMetadata(
        threadId,
        ns,
        tuple.metadata,
        parentId,
        metadataMemo,
        segments,
      );
      metadataMemo.set(tuple.checkpoint.id, tuple.metadata);
    }
    if (!keep) return tuple;
    const size = sizeOf(tuple.checkpoint, undefined, tuple.checkpoint, undefined);
    this.rememberState(threadId, ns, {
      ...remember(tuple.checkpoint, depth, size),
      metadata: tuple.metadata,
    });
    return tuple;
  }

  private metadataRowStatement?: Database.Statement;

  /**
   * The whole metadata `stored` stands for: itself, or (a change from the parent's, see
   * diffMetadata) applied to its parent's, read from the file the same way; `memo` by id.
   */
  private async wholeMetadata(
    threadId: string,
    ns: string,
    stored: CheckpointMetadata,
    parentId: string | undefined,
    memo: Map<string, CheckpointMetadata>,
    segments: Map<number, ArchivedCheckpoint[]> = new Map(),
  ): Promise<CheckpointMetadata> {
    if (!isMetadataDelta(stored)) return stored;
    let parent = parentId === undefined ? undefined : memo.get(parentId);
    if (!parent && parentId !== undefined) {
      this.metadataRowStatement ??= this.db.prepare(
        "SELECT type, metadata, parent_checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
      );
      const row = this.metadataRowStatement.get(threadId, ns, parentId) as
        | { type: string | null; metadata: Uint8Array; parent_checkpoint_id: string | null }
        | undefined;
      const a = row ? undefined : this.archive().find(threadId, ns, parentId, segments);
      const found = row
        ? { type: row.type, metadata: row.metadata, parentId: row.parent_checkpoint_id }
        : a && { type: a.type, metadata: a.metadata ?? new Uint8Array(), parentId: a.parentId };
      if (found) {
        const m = (await this.serde.loadsTyped(
          found.type ?? "json",
          found.metadata,
        )) as CheckpointMetadata;
        parent = await this.wholeMetadata(
          threadId,
          ns,
          m,
          found.parentId ?? undefined,
          memo,
          segments,
        );
        memo.set(parentId, parent);
      }
    }
    if (!parent) {
      throw new Error(
        `the metadata of a checkpoint of thread ${threadId} is stored as a change to checkpoint ` +
          `${String(parentId)}'s, which is missing from the database`,
      );
    }
    return applyMetadata(
      parent as Record<string, unknown>,
      stored as Record<string, unknown>,
    ) as CheckpointMetadata;
  }

  /**
   * Rewrites the latest checkpoint of each namespace of `threadId` as a whole one, so it no
   * longer needs the checkpoints before it (which POST /threads/prune then deletes).
   */
  async keyframeLatest(threadId: string): Promise<void> {
    this.flush();
    this.setup();
    const latest = this.db
      .prepare(
        "SELECT checkpoint_ns AS ns, MAX(checkpoint_id) AS id FROM checkpoints WHERE thread_id = ? GROUP BY checkpoint_ns",
      )
      .all(threadId) as { ns: string; id: string }[];
    for (const { ns, id } of latest) {
      const tuple = await this.getTuple({
        configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: id },
      });
      if (!tuple) continue;
      const [type, serialized] = await this.serde.dumpsTyped(tuple.checkpoint);
      const [, metadata] = await this.serde.dumpsTyped(tuple.metadata);
      const bytes = pack(serialized);
      this.db
        .prepare(
          "UPDATE checkpoints SET type = ?, checkpoint = ?, metadata = ? WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
        )
        .run(type, bytes, metadata, threadId, ns, id);
    }
    this.forget(threadId);
  }

  private statements?: {
    put: Database.Statement;
    writeReplace: Database.Statement;
    writeIgnore: Database.Statement;
  };

  private prepared() {
    this.setup();
    this.statements ??= {
      put: this.db.prepare(
        "INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)",
      ),
      writeReplace: this.db.prepare(
        "INSERT OR REPLACE INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      writeIgnore: this.db.prepare(
        "INSERT OR IGNORE INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ),
    };
    return this.statements;
  }

  private fenceStatementCache?: Database.Statement | null;

  /** Whether a run is still running as the given attempt; null where the file has no runs table. */
  private fenceStatement(): Database.Statement | undefined {
    if (this.fenceStatementCache === undefined) {
      try {
        this.fenceStatementCache = this.db.prepare(
          "SELECT 1 FROM refinery_runs WHERE run_id = ? AND attempt = ? AND status = 'running'",
        );
      } catch {
        this.fenceStatementCache = null; // not a server's file: no runs to fence
      }
    }
    return this.fenceStatementCache ?? undefined;
  }

  /**
   * Writes that may wait for the next commit instead of causing one (the model attempt journal's
   * tokens and clean-up): they ride along with the next batch of checkpoint writes.
   */
  private lazy: { threadId: string; write: () => void }[] = [];

  /**
   * Commits the queued writes in one transaction; each write's promise settles with it.
   * `final` (closing): the deferred journal writes too when no checkpoint write is queued, else
   * a run's last clean-up, which waits for a next checkpoint write, was lost and its journal rows
   * stayed in the file until the thread's next step.
   */
  flush(final = false): void {
    const all = this.queue.splice(0);
    if (all.length === 0 && !(final && this.lazy.length > 0)) return;
    const lazy = this.lazy.splice(0).filter((op) => !this.fenced.has(op.threadId));
    const batch = all.filter((op) => {
      if (!this.fenced.has(op.threadId)) return true;
      op.resolve();
      return false;
    });
    if (batch.length === 0 && lazy.length === 0) return;
    try {
      this.db
        .transaction(() => {
          for (const op of lazy) {
            try {
              op.write();
            } catch {
              // Journal bookkeeping never fails the checkpoint writes it rides with.
            }
          }
          for (const op of batch) op.write();
        })
        .immediate();
      for (const op of batch) op.resolve();
    } catch {
      // One failing write must not fail the others: retry each in its own transaction.
      for (const op of batch) {
        try {
          this.db.transaction(op.write).immediate();
          op.resolve();
        } catch (err) {
          op.reject(err);
        }
      }
    }
  }

  /**
   * Queues a write; writes queued in the same turn of the event loop (steps of concurrent runs,
   * or CPU-only steps of one run) commit together, which saves a commit per write.
   */
  private enqueue(threadId: string, write: () => void): Promise<void> {
    if (this.fenced.has(threadId)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.queue.push({ threadId, write, resolve, reject });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    });
  }

  /**
   * Checks a write of `bytes` to `threadId` against the limits and counts it. `head` is the
   * checkpoint the write follows in namespace `ns` (a put's parent, or the checkpoint writes
   * belong to); when this saver did not write it last, the thread's total is summed again.
   */
  private charge(
    threadId: string,
    ns: string,
    head: string | undefined,
    bytes: number,
    what: "checkpoint" | "writes",
    /** The bytes held against maxCheckpointBytes (the whole checkpoint's), if not `bytes`. */
    size = bytes,
  ): { bytes: number; heads: Map<string, string> } | undefined {
    const { maxCheckpointBytes, maxThreadBytes } = this.limits;
    if (maxCheckpointBytes > 0 && size > maxCheckpointBytes) {
      throw checkpointTooLarge(threadId, size, maxCheckpointBytes, what);
    }
    if (maxThreadBytes <= 0) return undefined;
    let usage = this.usage.get(threadId);
    if (!usage || usage.heads.get(ns) !== head) {
      usage = { bytes: this.storedBytes(threadId), heads: new Map() };
      if (head !== undefined) usage.heads.set(ns, head);
    }
    // Most recently used last; the oldest thread is forgotten (and summed again if it returns).
    this.usage.delete(threadId);
    this.usage.set(threadId, usage);
    if (this.usage.size > 4096) this.usage.delete(this.usage.keys().next().value as string);
    if (usage.bytes + bytes > maxThreadBytes) {
      throw threadTooLarge(threadId, usage.bytes + bytes, maxThreadBytes);
    }
    usage.bytes += bytes;
    return usage;
  }

  /** Bytes of a thread's checkpoints and writes as stored (after committing what is queued). */
  private storedBytes(threadId: string): number {
    this.flush();
    this.setup();
    this.sizeStatement ??= this.db.prepare(
      `SELECT
         (SELECT COALESCE(SUM(COALESCE(length(checkpoint), 0) + COALESCE(length(metadata), 0)), 0)
            FROM checkpoints WHERE thread_id = ?)
       + (SELECT COALESCE(SUM(COALESCE(length(value), 0)), 0) FROM writes WHERE thread_id = ?)
       AS bytes`,
    );
    return (
      (this.sizeStatement.get(threadId, threadId) as { bytes: number }).bytes +
      this.archive().bytes(threadId)
    );
  }

  override async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    this.flush();
    const tuple = await super.getTuple(config);
    if (tuple) return this.completed(tuple, new Map(), true);
    // Not among the live rows: an archived checkpoint (history, time travel, a fork). A thread's
    // latest checkpoint of each namespace is never archived, so a read of the latest (every
    // run's first, on a new thread too) has nothing to look up there.
    const { thread_id, checkpoint_ns, checkpoint_id } = config.configurable ?? {};
    if (typeof thread_id !== "string" || !checkpoint_id) return undefined;
    const ns = (checkpoint_ns as string | undefined) ?? "";
    const segments = new Map<number, ArchivedCheckpoint[]>();
    const a = this.archive().find(thread_id, ns, checkpoint_id as string, segments);
    if (!a) return undefined;
    const found = await this.archivedTuple(thread_id, ns, a, config);
    return this.completed(found, new Map(), true, new Map(), segments);
  }

  override async *list(
    config: RunnableConfig,
    options?: CheckpointListOptions,
  ): AsyncGenerator<CheckpointTuple> {
    this.flush();
    const memo = new Map<string, Checkpoint>();
    const metadataMemo = new Map<string, CheckpointMetadata>();
    const segmentCache = new Map<number, ArchivedCheckpoint[]>();
    const filter = Object.entries(options?.filter ?? {}).filter(([, v]) => v !== undefined);
    const { filter: _filter, limit, ...rest } = options ?? {};
    const max = limit ? Number.parseInt(String(limit), 10) : 0;
    const threadId = config.configurable?.thread_id as string | undefined;
    const ns = config.configurable?.checkpoint_ns as string | undefined | null;
    const before = rest.before?.configurable?.checkpoint_id as string | undefined;
    // Live rows and archived ones, newest first. Live rows are read first: a compaction
    // committing in between only moves rows from there into the archive, so reading the archive
    // second finds every row at least once (duplicates are dropped below). A row whose metadata
    // is stored as a change from its parent's holds only the keys that changed, so the library's
    // SQL filter on the metadata column would miss it: filter here, on the whole metadata, as that
    // SQL compares (the key's value as JSON). Without a filter, at most `max` rows of each kind
    // can be among the first.
    const live: CheckpointTuple[] = [];
    for await (const tuple of super.list(config, filter.length === 0 ? { ...rest, limit } : rest)) {
      live.push(tuple);
    }
    const segments = this.archive().segments(threadId || undefined, ns ?? undefined, before);
    if (filter.length === 0 && segments.length === 0) {
      for (const tuple of live)
        yield await this.completed(tuple, memo, false, metadataMemo, segmentCache);
      return;
    }
    const seen = new Set(
      live.map(
        (t) => `${String(t.config.configurable?.checkpoint_ns ?? "")}\u0000${t.checkpoint.id}`,
      ),
    );
    const archived: { threadId: string; ns: string; row: ArchivedCheckpoint }[] = [];
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      // Segments come newest last id first: once `max` rows are newer than this one's last id,
      // nothing in it or after it can be among the first `max`.
      if (filter.length === 0 && max > 0) {
        if (archived.filter((r) => r.row.id > seg.last_id).length >= max) break;
      }
      for (const row of this.archive().rowsOf(seg.rowid, segmentCache)) {
        if (before !== undefined && !(row.id < before)) continue;
        if (seen.has(`${seg.checkpoint_ns}\u0000${row.id}`)) continue;
        archived.push({ threadId: seg.thread_id, ns: seg.checkpoint_ns, row });
      }
    }
    const entries: { id: string; tuple?: CheckpointTuple; archived?: (typeof archived)[number] }[] =
      [
        ...live.map((tuple) => ({ id: tuple.checkpoint.id, tuple })),
        ...archived.map((a) => ({ id: a.row.id, archived: a })),
      ];
    entries.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    let found = 0;
    for (const entry of entries) {
      const raw =
        entry.tuple ??
        (await this.archivedTuple(
          entry.archived!.threadId,
          entry.archived!.ns,
          entry.archived!.row,
        ));
      const t = await this.completed(raw, memo, false, metadataMemo, segmentCache);
      const m = (t.metadata ?? {}) as Record<string, unknown>;
      if (!filter.every(([k, v]) => JSON.stringify(m[k]) === JSON.stringify(v))) continue;
      yield t;
      if (max > 0 && ++found >= max) return;
    }
  }

  override async deleteThread(threadId: string): Promise<void> {
    this.flush();
    this.usage.delete(threadId);
    this.forget(threadId);
    clearAttemptJournal(this.db, threadId);
    this.archive().deleteThread(threadId);
    return super.deleteThread(threadId);
  }

  private journal?: AttemptJournal;

  /** The journal of model attempts in this file (see core/models/attempt-journal.ts). */
  [ATTEMPT_JOURNAL](): AttemptJournal {
    // Tokens and clean-up commit with the next checkpoint writes (see the journal).
    this.journal ??= createSqliteAttemptJournal(this.db, (threadId, write) => {
      if (this.lazy.length > 10_000) this.lazy.splice(0, 1);
      this.lazy.push({ threadId, write });
    });
    return this.journal;
  }

  override async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
  ): Promise<RunnableConfig> {
    const statements = this.prepared();
    const configurable = config.configurable;
    if (!configurable) throw new Error("Empty configuration supplied.");
    const threadId = configurable.thread_id as string | undefined;
    const checkpointNs = (configurable.checkpoint_ns as string | undefined) ?? "";
    if (!threadId) throw new Error(`Missing "thread_id" field in passed "config.configurable".`);
    const fullMetadata = this.options.runMetadata
      ? runCheckpointMetadata(config, metadata)
      : metadata;
    const parent = configurable.checkpoint_id as string | undefined;
    const whole = copyCheckpoint(checkpoint);
    const base =
      parent === undefined
        ? undefined
        : this.states.get(`${threadId}\u0000${checkpointNs}\u0000${parent}`);
    const stored = base && base.depth + 1 < MAX_DEPTH ? diff(base, whole) : whole;
    // The metadata too, when the checkpoint is a delta and the parent's metadata is known.
    const storedMetadata =
      (stored !== whole && base?.metadata
        ? (diffMetadata(
            base.metadata as Record<string, unknown>,
            fullMetadata as Record<string, unknown>,
          ) as CheckpointMetadata | undefined)
        : undefined) ?? fullMetadata;
    const [[type1, serialized], [type2, serializedMetadata]] = await Promise.all([
      this.serde.dumpsTyped(stored),
      this.serde.dumpsTyped(storedMetadata),
    ]);
    if (type1 !== type2) {
      throw new Error("Failed to serialized checkpoint and metadata to the same type.");
    }
    const serializedCheckpoint = this.options.packOnCompact ? serialized : pack(serialized);
    const bytes = serializedCheckpoint.length + serializedMetadata.length;
    // The checkpoint limit is on the whole state (as serialized, not compressed), the thread
    // limit on what is stored.
    const size = sizeOf(whole, base, stored, stored === whole ? serialized.length : undefined);
    const usage = this.charge(threadId, checkpointNs, parent, bytes, "checkpoint", size.bytes);
    usage?.heads.set(checkpointNs, checkpoint.id);
    // The next checkpoint of a run follows this one: diff it against this state.
    const key = this.rememberState(threadId, checkpointNs, {
      ...remember(whole, base && stored !== whole ? base.depth + 1 : 0, size),
      metadata: fullMetadata,
    });
    if (base) this.states.delete(`${threadId}\u0000${checkpointNs}\u0000${parent}`);
    // A server run's checkpoint is written only while the run is still this attempt's, checked
    // in the transaction that writes it (see StaleRunError).
    const fence = this.options.runMetadata ? runFenceOf(config) : undefined;
    const stillOurs = fence ? this.fenceStatement() : undefined;
    await this.enqueue(threadId, () => {
      if (fence && stillOurs && !stillOurs.get(fence.runId, fence.attempt)) {
        throw new StaleRunError(fence.runId, fence.attempt);
      }
      statements.put.run(
        threadId,
        checkpointNs,
        checkpoint.id,
        configurable.checkpoint_id,
        type1,
        serializedCheckpoint,
        serializedMetadata,
      );
    }).catch((err: unknown) => {
      if (usage) usage.bytes -= bytes;
      this.states.delete(key);
      throw err;
    });
    // A write dropped by a fence is not there to diff against.
    if (this.fenced.has(threadId)) this.states.delete(key);
    return {
      configurable: {
        thread_id: threadId,
        checkpoint_ns: checkpointNs,
        checkpoint_id: checkpoint.id,
      },
    };
  }

  override async putWrites(
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
  ): Promise<void> {
    const statements = this.prepared();
    const configurable = config.configurable;
    if (!configurable) throw new Error("Empty configuration supplied.");
    if (!configurable.thread_id) throw new Error("Missing thread_id field in config.configurable.");
    if (!configurable.checkpoint_id) {
      throw new Error("Missing checkpoint_id field in config.configurable.");
    }
    const allSpecial = writes.every(([channel]) => channel in WRITES_IDX_MAP);
    const statement = allSpecial ? statements.writeReplace : statements.writeIgnore;
    const rows = await Promise.all(
      writes.map(async ([channel, value], idx) => {
        const [type, serialized] = await this.serde.dumpsTyped(value);
        return [
          configurable.thread_id,
          configurable.checkpoint_ns,
          configurable.checkpoint_id,
          taskId,
          WRITES_IDX_MAP[channel] ?? idx,
          channel,
          type,
          serialized,
        ];
      }),
    );
    const bytes = rows.reduce((sum, row) => sum + (row[7] as Uint8Array).length, 0);
    const usage = this.charge(
      configurable.thread_id as string,
      (configurable.checkpoint_ns as string | undefined) ?? "",
      configurable.checkpoint_id as string,
      bytes,
      "writes",
    );
    await this.enqueue(configurable.thread_id as string, () => {
      for (const row of rows) statement.run(...row);
    }).catch((err: unknown) => {
      if (usage) usage.bytes -= bytes;
      throw err;
    });
  }
}
