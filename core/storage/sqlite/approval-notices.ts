// Approval webhook notices in the SQLite file.
import type Database from "better-sqlite3";
import type { ApprovalNotice, ApprovalNotices } from "../approval-notices.ts";

export function createSqliteApprovalNotices(db: Database.Database): ApprovalNotices {
  db.exec(`CREATE TABLE IF NOT EXISTS refinery_approval_notices (
    thread_id TEXT NOT NULL,
    interrupt_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL DEFAULT 0,
    delivered_at TEXT,
    PRIMARY KEY (thread_id, interrupt_id)
  )`);
  const insert = db.prepare(
    "INSERT OR IGNORE INTO refinery_approval_notices (thread_id, interrupt_id) VALUES (?, ?)",
  );
  const select = db.prepare(
    "SELECT attempts, next_at, delivered_at FROM refinery_approval_notices WHERE thread_id = ? AND interrupt_id = ?",
  );
  const delivered = db.prepare(
    "UPDATE refinery_approval_notices SET attempts = ?, delivered_at = ? WHERE thread_id = ? AND interrupt_id = ?",
  );
  const failed = db.prepare(
    "UPDATE refinery_approval_notices SET attempts = ?, next_at = ? WHERE thread_id = ? AND interrupt_id = ?",
  );
  return {
    async get(threadId, interruptId) {
      insert.run(threadId, interruptId);
      return select.get(threadId, interruptId) as ApprovalNotice;
    },
    async delivered(threadId, interruptId, attempts, at) {
      delivered.run(attempts, at, threadId, interruptId);
    },
    async failed(threadId, interruptId, attempts, nextAt) {
      failed.run(attempts, nextAt, threadId, interruptId);
    },
  };
}
