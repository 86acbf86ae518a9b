// Live feedback for a thread that is running or waiting: stored durably here, and taken into
// the thread's state by the next generate/critique/revise step that runs on it.
import type Database from "better-sqlite3";
import type { Feedback } from "../state.ts";

export interface FeedbackInbox {
  add(threadId: string, text: string): Promise<Feedback>;
  /** Returns the thread's unconsumed feedback, oldest first, and marks it consumed. */
  take(threadId: string): Promise<Feedback[]>;
  pending(threadId: string): Promise<Feedback[]>;
}

export function createSqliteFeedbackInbox(db: Database.Database): FeedbackInbox {
  db.exec(`CREATE TABLE IF NOT EXISTS refinery_feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id TEXT NOT NULL,
    text TEXT NOT NULL,
    at TEXT NOT NULL,
    consumed_at TEXT
  );
  CREATE INDEX IF NOT EXISTS refinery_feedback_thread ON refinery_feedback(thread_id, consumed_at);`);
  const select = db.prepare(
    "SELECT id, text, at FROM refinery_feedback WHERE thread_id = ? AND consumed_at IS NULL ORDER BY id",
  );
  const hasAny = db.prepare(
    "SELECT 1 FROM refinery_feedback WHERE thread_id = ? AND consumed_at IS NULL LIMIT 1",
  );
  const insert = db.prepare("INSERT INTO refinery_feedback (thread_id, text, at) VALUES (?, ?, ?)");
  const takeAll = db.transaction((threadId: string) => {
    const rows = select.all(threadId) as { id: number; text: string; at: string }[];
    if (rows.length) {
      db.prepare(
        `UPDATE refinery_feedback SET consumed_at = ? WHERE id IN (${rows.map(() => "?").join(",")})`,
      ).run(new Date().toISOString(), ...rows.map((r) => r.id));
    }
    return rows.map((r) => ({ text: r.text, source: "human" as const, at: r.at }));
  });
  return {
    async add(threadId, text) {
      const at = new Date().toISOString();
      insert.run(threadId, text, at);
      return { text, source: "human", at };
    },
    async take(threadId) {
      // Every generate/critique/revise step asks; almost always there is nothing, so the common
      // case is one prepared SELECT without a transaction.
      if (!hasAny.get(threadId)) return [];
      return takeAll.immediate(threadId);
    },
    async pending(threadId) {
      return (select.all(threadId) as { text: string; at: string }[]).map((r) => ({
        text: r.text,
        source: "human" as const,
        at: r.at,
      }));
    },
  };
}
