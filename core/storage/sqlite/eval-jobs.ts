// Evaluation jobs and their records in the SQLite file (or an in-memory database for an app built
// without one). Every write is one statement or one transaction: processes sharing the file see
// each other's jobs.
import Database from "better-sqlite3";
import {
  evalJobFromStored,
  jobsPastKeep,
  type StoredEvalJob,
  type EvalJobStatus,
  type EvalJobStore,
} from "../eval-jobs.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS refinery_eval_jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  eval_id TEXT NOT NULL UNIQUE,
  partition TEXT NOT NULL,
  identity TEXT,
  status TEXT NOT NULL,
  spec TEXT,
  size INTEGER NOT NULL,
  runs_in TEXT NOT NULL,
  worker_thread_id INTEGER,
  attempts INTEGER NOT NULL DEFAULT 1,
  progress TEXT NOT NULL,
  records_total INTEGER NOT NULL DEFAULT 0,
  summary TEXT,
  error TEXT,
  runner TEXT,
  lease_until INTEGER NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS refinery_eval_jobs_partition ON refinery_eval_jobs (partition, seq);
CREATE INDEX IF NOT EXISTS refinery_eval_jobs_status ON refinery_eval_jobs (status);
CREATE TABLE IF NOT EXISTS refinery_eval_records (
  eval_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  seed_key TEXT NOT NULL,
  record TEXT NOT NULL,
  PRIMARY KEY (eval_id, idx)
);
`;

/** Every column but the spec (lists need no spec). */
const COLUMNS = `eval_id, partition, identity, status, NULL AS spec, size, runs_in, worker_thread_id,
  attempts, progress, records_total, summary, error, runner, lease_until, cancel_requested,
  created_at, updated_at`;

export function createSqliteEvalJobStore(db: Database.Database): EvalJobStore {
  db.exec(SCHEMA);
  const J = "refinery_eval_jobs";
  const now = () => new Date().toISOString();
  const held = db.prepare(
    `SELECT cancel_requested, records_total FROM ${J} WHERE eval_id = ? AND status = 'running' AND runner = ?`,
  );
  const update = db.prepare(
    `UPDATE ${J} SET worker_thread_id = COALESCE(?, worker_thread_id), progress = COALESCE(?, progress),
       lease_until = ?, updated_at = ? WHERE eval_id = ? AND status = 'running' AND runner = ?`,
  );
  const insertRecord = db.prepare(
    "INSERT INTO refinery_eval_records (eval_id, idx, seed_key, record) VALUES (?, ?, ?, ?)",
  );
  const appendTx = db.transaction(
    (
      evalId: string,
      runner: string,
      seedKey: string,
      record: string,
      progress: string | null,
      leaseUntil: number,
    ) => {
      const row = held.get(evalId, runner) as
        { cancel_requested: number; records_total: number } | undefined;
      if (!row) return undefined;
      insertRecord.run(evalId, row.records_total, seedKey, record);
      db.prepare(
        `UPDATE ${J} SET records_total = records_total + 1, progress = COALESCE(?, progress), lease_until = ?, updated_at = ? WHERE eval_id = ?`,
      ).run(progress, leaseUntil, now(), evalId);
      return { cancel_requested: row.cancel_requested === 1 };
    },
  );
  const deleteJobs = db.transaction((ids: string[]) => {
    for (const id of ids) {
      db.prepare("DELETE FROM refinery_eval_records WHERE eval_id = ?").run(id);
      db.prepare(`DELETE FROM ${J} WHERE eval_id = ?`).run(id);
    }
  });
  return {
    async create(job) {
      const at = now();
      db.prepare(
        `INSERT INTO ${J} (eval_id, partition, identity, status, spec, size, runs_in, attempts,
           progress, runner, lease_until, created_at, updated_at)
         VALUES (?, ?, ?, 'running', ?, ?, ?, 1, ?, ?, ?, ?, ?)`,
      ).run(
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
        at,
      );
    },
    async get(evalId) {
      const row = db.prepare(`SELECT * FROM ${J} WHERE eval_id = ?`).get(evalId) as
        StoredEvalJob | undefined;
      return row ? evalJobFromStored(row) : undefined;
    },
    async list(partition, limit, offset) {
      const rows = db
        .prepare(
          `SELECT ${COLUMNS} FROM ${J} WHERE partition = ? ORDER BY seq DESC LIMIT ? OFFSET ?`,
        )
        .all(partition, limit, offset) as StoredEvalJob[];
      return rows.map(evalJobFromStored);
    },
    async running(partition) {
      const rows = (
        partition === undefined
          ? db.prepare(`SELECT ${COLUMNS} FROM ${J} WHERE status = 'running' ORDER BY seq`).all()
          : db
              .prepare(
                `SELECT ${COLUMNS} FROM ${J} WHERE status = 'running' AND partition = ? ORDER BY seq`,
              )
              .all(partition)
      ) as StoredEvalJob[];
      return rows.map(evalJobFromStored);
    },
    async update(evalId, runner, patch, leaseUntil) {
      const row = held.get(evalId, runner) as { cancel_requested: number } | undefined;
      if (!row) return undefined;
      update.run(
        patch.worker_thread_id ?? null,
        patch.progress === undefined ? null : JSON.stringify(patch.progress),
        leaseUntil,
        now(),
        evalId,
        runner,
      );
      return { cancel_requested: row.cancel_requested === 1 };
    },
    async append(evalId, runner, seedKey, record, progress, leaseUntil) {
      return appendTx.immediate(
        evalId,
        runner,
        seedKey,
        JSON.stringify(record),
        progress === null || progress === undefined ? null : JSON.stringify(progress),
        leaseUntil,
      );
    },
    async records(evalId, offset, limit) {
      if (limit <= 0) return [];
      const rows = db
        .prepare(
          "SELECT record FROM refinery_eval_records WHERE eval_id = ? ORDER BY idx LIMIT ? OFFSET ?",
        )
        .all(evalId, limit, offset) as { record: string }[];
      return rows.map((r) => JSON.parse(r.record) as unknown);
    },
    async recordsBySeed(evalId) {
      const rows = db
        .prepare(
          "SELECT seed_key, record FROM refinery_eval_records WHERE eval_id = ? ORDER BY idx",
        )
        .all(evalId) as { seed_key: string; record: string }[];
      return rows.map((r) => [r.seed_key, JSON.parse(r.record) as unknown]);
    },
    async finish(evalId, runner, status: Exclude<EvalJobStatus, "running">, outcome) {
      const { changes } = db
        .prepare(
          `UPDATE ${J} SET status = ?, summary = COALESCE(?, summary), error = COALESCE(?, error),
             runner = NULL, updated_at = ?
           WHERE eval_id = ? AND status = 'running' AND (? IS NULL OR runner = ?)`,
        )
        .run(
          status,
          outcome.summary === undefined ? null : JSON.stringify(outcome.summary),
          outcome.error === undefined ? null : JSON.stringify(outcome.error),
          now(),
          evalId,
          runner,
          runner,
        );
      return changes > 0;
    },
    async requestCancel(evalId) {
      const { changes } = db
        .prepare(`UPDATE ${J} SET cancel_requested = 1 WHERE eval_id = ? AND status = 'running'`)
        .run(evalId);
      return changes > 0;
    },
    async renew(runner, leaseUntil) {
      db.prepare(`UPDATE ${J} SET lease_until = ? WHERE runner = ? AND status = 'running'`).run(
        leaseUntil,
        runner,
      );
      const rows = db
        .prepare(
          `SELECT eval_id FROM ${J} WHERE runner = ? AND status = 'running' AND cancel_requested = 1`,
        )
        .all(runner) as { eval_id: string }[];
      return rows.map((r) => r.eval_id);
    },
    async claim(evalId, from, runner, leaseUntil) {
      const { changes } = db
        .prepare(
          `UPDATE ${J} SET runner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?
           WHERE eval_id = ? AND status = 'running' AND runner IS ?`,
        )
        .run(runner, leaseUntil, now(), evalId, from);
      if (!changes) return undefined;
      const row = db.prepare(`SELECT * FROM ${J} WHERE eval_id = ?`).get(evalId) as StoredEvalJob;
      return evalJobFromStored(row);
    },
    async release(runner) {
      db.prepare(
        `UPDATE ${J} SET runner = NULL, lease_until = 0 WHERE runner = ? AND status = 'running'`,
      ).run(runner);
    },
    async delete(evalId) {
      deleteJobs([evalId]);
    },
    async prune(keep) {
      const finished = db
        .prepare(
          `SELECT eval_id, records_total FROM ${J} WHERE status != 'running' ORDER BY seq DESC`,
        )
        .all() as { eval_id: string; records_total: number }[];
      const drop = jobsPastKeep(finished, keep);
      if (drop.length) deleteJobs(drop);
      return drop.length;
    },
  };
}

/** A store of its own in memory: an app built without a database (tests). */
export function openMemoryEvalJobStore(): EvalJobStore {
  return createSqliteEvalJobStore(new Database(":memory:"));
}
