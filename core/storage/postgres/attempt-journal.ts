// The model attempt journal (core/models/attempt-journal.ts) in Postgres, beside the checkpoints
// in the same schema, so an attempt cut by a crash is counted by whichever process runs the step
// again. An attempt's row commits before its call goes out, in one statement that, on a step's
// first call, also drops the thread's rows of steps checkpointed since and sums what earlier
// executions of this step spent (one round trip per model call). Tokens and clean-up are written
// without being awaited by the call; losing one loses only a cut attempt's count. An attempt's
// tokens go with the thread's next checkpoint statement when one comes within 100 ms (the step
// that made the call ends with it), else alone (saver.ts: deferEnd), as the SQLite journal's ride
// with its next commit.
import type pg from "pg";
import { prepared } from "./pool.ts";
import type { TokenUsage } from "../../usage.ts";
import {
  carriedUsage,
  type AttemptJournal,
  type CarriedRow,
} from "../../models/attempt-journal.ts";

/** An attempt's tokens, to be written with the thread's next checkpoint (saver.ts) or alone. */
export type DeferEnd = (
  threadId: string,
  row: bigint,
  usage: Partial<TokenUsage>,
) => Promise<void> | undefined;

export function createPostgresAttemptJournal(
  pool: pg.Pool,
  schema: string,
  /** Takes an attempt's end to write later; undefined (or a call answering undefined): now. */
  deferEnd?: DeferEnd,
): AttemptJournal {
  const J = `"${schema}".refinery_model_attempts`;
  return {
    async start(key, node, carry) {
      const args = [key.threadId, key.parentId, key.taskId, key.exec, node];
      if (!carry) {
        const { rows } = await pool.query<{ id: string }>(
          prepared(
            `INSERT INTO ${J} (thread_id, parent_id, task_id, exec, node)
           VALUES ($1, $2, $3, $4, $5) RETURNING id`,
            args,
          ),
        );
        return { row: BigInt(rows[0]!.id) };
      }
      // The sum reads the snapshot the statement started from: the new row is not in it, and
      // the delete only takes rows of other parents, which the sum does not read.
      const { rows } = await pool.query<CarriedRow & { id: string }>(
        prepared(
          `WITH dropped AS (
           DELETE FROM ${J} WHERE thread_id = $1 AND parent_id <> $2
         ), earlier AS (
           SELECT COUNT(*) AS n, COALESCE(SUM(calls), 0) AS calls,
             COALESCE(SUM(prompt_tokens), 0) AS prompt,
             COALESCE(SUM(completion_tokens), 0) AS completion,
             COALESCE(SUM(total_tokens), 0) AS total,
             COALESCE(SUM(estimated_tokens), 0) AS estimated
           FROM ${J} WHERE thread_id = $1 AND parent_id = $2 AND task_id = $3 AND exec <> $4
         ), added AS (
           INSERT INTO ${J} (thread_id, parent_id, task_id, exec, node)
           VALUES ($1, $2, $3, $4, $5) RETURNING id
         )
         SELECT added.id, earlier.* FROM added, earlier`,
          args,
        ),
      );
      const r = rows[0]!;
      const carried = carriedUsage(r);
      return { row: BigInt(r.id), ...(carried ? { carried } : {}) };
    },
    async end(row, usage, threadId) {
      const deferred = deferEnd?.(threadId, BigInt(row), usage);
      if (deferred) return deferred;
      await pool.query(
        `UPDATE ${J} SET prompt_tokens = $1, completion_tokens = $2, total_tokens = $3,
           estimated_tokens = $4 WHERE id = $5`,
        [
          usage.promptTokens ?? 0,
          usage.completionTokens ?? 0,
          usage.totalTokens ?? 0,
          usage.estimatedTokens ?? 0,
          String(row),
        ],
      );
    },
    async clear(threadId) {
      await pool.query(prepared(`DELETE FROM ${J} WHERE thread_id = $1`, [threadId]));
    },
  };
}
