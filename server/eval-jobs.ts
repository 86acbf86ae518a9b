// The evaluation jobs of the server: who owns each one (its partition and identity), the limits a
// new job must pass (size, running jobs per partition), its records and progress as its executor
// (eval-protocol.ts) reports them, cancel, and which finished jobs are kept. Jobs live in the
// database (storage `evalJobs`, core/storage/eval-jobs.ts), so every process sharing it lists,
// reads and cancels any job; the process that started a job executes it (its runner) and renews
// its lease. A cancel asked on another process is recorded on the job and signalled (the cancel
// channel of server/signals, id `eval:<id>`); the runner also sees it at its next write. A job
// whose process went away (lease lapsed, process gone, or released at shutdown) is resumed from
// its records by the process holding the `eval-jobs` duty, at most MAX_ATTEMPTS starts in all.
import { randomUUID } from "node:crypto";
import { RefineryError } from "../core/errors.ts";
import type { EvalJobHeld, EvalJobRow, EvalJobStore } from "../core/storage/eval-jobs.ts";
import { openMemoryEvalJobStore } from "../core/storage/sqlite/eval-jobs.ts";
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
import { holderIdGone, newLeaseHolder, type LeaseHolder } from "./leases.ts";
import type { Logger } from "./log.ts";
import { serializeError } from "./serde.ts";
import type { RunSignals } from "./signals/types.ts";

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
  /** Times it was started: more than 1 when its eval thread or its process went away and it resumed. */
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
  /** Where jobs live (the backend's `evalJobs`); a database of its own in memory without one. */
  store?: EvalJobStore;
  /** How long a job stays with its process without a renewal (REFINERY_RUN_LEASE_MS). @default 30000 */
  leaseMs?: number;
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

/** Starts of a job at most (its thread or its process went away), before it ends `interrupted`. */
export const MAX_ATTEMPTS = 3;

/** The cancel signal of an evaluation job (server/signals' cancel channel, beside run ids). */
const CANCEL_PREFIX = "eval:";

/** A job this process executes. */
interface Local {
  id: string;
  spec: EvalJobSpec;
  /** The current start: events of an earlier one are ignored. */
  attempt: number;
  cancelling: boolean;
  /** Its end was decided here (or it was given up): no further event counts. */
  done: boolean;
  /** Its items and options were checked in its thread. */
  accepted: boolean;
  /** The error it ended with, as its executor reported it. */
  failure?: WireError;
  /** Its writes, in order. */
  writes: Promise<void>;
  /** The latest progress not written yet. */
  progress?: EvalJobProgress;
  /** A thread has taken the job (or it has ended). */
  taken: Signal;
  /** The job is accepted (its items checked) or has ended. */
  settled: Signal;
  /** Its end is written. */
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

const ZERO_PROGRESS: EvalJobProgress = { total: 0, done: 0, skipped: 0, elapsed_ms: 0 };

function infoOf(row: EvalJobRow): EvalJobInfo {
  return {
    eval_id: row.eval_id,
    status: row.status,
    created_at: row.created_at,
    updated_at: row.updated_at,
    owner: { partition: row.partition, identity: row.identity },
    size: row.size,
    runs_in: row.runs_in as EvalTarget["kind"],
    worker_thread_id: row.worker_thread_id,
    attempts: row.attempts,
    progress: row.progress as EvalJobProgress,
    records_total: row.records_total,
    ...(row.summary ? { summary: row.summary as EvalSummary } : {}),
    ...(row.error ? { error: row.error as EvalJobInfo["error"] } : {}),
  };
}

export class EvalJobs {
  private readonly local = new Map<string, Local>();
  private readonly store: EvalJobStore;
  private readonly holder: LeaseHolder = newLeaseHolder();
  private readonly leaseMs: number;
  private closed = false;
  private timer?: NodeJS.Timeout;
  private recovering?: Promise<void>;
  private signals?: RunSignals;

  constructor(private readonly options: EvalJobsOptions) {
    this.store = options.store ?? openMemoryEvalJobStore();
    this.leaseMs = options.leaseMs ?? 30_000;
  }

  /**
   * Takes part in the deployment: cancels signalled by other processes reach this one's jobs,
   * its jobs' leases are renewed every third of the lease (asked cancels are seen then too), and
   * while `duty` holds, jobs whose process went away are resumed here (now, then at each beat).
   */
  start(deps: { signals?: RunSignals; duty?: () => Promise<boolean> }): void {
    this.signals = deps.signals;
    deps.signals?.onCancel((id) => {
      if (!id.startsWith(CANCEL_PREFIX)) return;
      const job = this.local.get(id.slice(CANCEL_PREFIX.length));
      if (job) this.cancelLocal(job);
    });
    const beat = async () => {
      if (this.local.size > 0) {
        const asked = await this.store.renew(this.holder.id, this.leaseUntil());
        for (const id of asked) {
          const job = this.local.get(id);
          if (job) this.cancelLocal(job);
        }
      }
      if (!deps.duty || (await deps.duty())) await this.recover();
    };
    const tick = () => {
      if (this.closed) return;
      beat().catch((err: unknown) =>
        this.options.log("warn", "evaluation job heartbeat failed", {
          error: serializeError(err),
        }),
      );
    };
    tick();
    this.timer = setInterval(tick, Math.max(100, Math.floor(this.leaseMs / 3)));
    this.timer.unref();
  }

  /**
   * Checks and starts a job; resolves once its items were checked (a bad one throws, 422, and
   * nothing is kept) or after `acceptWaitMs`.
   */
  async create(owner: EvalOwner, spec: EvalJobSpec): Promise<EvalJobView> {
    const { maxRuns, maxJobs } = this.options;
    evalJobModels(spec); // replicates of a real model: refused before anything else
    checkEvalJobSize(spec, maxRuns, "REFINERY_EVAL_MAX_RUNS");
    const running = await this.store.running(owner.partition);
    if (running.length >= maxJobs) {
      throw new RefineryError(
        "rate_limited",
        `${running.length} evaluation job(s) of yours are running; this server runs at most ${maxJobs} at once per caller (REFINERY_EVAL_MAX_JOBS)`,
        {
          field: "eval_id",
          fix: "wait for one to finish (GET /eval lists them), cancel one with POST /eval/{id}/cancel, or retry after Retry-After seconds",
          retryAfterMs: retryAfterMs(running.map(infoOf)),
        },
      );
    }
    if (this.closed) throw shuttingDown();
    const id = randomUUID();
    const size = evalJobSize(spec);
    await this.store.create({
      eval_id: id,
      partition: owner.partition,
      identity: owner.identity,
      spec,
      size,
      runs_in: this.options.target.kind,
      progress: ZERO_PROGRESS,
      runner: this.holder.id,
      lease_until: this.leaseUntil(),
    });
    const job = this.newLocal(id, spec);
    this.options.log("info", "evaluation started", {
      eval_id: id,
      partition: owner.partition,
      size,
      runs_in: this.options.target.kind,
    });
    this.run(job, new Map());
    // A new eval thread takes a second or two to open its engine: that does not count.
    await within(job.taken.promise, 60_000);
    await within(job.settled.promise, this.options.acceptWaitMs ?? 5_000);
    const failure = job.failure;
    if (
      job.done &&
      !job.accepted &&
      (failure?.code === "invalid_input" || failure?.code === "invalid_config")
    ) {
      // A bad item or option: the client's error, answered now; the job never ran.
      await job.ended.promise;
      await this.store.delete(id);
      throw fromWireError(failure);
    }
    return this.view(id);
  }

  /** The partition's jobs, newest first, without their records. */
  async list(partition: string, page: { limit: number; offset: number }): Promise<EvalJobInfo[]> {
    return (await this.store.list(partition, page.limit, page.offset)).map(infoOf);
  }

  /** A job of the partition; another partition's job is not found, like a missing one. */
  async get(partition: string, id: string, page?: RecordsPage): Promise<EvalJobView> {
    await this.find(partition, id);
    return this.view(id, page);
  }

  /**
   * Stops a running job, wherever it runs; resolves once it has ended (`cancelled`, its records
   * so far kept), or, when its process does not answer in time, with it still running and the
   * cancel recorded for its runner.
   */
  async cancel(partition: string, id: string): Promise<EvalJobView> {
    const row = await this.find(partition, id);
    if (row.status !== "running") {
      throw new RefineryError("conflict", `evaluation ${id} is already ${row.status}`, {
        field: "eval_id",
        fix: "only a running evaluation can be cancelled",
      });
    }
    const job = this.local.get(id);
    if (job) {
      this.cancelLocal(job);
      await job.ended.promise;
      return this.view(id);
    }
    await this.store.requestCancel(id);
    this.signals?.cancel(`${CANCEL_PREFIX}${id}`, "interrupt");
    const grace = this.options.cancelGraceMs ?? 1_000;
    const deadline = Date.now() + grace + Math.max(5_000, this.leaseMs / 3);
    for (;;) {
      const now = await this.store.get(id);
      if (!now || now.status !== "running") break;
      // Nobody executes it (its process went away, or stopped): it ends here.
      if (now.runner === null || now.lease_until < Date.now() || holderIdGone(now.runner)) {
        await this.store.finish(id, now.runner, "cancelled", {
          error: { error: "cancelled", message: "cancelled while no process was running it" },
        });
        continue;
      }
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return this.view(id);
  }

  /**
   * Shutdown: this process's running jobs stop here and stay `running` in the database, released
   * so another process (or this one when it starts again) resumes them from their records.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.recovering;
    const jobs = [...this.local.values()];
    for (const job of jobs) job.done = true;
    await this.options.target.close();
    await Promise.all(jobs.map((j) => j.writes));
    try {
      await this.store.release(this.holder.id);
    } catch (err) {
      this.options.log("warn", "could not release evaluation jobs at shutdown", {
        error: serializeError(err),
      });
    }
    for (const job of jobs) {
      job.taken.fire();
      job.settled.fire();
      job.ended.fire();
    }
    this.local.clear();
    this.holder.retire();
  }

  /** Resumes running jobs nobody executes (their process went away or released them). */
  private async recover(): Promise<void> {
    if (this.closed || this.recovering) return;
    const pass = async () => {
      for (const row of await this.store.running()) {
        if (this.closed) return;
        if (this.local.has(row.eval_id)) continue;
        const free =
          row.runner === null || row.lease_until < Date.now() || holderIdGone(row.runner);
        if (free) await this.resume(row);
      }
    };
    this.recovering = pass().finally(() => (this.recovering = undefined));
    await this.recovering;
  }

  private async resume(row: EvalJobRow): Promise<void> {
    const id = row.eval_id;
    const claimed = await this.store.claim(id, row.runner, this.holder.id, this.leaseUntil());
    if (!claimed) return; // another process took it first
    const end = async (
      status: "cancelled" | "interrupted" | "failed",
      error: { error: string; message: string },
    ) => {
      await this.store.finish(id, this.holder.id, status, { error });
      this.options.log("warn", "evaluation ended", { eval_id: id, status, error });
    };
    if (claimed.cancel_requested) {
      return end("cancelled", {
        error: "cancelled",
        message: "cancelled while its process was gone",
      });
    }
    if (claimed.attempts > MAX_ATTEMPTS) {
      return end("interrupted", {
        error: "eval_process_lost",
        message: `the process or thread running it went away ${MAX_ATTEMPTS} times; its ${claimed.records_total} records are kept (GET /eval/${id}); start it again with POST /eval and the same items`,
      });
    }
    if (!claimed.spec) {
      return end("failed", { error: "internal", message: "the job's spec is missing" });
    }
    const existing = await this.existing(id);
    this.options.log("warn", "evaluation resumes: the process running it went away", {
      eval_id: id,
      previous_runner: row.runner,
      attempt: claimed.attempts,
      records: claimed.records_total,
    });
    const job = this.newLocal(id, claimed.spec as EvalJobSpec);
    job.accepted = true;
    this.run(job, existing);
  }

  private newLocal(id: string, spec: EvalJobSpec): Local {
    const job: Local = {
      id,
      spec,
      attempt: 0,
      cancelling: false,
      done: false,
      accepted: false,
      writes: Promise.resolve(),
      taken: signal(),
      settled: signal(),
      ended: signal(),
    };
    this.local.set(id, job);
    return job;
  }

  private leaseUntil(): number {
    return Date.now() + this.leaseMs;
  }

  /** The job's records per replicate (seedKey), to resume it. */
  private async existing(id: string): Promise<Map<string, ItemRecord[]>> {
    const bySeed = new Map<string, ItemRecord[]>();
    for (const [key, record] of await this.store.recordsBySeed(id)) {
      const list = bySeed.get(key);
      if (list) list.push(record as ItemRecord);
      else bySeed.set(key, [record as ItemRecord]);
    }
    return bySeed;
  }

  private async find(partition: string, id: string): Promise<EvalJobRow> {
    const row = await this.store.get(id);
    if (!row || row.partition !== partition) {
      throw new RefineryError("not_found", "Evaluation not found", {
        field: "eval_id",
        fix: `no evaluation with id ${id} (finished jobs past the number kept are dropped; GET /eval lists yours)`,
      });
    }
    return row;
  }

  /**
   * The job with a page of its records: a whole job can hold 20,000 of them, several MB of JSON
   * that the server thread would serialize for every poll.
   */
  private async view(
    id: string,
    page: RecordsPage = { offset: 0, limit: RECORDS_PAGE.default },
  ): Promise<EvalJobView> {
    const row = await this.store.get(id);
    if (!row) throw new RefineryError("not_found", "Evaluation not found", { field: "eval_id" });
    const records = (await this.store.records(id, page.offset, page.limit)) as ItemRecord[];
    return { ...infoOf(row), records };
  }

  private cancelLocal(job: Local): void {
    if (job.cancelling || job.done) return;
    job.cancelling = true;
    this.options.target.cancel(job.id, this.options.cancelGraceMs ?? 1_000);
  }

  /** Queues a write of the job; a write that finds the job no longer held gives it up here. */
  private write(job: Local, work: () => Promise<EvalJobHeld | undefined>): void {
    job.writes = job.writes
      .then(work)
      .then((held) => {
        if (held === undefined) {
          if (!job.done) this.giveUp(job, "another process holds it now, or it ended");
        } else if (held.cancel_requested) {
          this.cancelLocal(job);
        }
      })
      .catch((err: unknown) =>
        this.options.log("warn", "could not write an evaluation job's state", {
          eval_id: job.id,
          error: serializeError(err),
        }),
      );
  }

  /** This process no longer holds the job (its lease lapsed and another took it): it stops here. */
  private giveUp(job: Local, reason: string): void {
    this.options.log("warn", "evaluation job given up in this process", {
      eval_id: job.id,
      reason,
    });
    job.done = true;
    this.local.delete(job.id);
    this.options.target.cancel(job.id, this.options.cancelGraceMs ?? 1_000);
    job.taken.fire();
    job.settled.fire();
    job.ended.fire();
  }

  /** Hands the job to its executor (again, after its thread went away). */
  private run(job: Local, existing: Map<string, ItemRecord[]>): void {
    const attempt = ++job.attempt;
    const runner = this.holder.id;
    const live = () => job.attempt === attempt && !job.done;
    this.options.target.start(job.id, job.spec, existing, {
      started: (threadId) => {
        if (!live()) return;
        this.write(job, () =>
          this.store.update(job.id, runner, { worker_thread_id: threadId }, this.leaseUntil()),
        );
        job.taken.fire();
      },
      accepted: () => {
        if (!live()) return;
        job.accepted = true;
        job.settled.fire();
      },
      record: (record, seed) => {
        if (!live()) return;
        this.write(job, () => {
          const progress = job.progress;
          job.progress = undefined;
          return this.store.append(
            job.id,
            runner,
            seedKey(seed),
            record,
            progress ?? null,
            this.leaseUntil(),
          );
        });
      },
      progress: (progress) => {
        if (!live()) return;
        const queued = job.progress !== undefined;
        job.progress = progress;
        if (queued) return; // the write queued takes the latest
        this.write(job, async () => {
          const latest = job.progress;
          if (latest === undefined) return { cancel_requested: false }; // a record took it
          job.progress = undefined;
          return this.store.update(job.id, runner, { progress: latest }, this.leaseUntil());
        });
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
          return;
        }
        this.write(job, async () => {
          const row = await this.store.get(job.id);
          if (!row || row.runner !== runner || row.status !== "running") return undefined;
          if (row.attempts >= MAX_ATTEMPTS) {
            this.finish(job, "interrupted", {
              error: {
                code: "eval_thread_lost",
                message: `its eval thread went away ${row.attempts} times (last: ${reason})`,
              },
            });
            return { cancel_requested: false };
          }
          this.options.log("warn", "evaluation resumes on another eval thread", {
            eval_id: job.id,
            reason,
            records: row.records_total,
          });
          const existing = await this.existing(job.id);
          const claimed = await this.store.claim(job.id, runner, runner, this.leaseUntil());
          if (!claimed) return undefined;
          if (!this.closed && live()) this.run(job, existing);
          return { cancel_requested: claimed.cancel_requested };
        });
      },
    });
  }

  private finish(
    job: Local,
    status: Exclude<EvalJobStatus, "running">,
    outcome: { summary?: EvalSummary; error?: WireError },
  ): void {
    job.done = true;
    const error = outcome.error
      ? {
          error: outcome.error.code,
          message: outcome.error.message,
          ...(outcome.error.field ? { field: outcome.error.field } : {}),
        }
      : undefined;
    if (outcome.error) job.failure = outcome.error;
    // Written after the records and progress queued before it.
    job.writes = job.writes
      .then(async () => {
        const progress = job.progress;
        job.progress = undefined;
        if (progress) {
          await this.store.update(job.id, this.holder.id, { progress }, this.leaseUntil());
        }
        await this.store.finish(job.id, this.holder.id, status, {
          ...(outcome.summary ? { summary: outcome.summary } : {}),
          ...(error ? { error } : {}),
        });
        this.options.log(status === "failed" ? "warn" : "info", "evaluation ended", {
          eval_id: job.id,
          status,
          ...(error ? { error } : {}),
        });
        const keep = this.options.keep ?? { jobs: 100, records: 100_000 };
        await this.store.prune(keep);
      })
      .catch((err: unknown) =>
        this.options.log("error", "could not write an evaluation job's end", {
          eval_id: job.id,
          status,
          error: serializeError(err),
        }),
      )
      .finally(() => {
        this.local.delete(job.id);
        job.taken.fire();
        job.settled.fire();
        job.ended.fire();
      });
  }
}

function shuttingDown(): RefineryError {
  return new RefineryError("conflict", "the server is shutting down", {
    fix: "start the evaluation again once the server is back",
    retryable: true,
  });
}

/** Waits for `promise`, at most `ms`. */
async function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** Until the partition's soonest-ending job is expected to end (1 s to 10 min; 10 s unknown). */
function retryAfterMs(running: readonly EvalJobInfo[]): number {
  let soonest = Number.POSITIVE_INFINITY;
  for (const info of running) {
    const ran = info.progress.done - info.progress.skipped;
    if (ran <= 0 || info.progress.elapsed_ms <= 0) continue;
    const left = ((info.progress.total - info.progress.done) * info.progress.elapsed_ms) / ran;
    soonest = Math.min(soonest, left / 1000);
  }
  return 1000 * (Number.isFinite(soonest) ? Math.min(600, Math.max(1, Math.ceil(soonest))) : 10);
}
