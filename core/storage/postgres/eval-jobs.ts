// Evaluation jobs and their records in Postgres (migration 7), shared by every process of the
// deployment. A record is appended in one transaction whose first statement bumps (and so locks)
// its job's row, and only while the runner holds the job: its index is the job's records_total.
import type pg from "pg";
import { inTransaction } from "./pool.ts";
import {
  evalJobFromStored,
  jobsPastKeep,
  type StoredEvalJob,
  type EvalJobStatus,
  type EvalJobStore,
} from "../eval-jobs.ts";

const json = (value: unknown): string | null =>
  value === undefined ? null : JSON.stringify(value);

const COLUMNS = `eval_id, partition, identity, status, NULL AS spec, size, runs_in, worker_thread_id,
  attempts, progress, records_total, summary, error, runner, lease_until, cancel_requested,
  created_at, updated_at`;

export function createPostgresEvalJobStore(pool: pg.Pool, schema: string): EvalJobStore {
  const J = `"${schema}".refinery_eval_jobs`;
  const R = `"${schema}".refinery_eval_records`;
  const now = () => new Date().toISOString();
  const inTx = <T>(work: (client: pg.PoolClient) => Promise<T>) => inTransaction(pool, work);
  return {
    async create(job) {
      const at = now();
      await pool.query(
        `INSERT INTO ${J} (eval_id, partition, identity, status, spec, size, runs_in, attempts,
           progress, runner, lease_until, created_at, updated_at)
         VALUES ($1, $2, $3, 'running', $4, $5, $6, 1, $7, $8, $9, $10, $10)`,
        [
          job.eval_id,
          job.partition,
          job.identity,
          JSON.stringify(job.spec),
          job.size,
          job.runs_in,
          JSON.stringify(job.progress),
          job.runner,
          job.lease_until,
          at,
        ],
      );
    },
    async get(evalId) {
      const { rows } = await pool.query<StoredEvalJob>(`SELECT * FROM ${J} WHERE eval_id = $1`, [
        evalId,
      ]);
      return rows[0] ? evalJobFromStored(rows[0]) : undefined;
    },
    async list(partition, limit, offset) {
      const { rows } = await pool.query<StoredEvalJob>(
        `SELECT ${COLUMNS} FROM ${J} WHERE partition = $1 ORDER BY seq DESC LIMIT $2 OFFSET $3`,
        [partition, limit, offset],
      );
      return rows.map(evalJobFromStored);
    },
    async running(partition) {
      const { rows } =
        partition === undefined
          ? await pool.query<StoredEvalJob>(
              `SELECT ${COLUMNS} FROM ${J} WHERE status = 'running' ORDER BY seq`,
            )
          : await pool.query<StoredEvalJob>(
              `SELECT ${COLUMNS} FROM ${J} WHERE status = 'running' AND partition = $1 ORDER BY seq`,
              [partition],
            );
      return rows.map(evalJobFromStored);
    },
    async update(evalId, runner, patch, leaseUntil) {
      const { rows } = await pool.query<{ cancel_requested: boolean }>(
        `UPDATE ${J} SET worker_thread_id = COALESCE($1, worker_thread_id),
           progress = COALESCE($2, progress), lease_until = $3, updated_at = $4
         WHERE eval_id = $5 AND status = 'running' AND runner = $6
         RETURNING cancel_requested`,
        [patch.worker_thread_id ?? null, json(patch.progress), leaseUntil, now(), evalId, runner],
      );
      return rows[0] ? { cancel_requested: rows[0].cancel_requested } : undefined;
    },
    async append(evalId, runner, seedKey, record, progress, leaseUntil) {
      return inTx(async (client) => {
        const { rows } = await client.query<{ records_total: number; cancel_requested: boolean }>(
          `UPDATE ${J} SET records_total = records_total + 1, progress = COALESCE($1, progress),
             lease_until = $2,
             updated_at = $3
           WHERE eval_id = $4 AND status = 'running' AND runner = $5
           RETURNING records_total, cancel_requested`,
          [progress === null ? null : json(progress), leaseUntil, now(), evalId, runner],
        );
        const row = rows[0];
        if (!row) return undefined;
        await client.query(
          `INSERT INTO ${R} (eval_id, idx, seed_key, record) VALUES ($1, $2, $3, $4)`,
          [evalId, row.records_total - 1, seedKey, JSON.stringify(record)],
        );
        return { cancel_requested: row.cancel_requested };
      });
    },
    async records(evalId, offset, limit) {
      if (limit <= 0) return [];
      const { rows } = await pool.query<{ record: string }>(
        `SELECT record FROM ${R} WHERE eval_id = $1 ORDER BY idx LIMIT $2 OFFSET $3`,
        [evalId, limit, offset],
      );
      return rows.map((r) => JSON.parse(r.record) as unknown);
    },
    async recordsBySeed(evalId) {
      const { rows } = await pool.query<{ seed_key: string; record: string }>(
        `SELECT seed_key, record FROM ${R} WHERE eval_id = $1 ORDER BY idx`,
        [evalId],
      );
      return rows.map((r) => [r.seed_key, JSON.parse(r.record) as unknown]);
    },
    async finish(evalId, runner, status: Exclude<EvalJobStatus, "running">, outcome) {
      const { rowCount } = await pool.query(
        `UPDATE ${J} SET status = $1, summary = COALESCE($2, summary), error = COALESCE($3, error),
           runner = NULL, updated_at = $4
         WHERE eval_id = $5 AND status = 'running' AND ($6::text IS NULL OR runner = $6)`,
        [status, json(outcome.summary), json(outcome.error), now(), evalId, runner],
      );
      return (rowCount ?? 0) > 0;
    },
    async requestCancel(evalId) {
      const { rowCount } = await pool.query(
        `UPDATE ${J} SET cancel_requested = TRUE WHERE eval_id = $1 AND status = 'running'`,
        [evalId],
      );
      return (rowCount ?? 0) > 0;
    },
    async renew(runner, leaseUntil) {
      const { rows } = await pool.query<{ eval_id: string; cancel_requested: boolean }>(
        `UPDATE ${J} SET lease_until = $1 WHERE runner = $2 AND status = 'running'
         RETURNING eval_id, cancel_requested`,
        [leaseUntil, runner],
      );
      return rows.filter((r) => r.cancel_requested).map((r) => r.eval_id);
    },
    async claim(evalId, from, runner, leaseUntil) {
      const { rows } = await pool.query<StoredEvalJob>(
        `UPDATE ${J} SET runner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
         WHERE eval_id = $4 AND status = 'running' AND runner IS NOT DISTINCT FROM $5
         RETURNING *`,
        [runner, leaseUntil, now(), evalId, from],
      );
      return rows[0] ? evalJobFromStored(rows[0]) : undefined;
    },
    async release(runner) {
      await pool.query(
        `UPDATE ${J} SET runner = NULL, lease_until = 0 WHERE runner = $1 AND status = 'running'`,
        [runner],
      );
    },
    async delete(evalId) {
      await inTx(async (client) => {
        await client.query(`DELETE FROM ${R} WHERE eval_id = $1`, [evalId]);
        await client.query(`DELETE FROM ${J} WHERE eval_id = $1`, [evalId]);
      });
    },
    async prune(keep) {
      const { rows } = await pool.query<{ eval_id: string; records_total: number }>(
        `SELECT eval_id, records_total FROM ${J} WHERE status <> 'running' ORDER BY seq DESC`,
      );
      const drop = jobsPastKeep(rows, keep);
      if (!drop.length) return 0;
      await inTx(async (client) => {
        await client.query(`DELETE FROM ${R} WHERE eval_id = ANY($1)`, [drop]);
        await client.query(`DELETE FROM ${J} WHERE eval_id = ANY($1)`, [drop]);
      });
      return drop.length;
    },
  };
}
