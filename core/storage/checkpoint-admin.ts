// Operations on stored checkpoints that BaseCheckpointSaver does not offer: copying a thread's
// history and rolling a thread back to the checkpoint it had before a cancelled run.
// One implementation per checkpointer backend; the server only sees this interface.
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import type Database from "better-sqlite3";

export interface CheckpointAdmin {
  /** Copies every checkpoint and pending write of `from` to the (new) thread `to`. */
  copyThread(from: string, to: string): Promise<void>;
  /**
   * Deletes every checkpoint of `threadId` newer than `keep` (checkpoint ids are time-ordered
   * uuid6), so the thread is exactly as it was at `keep`; `keep` null deletes them all.
   */
  rollback(threadId: string, keep: string | null): Promise<void>;
  deleteThread(threadId: string): Promise<void>;
}

/** Ensures the saver created its tables, so admin SQL never runs before them. */
export async function ensureSaverSetup(saver: BaseCheckpointSaver): Promise<void> {
  await saver.getTuple({ configurable: { thread_id: "__refinery_setup__", checkpoint_ns: "" } });
}

export function createSqliteCheckpointAdmin(db: Database.Database): CheckpointAdmin {
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
      })();
    },
    async rollback(threadId, keep) {
      db.transaction(() => {
        if (keep === null) {
          db.prepare("DELETE FROM checkpoints WHERE thread_id = ?").run(threadId);
          db.prepare("DELETE FROM writes WHERE thread_id = ?").run(threadId);
          return;
        }
        db.prepare("DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id > ?").run(
          threadId,
          keep,
        );
        // Writes recorded against `keep` belong to the cancelled run's first step.
        db.prepare("DELETE FROM writes WHERE thread_id = ? AND checkpoint_id >= ?").run(
          threadId,
          keep,
        );
      })();
    },
    async deleteThread(threadId) {
      db.transaction(() => {
        db.prepare("DELETE FROM checkpoints WHERE thread_id = ?").run(threadId);
        db.prepare("DELETE FROM writes WHERE thread_id = ?").run(threadId);
      })();
    },
  };
}
