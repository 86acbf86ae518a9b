// The checkpoint admin (core/storage/checkpoint-admin.ts) on PostgresSaver's tables: checkpoints,
// checkpoint_blobs (channel values by version) and checkpoint_writes. Each operation is one
// transaction. A rollback also deletes the blobs no remaining checkpoint refers to.
import type pg from "pg";
import type { CheckpointAdmin } from "../checkpoint-admin.ts";
import { lockThread, PostgresCheckpointArchive } from "./archive.ts";
import { inTransaction } from "./pool.ts";

export function createPostgresCheckpointAdmin(
  pool: pg.Pool,
  schema: string,
  /** Told when a thread's rows change behind the saver (its byte count is summed again). */
  changed: (threadId: string) => void = () => {},
  /** Whether compactions pack the latest checkpoints (PostgresCheckpointArchive.compact). */
  options: { pack?: boolean } = {},
): CheckpointAdmin {
  const S = `"${schema}"`;
  const CP = `${S}.checkpoints`;
  const BL = `${S}.checkpoint_blobs`;
  const WR = `${S}.checkpoint_writes`;
  const RB = `${S}.refinery_rollback_writes`;
  const MA = `${S}.refinery_model_attempts`;
  const WRITE_COLUMNS = "checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob";
  const archive = new PostgresCheckpointArchive(schema, options.pack ?? true);
  const AR = archive.table;

  const tx = (work: (c: pg.PoolClient) => Promise<void>) => inTransaction(pool, work);

  /** Deletes the thread's blobs that no checkpoint of the thread refers to any more. */
  const dropUnreferencedBlobs = (c: pg.PoolClient, threadId: string) =>
    c.query(
      `DELETE FROM ${BL} b WHERE b.thread_id = $1 AND NOT EXISTS (
         SELECT 1 FROM ${CP} c WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
           AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version)`,
      [threadId],
    );

  return {
    async copyThread(from, to) {
      await tx(async (c) => {
        // Its four statements read the thread as one: no compaction moves or packs rows between
        // them (one that did between the checkpoints and the blobs left the copy without values).
        await lockThread(c, from, true);
        await c.query(
          `INSERT INTO ${CP} (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata, packed)
           SELECT $1, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata, packed FROM ${CP} WHERE thread_id = $2`,
          [to, from],
        );
        await c.query(
          `INSERT INTO ${BL} (thread_id, checkpoint_ns, channel, version, type, blob)
           SELECT $1, checkpoint_ns, channel, version, type, blob FROM ${BL} WHERE thread_id = $2`,
          [to, from],
        );
        await c.query(
          `INSERT INTO ${WR} (thread_id, ${WRITE_COLUMNS}) SELECT $1, ${WRITE_COLUMNS} FROM ${WR} WHERE thread_id = $2`,
          [to, from],
        );
        await archive.copy(c, from, to);
      });
    },
    async rollback(threadId, keep, runId) {
      await tx(async (c) => {
        // The rolled-back run's attempts of unfinished steps go with it.
        await c.query(`DELETE FROM ${MA} WHERE thread_id = $1`, [threadId]);
        if (keep === null) {
          for (const table of [CP, BL, WR, AR])
            await c.query(`DELETE FROM ${table} WHERE thread_id = $1`, [threadId]);
          return;
        }
        // Archived checkpoints from `keep` on come back as rows first, for the SQL below (a run
        // ending compacts its thread; a rollback racing that end finds `keep` archived).
        await archive.restore(c, threadId, keep);
        await c.query(`DELETE FROM ${CP} WHERE thread_id = $1 AND checkpoint_id > $2`, [
          threadId,
          keep,
        ]);
        await dropUnreferencedBlobs(c, threadId);
        // Writes against `keep` may mix what it had with the cancelled run's first step: drop
        // them all and restore the ones saved when the run started.
        await c.query(`DELETE FROM ${WR} WHERE thread_id = $1 AND checkpoint_id >= $2`, [
          threadId,
          keep,
        ]);
        if (runId) {
          await c.query(
            `INSERT INTO ${WR} (thread_id, ${WRITE_COLUMNS})
             SELECT thread_id, ${WRITE_COLUMNS} FROM ${RB} WHERE run_id = $1
             ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE
               SET channel = excluded.channel, type = excluded.type, blob = excluded.blob`,
            [runId],
          );
          await c.query(`DELETE FROM ${RB} WHERE run_id = $1`, [runId]);
        }
      });
      changed(threadId);
    },
    async snapshot(runId, threadId, keep) {
      if (keep === null) return;
      await tx(async (c) => {
        await c.query(`DELETE FROM ${RB} WHERE run_id = $1`, [runId]);
        await c.query(
          `INSERT INTO ${RB} (run_id, thread_id, ${WRITE_COLUMNS})
           SELECT $1, thread_id, ${WRITE_COLUMNS} FROM ${WR} WHERE thread_id = $2 AND checkpoint_id = $3`,
          [runId, threadId, keep],
        );
      });
    },
    async discard(runId) {
      await pool.query(`DELETE FROM ${RB} WHERE run_id = $1`, [runId]);
    },
    async deleteThread(threadId) {
      await tx(async (c) => {
        // A compaction committing between these deletes would leave its new segment behind.
        await lockThread(c, threadId);
        for (const table of [MA, CP, BL, WR, AR])
          await c.query(`DELETE FROM ${table} WHERE thread_id = $1`, [threadId]);
      });
      changed(threadId);
    },
    async keepLatest(threadId) {
      await tx(async (c) => {
        await lockThread(c, threadId);
        for (const table of [CP, WR]) {
          await c.query(
            `DELETE FROM ${table} t WHERE t.thread_id = $1 AND t.checkpoint_id < (
               SELECT MAX(c.checkpoint_id) FROM ${CP} c
               WHERE c.thread_id = $1 AND c.checkpoint_ns = t.checkpoint_ns)`,
            [threadId],
          );
        }
        await dropUnreferencedBlobs(c, threadId);
        await archive.deleteThread(c, threadId);
      });
      changed(threadId);
    },
    async truncate() {
      await pool.query(`TRUNCATE ${CP}, ${BL}, ${WR}, ${RB}, ${MA}, ${AR}`);
    },
    async compact(threadId) {
      let changes = 0;
      await tx(async (c) => {
        changes = await archive.compact(c, threadId);
      });
      if (changes > 0) changed(threadId);
    },
  };
}
