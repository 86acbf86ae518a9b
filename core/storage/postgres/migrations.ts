// Versioned migrations of the Postgres storage schema. Each step is numbered, applied once, in
// order, and recorded in refinery_schema_migrations with a checksum of its SQL. They run at open
// inside one transaction that holds a Postgres advisory lock (per schema), so several processes
// starting at once apply each step exactly once and the others wait, then see it done.
//
// Rules for adding a step: append it with the next number; never edit or remove a shipped one
// (open refuses a database whose recorded checksum differs); only additive DDL (new tables,
// columns with defaults, indexes), so a process still running the previous version keeps working
// during a rolling upgrade. Anything destructive needs an explicit command, never a migration.
import { createHash } from "node:crypto";
import type pg from "pg";
import { RefineryError } from "../../errors.ts";
import { inTransaction } from "./pool.ts";

export interface Migration {
  version: number;
  name: string;
  /** Runs with search_path set to the target schema only, so names stay unqualified. */
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "assistants, threads and runs",
    sql: `
CREATE TABLE refinery_assistants (
  assistant_id TEXT PRIMARY KEY,
  graph_id TEXT NOT NULL,
  config JSONB NOT NULL,
  context JSONB NOT NULL,
  metadata JSONB NOT NULL,
  name TEXT NOT NULL,
  description TEXT,
  version INTEGER NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE refinery_assistant_versions (
  assistant_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  graph_id TEXT NOT NULL,
  config JSONB NOT NULL,
  context JSONB NOT NULL,
  metadata JSONB NOT NULL,
  name TEXT NOT NULL,
  description TEXT,
  created_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (assistant_id, version)
);
CREATE TABLE refinery_threads (
  thread_id TEXT PRIMARY KEY,
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL,
  metadata JSONB NOT NULL,
  status TEXT NOT NULL,
  "values" JSONB,
  interrupts JSONB NOT NULL,
  config JSONB NOT NULL,
  error JSONB,
  -- The TTL (ms) and when the thread expires (epoch ms): its last update plus the TTL.
  ttl_ms BIGINT,
  expires_at BIGINT
);
CREATE INDEX refinery_threads_status ON refinery_threads (status, updated_at);
CREATE INDEX refinery_threads_expires ON refinery_threads (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE refinery_runs (
  run_id TEXT PRIMARY KEY,
  thread_id TEXT NOT NULL,
  assistant_id TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL,
  -- Earliest start; NULL: as soon as possible (claimNext compares with the database's clock).
  not_before TIMESTAMPTZ,
  status TEXT NOT NULL,
  metadata JSONB NOT NULL,
  multitask_strategy TEXT NOT NULL,
  kwargs JSONB NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  error JSONB,
  -- Enqueue order. Taken while the run's thread row is locked, so it is FIFO per thread.
  seq BIGINT GENERATED ALWAYS AS IDENTITY,
  partition TEXT NOT NULL DEFAULT ''
);
CREATE INDEX refinery_runs_thread ON refinery_runs (thread_id, status, seq);
CREATE INDEX refinery_runs_seq ON refinery_runs (seq);
-- The queue: claimNext walks pending runs in seq order.
CREATE INDEX refinery_runs_pending ON refinery_runs (seq) WHERE status = 'pending';
CREATE INDEX refinery_runs_partition ON refinery_runs (partition, status);
-- At most one running run per thread, enforced by the database too (claimNext never tries).
CREATE UNIQUE INDEX refinery_runs_one_running ON refinery_runs (thread_id) WHERE status = 'running';
`,
  },
  {
    version: 2,
    name: "crons and their firings",
    sql: `
CREATE TABLE refinery_crons (
  cron_id TEXT PRIMARY KEY,
  assistant_id TEXT NOT NULL,
  thread_id TEXT,
  on_run_completed TEXT,
  -- ISO UTC text as the caller gives it (as SQLite keeps it), compared in byte order.
  end_time TEXT COLLATE "C",
  schedule TEXT NOT NULL,
  timezone TEXT,
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL,
  payload JSONB NOT NULL,
  user_id TEXT,
  next_run_date TEXT COLLATE "C",
  metadata JSONB NOT NULL,
  enabled BOOLEAN NOT NULL,
  owner JSONB NOT NULL,
  partition TEXT NOT NULL DEFAULT ''
);
CREATE INDEX refinery_crons_due ON refinery_crons (next_run_date) WHERE enabled;
CREATE INDEX refinery_crons_partition ON refinery_crons (partition);
CREATE INDEX refinery_crons_thread ON refinery_crons (thread_id);
-- One row per firing: the primary key is the claim of (cron, fire time); the newest are kept.
CREATE TABLE refinery_cron_fires (
  cron_id TEXT NOT NULL,
  fire_at TEXT COLLATE "C" NOT NULL,
  claimed_at TIMESTAMPTZ NOT NULL,
  run_id TEXT,
  error TEXT,
  PRIMARY KEY (cron_id, fire_at)
);
`,
  },
  {
    version: 3,
    name: "run leases and duty leases",
    sql: `
-- A running run's lease: its executor, and until when it holds the run without a heartbeat.
-- NULL: leased to nobody (a run the CLI executes).
ALTER TABLE refinery_runs ADD COLUMN lease_owner TEXT;
ALTER TABLE refinery_runs ADD COLUMN lease_expires_at TIMESTAMPTZ;
CREATE INDEX refinery_runs_running ON refinery_runs (seq) WHERE status = 'running';
-- Duties one process does at a time (approval deadlines, crons, sweeps): who, until when.
CREATE TABLE refinery_duty_leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL
);
`,
  },
  {
    version: 4,
    name: "feedback inbox, run outcomes and ratings, graph specs, approval notices, rollback writes",
    sql: `
CREATE TABLE refinery_feedback (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  thread_id TEXT NOT NULL,
  text TEXT NOT NULL,
  at TEXT NOT NULL,
  consumed_at TEXT
);
CREATE INDEX refinery_feedback_thread ON refinery_feedback (thread_id) WHERE consumed_at IS NULL;
CREATE TABLE refinery_run_outcomes (
  run_id TEXT PRIMARY KEY,
  thread_id TEXT NOT NULL,
  assistant_id TEXT NOT NULL,
  graph_id TEXT NOT NULL,
  -- ISO UTC text as the outcome carries it, compared in byte order (as in SQLite).
  finished_at TEXT COLLATE "C" NOT NULL,
  verified BOOLEAN NOT NULL,
  human_approved BOOLEAN NOT NULL,
  body JSONB NOT NULL
);
CREATE INDEX refinery_run_outcomes_time ON refinery_run_outcomes (finished_at, run_id);
CREATE TABLE refinery_run_ratings (
  feedback_id TEXT PRIMARY KEY,
  run_id TEXT NOT NULL,
  thread_id TEXT NOT NULL,
  key TEXT NOT NULL,
  score DOUBLE PRECISION,
  value JSONB,
  comment TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX refinery_run_ratings_run ON refinery_run_ratings (run_id, created_at);
-- Deleting a run (or its thread) deletes what was kept with it.
CREATE FUNCTION refinery_run_learning_gone() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  DELETE FROM refinery_run_outcomes WHERE run_id = OLD.run_id;
  DELETE FROM refinery_run_ratings WHERE run_id = OLD.run_id;
  RETURN OLD;
END $$;
CREATE TRIGGER refinery_run_learning_gone AFTER DELETE ON refinery_runs
  FOR EACH ROW EXECUTE FUNCTION refinery_run_learning_gone();
CREATE TABLE refinery_graph_specs (
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  spec JSONB NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (id, version)
);
CREATE TABLE refinery_approval_notices (
  thread_id TEXT NOT NULL,
  interrupt_id TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at BIGINT NOT NULL DEFAULT 0,
  delivered_at TEXT,
  PRIMARY KEY (thread_id, interrupt_id)
);
-- A run's pending writes of the checkpoint it started from, restored by a rollback.
CREATE TABLE refinery_rollback_writes (
  run_id TEXT NOT NULL,
  thread_id TEXT NOT NULL,
  checkpoint_ns TEXT NOT NULL,
  checkpoint_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  channel TEXT NOT NULL,
  type TEXT,
  blob BYTEA NOT NULL
);
CREATE INDEX refinery_rollback_writes_run ON refinery_rollback_writes (run_id);
`,
  },
  {
    version: 5,
    name: "run webhook outbox",
    sql: `
-- Run webhook calls not delivered yet (queued with the run's end): due at next_at.
CREATE TABLE refinery_webhook_outbox (
  run_id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  body TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  last_error TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX refinery_webhook_outbox_due ON refinery_webhook_outbox (next_at);
`,
  },
  {
    version: 6,
    name: "model attempt journal",
    sql: `
-- Model attempts of checkpointed steps not yet in a checkpoint (core/models/attempt-journal.ts):
-- a row as the call starts, its tokens when it ends; dropped once the step is checkpointed.
CREATE TABLE refinery_model_attempts (
  id BIGSERIAL PRIMARY KEY,
  thread_id TEXT NOT NULL,
  parent_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  exec TEXT NOT NULL,
  node TEXT NOT NULL,
  calls INTEGER NOT NULL DEFAULT 1,
  prompt_tokens BIGINT NOT NULL DEFAULT 0,
  completion_tokens BIGINT NOT NULL DEFAULT 0,
  total_tokens BIGINT NOT NULL DEFAULT 0,
  estimated_tokens BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX refinery_model_attempts_thread ON refinery_model_attempts (thread_id);
`,
  },
  {
    version: 7,
    name: "evaluation jobs and their records",
    sql: `
-- Evaluation jobs (POST /eval): written only by their runner (host:pid:instance) while running;
-- lease_until (epoch ms) lapses when the runner stops renewing it, and another process resumes it.
CREATE TABLE refinery_eval_jobs (
  seq BIGSERIAL,
  eval_id TEXT PRIMARY KEY,
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
  lease_until BIGINT NOT NULL DEFAULT 0,
  cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX refinery_eval_jobs_partition ON refinery_eval_jobs (partition, seq);
CREATE INDEX refinery_eval_jobs_status ON refinery_eval_jobs (status);
-- JSON columns are TEXT: user text may hold \\u0000, which JSONB refuses.
-- One record per finished item run, in the order they ended (idx), with its replicate's seed key.
CREATE TABLE refinery_eval_records (
  eval_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  seed_key TEXT NOT NULL,
  record TEXT NOT NULL,
  PRIMARY KEY (eval_id, idx)
);
`,
  },
  {
    version: 8,
    name: "checkpoint archive",
    sql: `
-- A finished run's checkpoints before the thread's latest, with their pending writes and channel
-- blobs, deflated together in one row (core/storage/postgres/archive.ts). Ids are time-ordered
-- uuid6: a checkpoint is found by the segment whose first and last ids enclose it.
CREATE TABLE refinery_checkpoint_archive (
  id BIGSERIAL PRIMARY KEY,
  thread_id TEXT NOT NULL,
  checkpoint_ns TEXT NOT NULL,
  first_id TEXT NOT NULL,
  last_id TEXT NOT NULL,
  data BYTEA NOT NULL
);
-- Already deflated: Postgres need not try to compress it again.
ALTER TABLE refinery_checkpoint_archive ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX refinery_checkpoint_archive_thread
  ON refinery_checkpoint_archive (thread_id, checkpoint_ns, last_id);
`,
  },
  {
    version: 9,
    name: "packed run outcomes",
    sql: `
-- A run outcome's body deflated with the state dictionary (core/packing.ts packJson), as the
-- SQLite backend stores it: ~2.4 KB a run as JSONB, ~0.8 KB packed (bench/RESULTS.md). Rows
-- written before keep their JSONB body; a short body that packing would not shrink stays JSONB.
-- During a rolling upgrade a process of the previous version reads a packed row's body as NULL
-- (an outcome it cannot show), nothing more.
ALTER TABLE refinery_run_outcomes ADD COLUMN packed BYTEA;
ALTER TABLE refinery_run_outcomes ALTER COLUMN body DROP NOT NULL;
ALTER TABLE refinery_run_outcomes ALTER COLUMN packed SET STORAGE EXTERNAL;
`,
  },
  {
    version: 10,
    name: "packed thread values and run kwargs",
    sql: `
-- A thread's values and a run's kwargs deflated with the state dictionary (core/packing.ts
-- packJson), as the SQLite backend stores thread values: the default refine run's final state is
-- ~1.1 KB as JSONB (compressed by Postgres) and ~0.45 KB packed, its kwargs 0.6 KB and 0.26 KB.
-- A packed row has NULL "values" (JSON null kwargs); short documents stay JSONB. Thread search
-- matches packed values in the process (core/storage/postgres/storage.ts). A run's
-- checkpoint_before moves to its own column (its JSON text), which a packed kwargs cannot take by
-- jsonb_set.
-- Written only with REFINERY_PACK_CHECKPOINTS on: a process of an earlier version reads packed
-- values as null and a packed kwargs as none, so a rolling upgrade runs with it off (README).
ALTER TABLE refinery_threads ADD COLUMN values_packed BYTEA;
ALTER TABLE refinery_threads ALTER COLUMN values_packed SET STORAGE EXTERNAL;
ALTER TABLE refinery_runs ADD COLUMN kwargs_packed BYTEA;
ALTER TABLE refinery_runs ALTER COLUMN kwargs_packed SET STORAGE EXTERNAL;
ALTER TABLE refinery_runs ADD COLUMN checkpoint_before TEXT;
`,
  },
  {
    version: 11,
    name: "attempts lost to the database",
    sql: `
-- Of a run's attempts, those the database's failure cut short (a step or the run's bookkeeping
-- met a retryable storage error): not counted against its attempt budget (server/executor.ts).
-- A process of an earlier version ignores the column and counts every attempt, as before.
ALTER TABLE refinery_runs ADD COLUMN lost_to_storage INTEGER NOT NULL DEFAULT 0;
`,
  },
];

/** Must stay a valid unquoted identifier: it is interpolated into SQL (quoted) and search_path. */
export const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

// Advisory lock class for migrations; the second key is the schema's hash, so test files in
// their own schemas do not wait for each other.
const MIGRATION_LOCK = 0x52464d47; // "RFMG"

export const checksumOf = (m: Migration): string =>
  createHash("sha256").update(m.sql).digest("hex");

export function checkSchemaName(schema: string): void {
  if (!SCHEMA_NAME.test(schema)) {
    throw new RefineryError("invalid_config", `invalid Postgres schema name "${schema}"`, {
      field: "schema",
      fix: "use letters, digits and underscores (at most 63), starting with a letter or underscore",
    });
  }
}

export interface MigrationResult {
  /** Versions this call applied (empty when another process, or an earlier start, did). */
  applied: number[];
  /** Every version recorded in the schema afterwards, ascending. */
  current: number[];
}

/**
 * Brings `schema` up to date: creates it when missing, then applies the migrations it lacks, all
 * in one transaction under an advisory lock. A schema migrated by a newer version (steps this code
 * does not know) is left as it is: steps are additive.
 */
export async function migrate(
  pool: pg.Pool,
  schema: string,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<MigrationResult> {
  checkSchemaName(schema);
  return inTransaction(pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [MIGRATION_LOCK, schema]);
    // Checked first: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema
    // exists, which a user limited to its own schema does not have.
    const { rowCount } = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [
      schema,
    ]);
    if (!rowCount) await client.query(`CREATE SCHEMA "${schema}"`);
    await client.query(`SET LOCAL search_path TO "${schema}"`);
    await client.query(`CREATE TABLE IF NOT EXISTS refinery_schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      checksum TEXT NOT NULL,
      applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ version: number; name: string; checksum: string }>(
      "SELECT version, name, checksum FROM refinery_schema_migrations ORDER BY version",
    );
    const recorded = new Map(rows.map((r) => [r.version, r]));
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      const sum = checksumOf(m);
      const done = recorded.get(m.version);
      if (done) {
        if (done.checksum !== sum) {
          throw new RefineryError(
            "storage_error",
            `migration ${m.version} ("${done.name}") recorded in Postgres schema "${schema}" differs from this version's ("${m.name}")`,
            {
              fix: "a shipped migration was edited: restore its SQL and put the change in a new numbered migration",
            },
          );
        }
        continue;
      }
      await client.query(m.sql);
      await client.query(
        "INSERT INTO refinery_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        [m.version, m.name, sum],
      );
      applied.push(m.version);
    }
    const current = [...new Set([...recorded.keys(), ...applied])].sort((a, b) => a - b);
    return { applied, current };
  });
}
