// Evaluation jobs of the server (POST /eval, server/eval-jobs.ts) in the database, so every process
// sharing it lists, reads, pages and cancels any job, and a job whose process went away is
// resumed from its records. A job row is written only by its runner (`host:pid:instance` of the
// process executing it): every write of a running job names the runner, and a write whose runner
// no longer holds the job changes nothing. Specs, records, progress and summaries are JSON this
// layer does not read (their types live in graphs/eval). One implementation per backend
// (core/storage/sqlite, core/storage/postgres).

export type EvalJobStatus = "running" | "succeeded" | "failed" | "interrupted" | "cancelled";

export interface EvalJobRow {
  eval_id: string;
  /** The caller's data partition ("" without auth). */
  partition: string;
  identity: string | null;
  status: EvalJobStatus;
  /** The job's spec (items, strategies, …); null in list rows. */
  spec: unknown;
  size: number;
  runs_in: string;
  worker_thread_id: number | null;
  attempts: number;
  progress: unknown;
  records_total: number;
  summary: unknown;
  error: unknown;
  /** Who executes it (`host:pid:instance`); null once it ended or was released at shutdown. */
  runner: string | null;
  /** Epoch ms: past it, a running job whose runner did not renew is resumed elsewhere. */
  lease_until: number;
  /** Someone asked to cancel it (any process); its runner stops it. */
  cancel_requested: boolean;
  created_at: string;
  updated_at: string;
}

/**
 * A job row as both backends store it: JSON columns as text (Postgres JSONB refuses \u0000),
 * `lease_until` as Postgres' BIGINT string or SQLite's number, `cancel_requested` as a boolean or
 * SQLite's 0/1.
 */
export interface StoredEvalJob extends Omit<
  EvalJobRow,
  "spec" | "progress" | "summary" | "error" | "lease_until" | "cancel_requested"
> {
  spec: string | null;
  progress: string;
  summary: string | null;
  error: string | null;
  lease_until: number | string;
  cancel_requested: boolean | number;
}

const parseJson = (text: string | null): unknown => (text === null ? null : JSON.parse(text));

/** A stored row as the store's callers read it. */
export const evalJobFromStored = (r: StoredEvalJob): EvalJobRow => ({
  eval_id: r.eval_id,
  partition: r.partition,
  identity: r.identity,
  status: r.status,
  spec: parseJson(r.spec),
  size: r.size,
  runs_in: r.runs_in,
  worker_thread_id: r.worker_thread_id,
  attempts: r.attempts,
  progress: parseJson(r.progress),
  records_total: r.records_total,
  summary: parseJson(r.summary),
  error: parseJson(r.error),
  runner: r.runner,
  lease_until: Number(r.lease_until),
  cancel_requested: r.cancel_requested === true || r.cancel_requested === 1,
  created_at: r.created_at,
  updated_at: r.updated_at,
});

export type NewEvalJob = Pick<
  EvalJobRow,
  "eval_id" | "partition" | "identity" | "spec" | "size" | "runs_in" | "progress" | "runner"
> & { lease_until: number };

/** What a runner writes while its job runs. */
export interface EvalJobPatch {
  worker_thread_id?: number;
  progress?: unknown;
}

/** What a runner learns back from a write: whether it still holds the job, and a cancel asked. */
export interface EvalJobHeld {
  cancel_requested: boolean;
}

export interface EvalJobStore {
  create(job: NewEvalJob): Promise<void>;
  /** The job with its spec; undefined when missing. */
  get(evalId: string): Promise<EvalJobRow | undefined>;
  /** The partition's jobs, newest first, without their specs. */
  list(partition: string, limit: number, offset: number): Promise<EvalJobRow[]>;
  /** The partition's running jobs (without specs); every running job with `partition` undefined. */
  running(partition?: string): Promise<EvalJobRow[]>;
  /** Updates a running job `runner` holds (renewing its lease); undefined when it does not. */
  update(
    evalId: string,
    runner: string,
    patch: EvalJobPatch,
    leaseUntil: number,
  ): Promise<EvalJobHeld | undefined>;
  /** Appends a finished item's record (seed key: its replicate) and the job's progress. */
  append(
    evalId: string,
    runner: string,
    seedKey: string,
    record: unknown,
    progress: unknown,
    leaseUntil: number,
  ): Promise<EvalJobHeld | undefined>;
  /** A page of the job's records, in the order they were appended. */
  records(evalId: string, offset: number, limit: number): Promise<unknown[]>;
  /** Every record with its replicate's seed key, in order (to resume the job). */
  recordsBySeed(evalId: string): Promise<[string, unknown][]>;
  /**
   * Ends a running job (held by `runner`, or by anyone with null); false when it had ended or
   * another runner holds it.
   */
  finish(
    evalId: string,
    runner: string | null,
    status: Exclude<EvalJobStatus, "running">,
    outcome: { summary?: unknown; error?: unknown },
  ): Promise<boolean>;
  /** Marks a running job's cancel asked for; false when it is not running. */
  requestCancel(evalId: string): Promise<boolean>;
  /** Renews the leases of `runner`'s running jobs; returns the ids whose cancel was asked. */
  renew(runner: string, leaseUntil: number): Promise<string[]>;
  /**
   * Takes a running job over from `from` (its runner as last read; null: released) and counts a
   * new attempt; undefined when someone else changed it first.
   */
  claim(
    evalId: string,
    from: string | null,
    runner: string,
    leaseUntil: number,
  ): Promise<EvalJobRow | undefined>;
  /** Graceful stop: `runner`'s running jobs are free for any process to resume at once. */
  release(runner: string): Promise<void>;
  /** Deletes a job and its records (a job refused before it ran). */
  delete(evalId: string): Promise<void>;
  /** Deletes the oldest finished jobs past `jobs` kept, or past `records` kept together. */
  prune(keep: { jobs: number; records: number }): Promise<number>;
}

/** The finished jobs to delete: newest first, `jobs` of them at most, `records` together. */
export function jobsPastKeep(
  finished: readonly { eval_id: string; records_total: number }[],
  keep: { jobs: number; records: number },
): string[] {
  const drop: string[] = [];
  let records = 0;
  finished.forEach((job, i) => {
    records += job.records_total;
    if (i >= keep.jobs || records > keep.records) drop.push(job.eval_id);
  });
  return drop;
}
