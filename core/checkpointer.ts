// Opens the checkpoint store: a SQLite file by default (WAL, so a crash mid-write leaves the
// last committed checkpoint intact), or an in-memory saver for tests.
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

export interface OpenedCheckpointer {
  saver: BaseCheckpointSaver;
  /** The open database, shared with other tables that live beside the checkpoints. */
  db?: Database.Database;
  close(): void;
}

export function openSqliteCheckpointer(
  path: string,
  /** `check: false` skips the integrity check (a file another connection opened and checked). */
  options: { check?: boolean } = {},
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
    if (options.check !== false) {
      const check = db.pragma("quick_check", { simple: true });
      if (check !== "ok") throw new Error(`integrity check failed: ${String(check)}`);
    }
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
  const saver = new PreparedSqliteSaver(db);
  return {
    saver,
    db,
    close: () => {
      if (!db.open) return;
      saver.flush();
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
 * serialization as the library (@langchain/langgraph-checkpoint-sqlite 1.0.4), so files stay
 * interchangeable with it.
 */
export class PreparedSqliteSaver extends SqliteSaver {
  private queue: { write: () => void; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private flushScheduled = false;
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

  /** Commits the queued writes in one transaction; each write's promise settles with it. */
  flush(): void {
    const batch = this.queue.splice(0);
    if (batch.length === 0) return;
    try {
      this.db
        .transaction(() => {
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
  private enqueue(write: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    });
  }

  override async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    this.flush();
    return super.getTuple(config);
  }

  override async *list(
    config: RunnableConfig,
    options?: CheckpointListOptions,
  ): AsyncGenerator<CheckpointTuple> {
    this.flush();
    yield* super.list(config, options);
  }

  override async deleteThread(threadId: string): Promise<void> {
    this.flush();
    return super.deleteThread(threadId);
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
    const [[type1, serializedCheckpoint], [type2, serializedMetadata]] = await Promise.all([
      this.serde.dumpsTyped(copyCheckpoint(checkpoint)),
      this.serde.dumpsTyped(metadata),
    ]);
    if (type1 !== type2) {
      throw new Error("Failed to serialized checkpoint and metadata to the same type.");
    }
    await this.enqueue(() =>
      statements.put.run(
        threadId,
        checkpointNs,
        checkpoint.id,
        configurable.checkpoint_id,
        type1,
        serializedCheckpoint,
        serializedMetadata,
      ),
    );
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
    await this.enqueue(() => {
      for (const row of rows) statement.run(...row);
    });
  }
}
