// Operations on stored checkpoints that BaseCheckpointSaver does not offer: copying a thread's
// history and rolling a thread back to the checkpoint it had before a cancelled run.
// One implementation per checkpointer backend; the server only sees this interface.
import { clearAttemptJournal } from "../models/attempt-journal.ts";
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import type Database from "better-sqlite3";
import { CheckpointArchive, createArchiveTable } from "../checkpoint-archive.ts";

export interface CheckpointAdmin {
  /** Copies every checkpoint and pending write of `from` to the (new) thread `to`. */
  copyThread(from: string, to: string): Promise<void>;
  /**
   * Deletes every checkpoint of `threadId` newer than `keep` (checkpoint ids are time-ordered
   * uuid6), so the thread is exactly as it was at `keep`; `keep` null deletes them all.
   */
  rollback(threadId: string, keep: string | null, runId?: string): Promise<void>;
  /**
   * Saves the pending writes of checkpoint `keep` as a run starts (an interrupt waiting there,
   * say): the run's first step may overwrite them, and a rollback must bring them back.
   */
  snapshot(runId: string, threadId: string, keep: string | null): Promise<void>;
  /** Drops a run's snapshot once the run can no longer be rolled back. */
  discard(runId: string): Promise<void>;
  deleteThread(threadId: string): Promise<void>;
  /**
   * Keeps only the latest checkpoint of each namespace of `threadId` (and its pending writes):
   * the thread's state stays, its history goes (POST /threads/prune, strategy keep_latest).
   */
  keepLatest(threadId: string): Promise<void>;
  /** Deletes every checkpoint of every thread (POST /internal/truncate, dev servers only). */
  truncate(): Promise<void>;
  /**
   * Called when a run of `threadId` ends: a backend that keeps history compactly (the SQLite
   * archive, core/checkpoint-archive.ts) moves the checkpoints before the latest there.
   */
  compact(threadId: string): Promise<void>;
}

/**
 * A saver that counts a thread's stored bytes (REFINERY_MAX_THREAD_BYTES) and is told when
 * another connection compacted the thread (the server thread compacts what run threads wrote),
 * so it counts them again instead of holding the larger, older total against the limit.
 */
export interface CompactionAware {
  compacted(threadId: string): void;
}

/** Ensures the saver created its tables, so admin SQL never runs before them. */
export async function ensureSaverSetup(saver: BaseCheckpointSaver): Promise<void> {
  await saver.getTuple({ configurable: { thread_id: "__refinery_setup__", checkpoint_ns: "" } });
}

/**
 * `saver` is the checkpointer on `db` when it stores checkpoints as deltas from their parents
 * (PreparedSqliteSaver): keepLatest has it rewrite the kept checkpoints whole first.
 */
export function createSqliteCheckpointAdmin(
  db: Database.Database,
  saver?: BaseCheckpointSaver,
): CheckpointAdmin {
  const keyframes = saver as
    | Partial<{
        keyframeLatest(threadId: string): Promise<void>;
        compact(threadId: string): number;
        flush(): void;
      }>
    | undefined;
  createArchiveTable(db);
  const archive = new CheckpointArchive(db);
  db.exec(`CREATE TABLE IF NOT EXISTS refinery_rollback_writes (
    run_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    channel TEXT NOT NULL,
    type TEXT,
    value BLOB
  );
  CREATE INDEX IF NOT EXISTS refinery_rollback_writes_run ON refinery_rollback_writes(run_id);`);
  return {
    async copyThread(from, to) {
      db.transaction(() => {
        db.prepare(
          `INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata)
           SELECT ?, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata FROM checkpoints WHERE thread_id = ?`,
        ).run(to, from);
        db.prepare(
          `INSERT INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value)
           SELECT ?, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value FROM writes WHERE thread_id = ?`,
        ).run(to, from);
        archive.copy(from, to);
      }).immediate();
    },
    async rollback(threadId, keep, runId) {
      db.transaction(() => {
        // The rolled-back run's attempts of unfinished steps go with it.
        clearAttemptJournal(db, threadId);
        if (keep === null) {
          db.prepare("DELETE FROM checkpoints WHERE thread_id = ?").run(threadId);
          db.prepare("DELETE FROM writes WHERE thread_id = ?").run(threadId);
          archive.deleteThread(threadId);
          return;
        }
        // Archived checkpoints from `keep` on come back as rows first, for the SQL below (a run
        // ending compacts its thread; a rollback racing that end finds `keep` archived).
        archive.restore(threadId, keep);
        db.prepare("DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id > ?").run(
          threadId,
          keep,
        );
        // Writes against `keep` may mix what it already had with the cancelled run's first step:
        // drop them all and restore the ones saved when the run started.
        db.prepare("DELETE FROM writes WHERE thread_id = ? AND checkpoint_id >= ?").run(
          threadId,
          keep,
        );
        if (runId) {
          db.prepare(
            `INSERT OR REPLACE INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value)
             SELECT thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value FROM refinery_rollback_writes WHERE run_id = ?`,
          ).run(runId);
          db.prepare("DELETE FROM refinery_rollback_writes WHERE run_id = ?").run(runId);
        }
      }).immediate();
    },
    async snapshot(runId, threadId, keep) {
      if (keep === null) return;
      db.transaction(() => {
        db.prepare("DELETE FROM refinery_rollback_writes WHERE run_id = ?").run(runId);
        db.prepare(
          `INSERT INTO refinery_rollback_writes (run_id, thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value)
           SELECT ?, thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value FROM writes WHERE thread_id = ? AND checkpoint_id = ?`,
        ).run(runId, threadId, keep);
      }).immediate();
    },
    async discard(runId) {
      db.prepare("DELETE FROM refinery_rollback_writes WHERE run_id = ?").run(runId);
    },
    async deleteThread(threadId) {
      db.transaction(() => {
        clearAttemptJournal(db, threadId);
        db.prepare("DELETE FROM checkpoints WHERE thread_id = ?").run(threadId);
        db.prepare("DELETE FROM writes WHERE thread_id = ?").run(threadId);
        archive.deleteThread(threadId);
      }).immediate();
    },
    async keepLatest(threadId) {
      // A kept checkpoint stored as a delta needs the ones before it: store it whole first.
      await keyframes?.keyframeLatest?.(threadId);
      db.transaction(() => {
        for (const table of ["checkpoints", "writes"]) {
          db.prepare(
            `DELETE FROM ${table} WHERE thread_id = @t AND checkpoint_id < (
               SELECT MAX(c.checkpoint_id) FROM checkpoints c
               WHERE c.thread_id = @t AND c.checkpoint_ns = ${table}.checkpoint_ns)`,
          ).run({ t: threadId });
        }
        archive.deleteThread(threadId);
      }).immediate();
    },
    async truncate() {
      db.transaction(() => {
        db.exec(
          "DELETE FROM checkpoints; DELETE FROM writes; DELETE FROM refinery_rollback_writes",
        );
        archive.truncate();
        clearAttemptJournal(db);
      }).immediate();
    },
    async compact(threadId) {
      if (keyframes?.compact) keyframes.compact(threadId);
      else db.transaction(() => archive.compact(threadId)).immediate();
    },
  };
}
