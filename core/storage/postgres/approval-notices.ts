// Approval webhook notices in Postgres (migration 3).
import type pg from "pg";
import type { ApprovalNotice, ApprovalNotices } from "../approval-notices.ts";

export function createPostgresApprovalNotices(pool: pg.Pool, schema: string): ApprovalNotices {
  const N = `"${schema}".refinery_approval_notices`;
  return {
    async get(threadId, interruptId) {
      await pool.query(
        `INSERT INTO ${N} (thread_id, interrupt_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
        [threadId, interruptId],
      );
      const { rows } = await pool.query<ApprovalNotice>(
        `SELECT attempts, next_at::float8 AS next_at, delivered_at FROM ${N} WHERE thread_id = $1 AND interrupt_id = $2`,
        [threadId, interruptId],
      );
      return rows[0]!;
    },
    async delivered(threadId, interruptId, attempts, at) {
      await pool.query(
        `UPDATE ${N} SET attempts = $1, delivered_at = $2 WHERE thread_id = $3 AND interrupt_id = $4`,
        [attempts, at, threadId, interruptId],
      );
    },
    async failed(threadId, interruptId, attempts, nextAt) {
      await pool.query(
        `UPDATE ${N} SET attempts = $1, next_at = $2 WHERE thread_id = $3 AND interrupt_id = $4`,
        [attempts, nextAt, threadId, interruptId],
      );
    },
  };
}
