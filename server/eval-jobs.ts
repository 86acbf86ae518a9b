// The evaluation jobs of this server process: who owns each one (its partition and identity),
// the limits a new job must pass (size, running jobs per partition), its records and progress as
// its executor (eval-protocol.ts) reports them, cancel, and which finished jobs are kept. Jobs
// live in memory: for resumable evaluations use `refinery eval`, whose records file survives a
// restart.
import { randomUUID } from "node:crypto";
import { RefineryError } from "../core/errors.ts";
import {
  checkEvalJobSize,
  evalJobModels,
  evalJobSize,
  seedKey,
  type EvalJobProgress,
  type EvalJobSpec,
  type EvalSummary,
  type ItemRecord,
} from "../graphs/eval/index.ts";
import { fromWireError, type EvalTarget, type WireError } from "./eval-protocol.ts";
import type { Logger } from "./log.ts";

export type EvalJobStatus = "running" | "succeeded" | "failed" | "interrupted" | "cancelled";

export interface EvalOwner {
  /** The caller's data partition ("" without auth): only callers of the same one see the job. */
  partition: string;
  /** Who started it; null without auth. */
  identity: string | null;
}

/** A job as GET /eval lists it (GET /eval/{id} adds a page of `records`). */
export interface EvalJobInfo {
  eval_id: string;
  status: EvalJobStatus;
  created_at: string;
  updated_at: string;
  owner: EvalOwner;
  /** Graph runs it asked for: items (after `limit`) × strategies × replicates. */
  size: number;
  /** Where it runs: an eval thread, or the server thread. */
  runs_in: EvalTarget["kind"];
  /** worker_threads id of the thread running it (0: the server's main thread); null until started. */
  worker_thread_id: number | null;
  /** Times it was started: more than 1 when its eval thread went away and it resumed. */
  attempts: number;
  progress: EvalJobProgress;
  /** Records kept so far (one per item run that ended). */
  records_total: number;
  summary?: EvalSummary;
  error?: { error: string; message: string; field?: string };
}

export interface EvalJobView extends EvalJobInfo {
  /** The page of records asked for (records_offset, records_limit), in the order they ended. */
  records: ItemRecord[];
}

/** Which records a view holds: the first 1,000 unless asked otherwise (5,000 at most a page). */
export interface RecordsPage {
  offset: number;
  limit: number;
}

export const RECORDS_PAGE = { default: 1_000, max: 5_000 } as const;

export interface EvalJobsOptions {
  target: EvalTarget;
  log: Logger;
  /** Graph runs a job may ask for at most (REFINERY_EVAL_MAX_RUNS). */
  maxRuns: number;
  /** Running jobs per partition at most (REFINERY_EVAL_MAX_JOBS). */
  maxJobs: number;
  /** How long a cancelled job may take to stop before its thread is terminated. @default 1000 */
  cancelGraceMs?: number;
  /**
   * How long POST /eval waits for the job's items to be checked, so a bad item is a 422; past it
   * (a busy eval thread) the job is answered 202 and a bad item ends it `failed`. @default 5000
   */
  acceptWaitMs?: number;
  /** Finished jobs kept (the oldest go first), and the records they may hold together. */
  keep?: { jobs: number; records: number };
}

/** Defaults of the job limits (REFINERY_EVAL_MAX_RUNS, REFINERY_EVAL_MAX_JOBS). */
export const EVAL_LIMITS = { maxRuns: 20_000, maxJobs: 2 } as const;

/** Times a job is started again after its eval thread went away, before it ends `interrupted`. */
const MAX_ATTEMPTS = 3;

interface Job {
  info: EvalJobInfo;
  records: ItemRecord[];
  /** The records per replicate (seedKey), to resume the job on another thread. */
  bySeed: Map<string, ItemRecord[]>;
  /** What it runs; dropped when it ends. */
  spec?: EvalJobSpec;
  /** The current start: events of an earlier one are ignored. */
  attempt: number;
  cancelling: boolean;
  /** Its items and options were checked in its thread. */
  accepted: boolean;
  /** The error it ended with, as its executor reported it. */
  failure?: WireError;
  /** A thread has taken the job (or it has ended). */
  taken: Signal;
  /** The job is accepted (its items checked) or has ended. */
  settled: Signal;
  ended: Signal;
}

interface Signal {
  promise: Promise<void>;
  fire(): void;
}

function signal(): Signal {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}

export class EvalJobs {
  private readonly jobs = new Map<string, Job>();
  private closed = false;

  constructor(private readonly options: EvalJobsOptions) {}

  /**
   * Checks and starts a job; resolves once its items were checked (a bad one throws, 422, and
   * nothing is kept) or after `acceptWaitMs`.
   */
  async create(owner: EvalOwner, spec: EvalJobSpec): Promise<EvalJobView> {
    const { maxRuns, maxJobs } = this.options;
    evalJobModels(spec); // replicates of a real model: refused before anything else
    checkEvalJobSize(spec, maxRuns, "REFINERY_EVAL_MAX_RUNS");
    const running = [...this.jobs.values()].filter(
      (j) => j.info.status === "running" && j.info.owner.partition === owner.partition,
    );
    if (running.length >= maxJobs) {
      throw new RefineryError(
        "rate_limited",
        `${running.length} evaluation job(s) of yours are running; this server runs at most ${maxJobs} at once per caller (REFINERY_EVAL_MAX_JOBS)`,
        {
          field: "eval_id",
          fix: "wait for one to finish (GET /eval lists them), cancel one with POST /eval/{id}/cancel, or retry after Retry-After seconds",
          retryAfterMs: retryAfterMs(running),
        },
      );
    }
    if (this.closed) {
      throw new RefineryError("conflict", "the server is shutting down", {
        fix: "start the evaluation again once the server is back",
        retryable: true,
      });
    }
    const now = new Date().toISOString();
    const job: Job = {
      info: {
        eval_id: randomUUID(),
        status: "running",
        created_at: now,
        updated_at: now,
        owner: { ...owner },
        size: evalJobSize(spec),
        runs_in: this.options.target.kind,
        worker_thread_id: null,
        attempts: 0,
        progress: { total: 0, done: 0, skipped: 0, elapsed_ms: 0 },
        records_total: 0,
      },
      records: [],
      bySeed: new Map(),
      spec,
      attempt: 0,
      cancelling: false,
      accepted: false,
      taken: signal(),
      settled: signal(),
      ended: signal(),
    };
    this.jobs.set(job.info.eval_id, job);
    this.options.log("info", "evaluation started", {
      eval_id: job.info.eval_id,
      partition: owner.partition,
      size: job.info.size,
      runs_in: job.info.runs_in,
    });
    this.start(job);
    // A new eval thread takes a second or two to open its engine: that does not count.
    await within(job.taken.promise, 60_000);
    await within(job.settled.promise, this.options.acceptWaitMs ?? 5_000);
    const failure = job.failure;
    if (
      job.info.status === "failed" &&
      !job.accepted &&
      (failure?.code === "invalid_input" || failure?.code === "invalid_config")
    ) {
      // A bad item or option: the client's error, answered now; the job never ran.
      this.jobs.delete(job.info.eval_id);
      throw fromWireError(failure);
    }
    return this.view(job);
  }

  /** The partition's jobs, newest first, without their records. */
  list(partition: string, page: { limit: number; offset: number }): EvalJobInfo[] {
    const mine = [...this.jobs.values()].filter((j) => j.info.owner.partition === partition);
    return mine
      .reverse()
      .slice(page.offset, page.offset + page.limit)
      .map((j) => ({ ...j.info }));
  }

  /** A job of the partition; another partition's job is not found, like a missing one. */
  get(partition: string, id: string, page?: RecordsPage): EvalJobView {
    return this.view(this.find(partition, id), page);
  }

  /** Stops a running job; resolves once it has ended (`cancelled`, its records so far kept). */
  async cancel(partition: string, id: string): Promise<EvalJobView> {
    const job = this.find(partition, id);
    if (job.info.status !== "running") {
      throw new RefineryError("conflict", `evaluation ${id} is already ${job.info.status}`, {
        field: "eval_id",
        fix: "only a running evaluation can be cancelled",
      });
    }
    if (!job.cancelling) {
      job.cancelling = true;
      this.options.target.cancel(id, this.options.cancelGraceMs ?? 1_000);
    }
    await job.ended.promise;
    return this.view(job);
  }

  /** Shutdown: running jobs end `interrupted` (records kept until the process exits). */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.jobs.values()) {
      if (job.info.status !== "running") continue;
      this.finish(job, "interrupted", {
        error: { code: "cancelled", message: "the server shut down while the evaluation ran" },
      });
    }
    await this.options.target.close();
  }

  private find(partition: string, id: string): Job {
    const job = this.jobs.get(id);
    if (!job || job.info.owner.partition !== partition) {
      throw new RefineryError("not_found", "Evaluation not found", {
        field: "eval_id",
        fix: `no evaluation with id ${id} (jobs are kept in memory until the server restarts; GET /eval lists yours)`,
      });
    }
    return job;
  }

  /**
   * The job with a page of its records: a whole job can hold 20,000 of them, several MB of JSON
   * that the server thread would serialize for every poll.
   */
  private view(
    job: Job,
    page: RecordsPage = { offset: 0, limit: RECORDS_PAGE.default },
  ): EvalJobView {
    return {
      ...job.info,
      records: job.records.slice(page.offset, page.offset + page.limit),
    };
  }

  /** Hands the job to its executor (again, after its thread went away). */
  private start(job: Job): void {
    const attempt = ++job.attempt;
    job.info.attempts = attempt;
    const live = () => job.attempt === attempt && job.info.status === "running";
    const touch = () => (job.info.updated_at = new Date().toISOString());
    const existing = new Map([...job.bySeed].map(([k, v]) => [k, [...v]]));
    this.options.target.start(job.info.eval_id, job.spec as EvalJobSpec, existing, {
      started: (threadId) => {
        if (!live()) return;
        job.info.worker_thread_id = threadId;
        touch();
        job.taken.fire();
      },
      accepted: () => {
        if (!live()) return;
        job.accepted = true;
        job.settled.fire();
      },
      record: (record, seed) => {
        if (!live()) return;
        job.records.push(record);
        job.info.records_total = job.records.length;
        const key = seedKey(seed);
        const list = job.bySeed.get(key);
        if (list) list.push(record);
        else job.bySeed.set(key, [record]);
      },
      progress: (progress) => {
        if (!live()) return;
        job.info.progress = progress;
        touch();
      },
      ended: ({ summary, error }) => {
        if (!live()) return;
        const status: EvalJobStatus = job.cancelling
          ? "cancelled"
          : error
            ? "failed"
            : summary?.status === "interrupted"
              ? "interrupted"
              : "succeeded";
        this.finish(job, status, { summary, error });
      },
      lost: (reason) => {
        if (!live()) return;
        if (job.cancelling) {
          this.finish(job, "cancelled", {
            error: {
              code: "cancelled",
              message: `the evaluation did not stop within the grace period: ${reason}`,
            },
          });
        } else if (attempt >= MAX_ATTEMPTS) {
          this.finish(job, "interrupted", {
            error: {
              code: "eval_thread_lost",
              message: `its eval thread went away ${attempt} times (last: ${reason})`,
            },
          });
        } else {
          this.options.log("warn", "evaluation resumes on another eval thread", {
            eval_id: job.info.eval_id,
            reason,
            records: job.records.length,
          });
          this.start(job);
        }
      },
    });
  }

  private finish(
    job: Job,
    status: EvalJobStatus,
    outcome: { summary?: EvalSummary; error?: WireError },
  ): void {
    job.info.status = status;
    if (outcome.summary) job.info.summary = outcome.summary;
    if (outcome.error) {
      job.failure = outcome.error;
      job.info.error = {
        error: outcome.error.code,
        message: outcome.error.message,
        ...(outcome.error.field ? { field: outcome.error.field } : {}),
      };
    }
    job.info.updated_at = new Date().toISOString();
    job.spec = undefined;
    job.bySeed.clear();
    this.options.log(status === "failed" ? "warn" : "info", "evaluation ended", {
      eval_id: job.info.eval_id,
      status,
      done: job.info.progress.done,
      records: job.records.length,
      ...(job.info.error ? { error: job.info.error } : {}),
    });
    job.taken.fire();
    job.settled.fire();
    job.ended.fire();
    this.prune();
  }

  /** Drops the oldest finished jobs past the number of jobs or records kept. */
  private prune(): void {
    const keep = this.options.keep ?? { jobs: 100, records: 100_000 };
    let jobs = 0;
    let records = 0;
    for (const job of this.jobs.values()) {
      if (job.info.status === "running") continue;
      jobs++;
      records += job.records.length;
    }
    for (const [id, job] of this.jobs) {
      if (jobs <= keep.jobs && records <= keep.records) break;
      if (job.info.status === "running") continue;
      this.jobs.delete(id);
      jobs--;
      records -= job.records.length;
    }
  }
}

/** Waits for `promise`, at most `ms`. */
async function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** Until the partition's soonest-ending job is expected to end (1 s to 10 min; 10 s unknown). */
function retryAfterMs(running: readonly Job[]): number {
  let soonest = Number.POSITIVE_INFINITY;
  for (const { info } of running) {
    const ran = info.progress.done - info.progress.skipped;
    if (ran <= 0 || info.progress.elapsed_ms <= 0) continue;
    const left = ((info.progress.total - info.progress.done) * info.progress.elapsed_ms) / ran;
    soonest = Math.min(soonest, left / 1000);
  }
  return 1000 * (Number.isFinite(soonest) ? Math.min(600, Math.max(1, Math.ceil(soonest))) : 10);
}
