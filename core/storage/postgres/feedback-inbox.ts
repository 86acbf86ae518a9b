// The feedback inbox (core/storage/feedback-inbox.ts) in Postgres: `take` marks and returns a
// thread's unconsumed feedback in one statement, so two processes never both take one item.
import type pg from "pg";
import { prepared } from "./pool.ts";
import type { Feedback } from "../../state.ts";
import type { FeedbackInbox } from "../feedback-inbox.ts";

export function createPostgresFeedbackInbox(pool: pg.Pool, schema: string): FeedbackInbox {
  const F = `"${schema}".refinery_feedback`;
  const toFeedback = (r: { text: string; at: string }): Feedback => ({
    text: r.text,
    source: "human",
    at: r.at,
  });
  return {
    async add(threadId, text) {
      const at = new Date().toISOString();
      await pool.query(`INSERT INTO ${F} (thread_id, text, at) VALUES ($1, $2, $3)`, [
        threadId,
        text,
        at,
      ]);
      return { text, source: "human", at };
    },
    async take(threadId) {
      const { rows } = await pool.query<{ id: string; text: string; at: string }>(
        prepared(
          `UPDATE ${F} SET consumed_at = $2
         WHERE id IN (SELECT id FROM ${F} WHERE thread_id = $1 AND consumed_at IS NULL FOR UPDATE SKIP LOCKED)
         RETURNING id, text, at`,
          [threadId, new Date().toISOString()],
        ),
      );
      return rows.sort((a, b) => Number(a.id) - Number(b.id)).map(toFeedback);
    },
    async pending(threadId) {
      const { rows } = await pool.query<{ text: string; at: string }>(
        `SELECT text, at FROM ${F} WHERE thread_id = $1 AND consumed_at IS NULL ORDER BY id`,
        [threadId],
      );
      return rows.map(toFeedback);
    },
  };
}
