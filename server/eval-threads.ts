// Eval threads: evaluation jobs run in worker threads of their own (eval-thread.ts), so a job of
// thousands of graph runs, or an item that keeps the CPU busy, never holds up HTTP or the run
// queue in the server thread. Threads start when the first job needs one (up to
// REFINERY_EVAL_THREADS), each job goes to the thread with the fewest jobs, and a thread that does
// not stop a cancelled job within the grace period is terminated; its other jobs come back as
// lost (the job table resumes them from their records) and a new thread takes its place.
import { SHARE_ENV, Worker } from "node:worker_threads";
import type { EvalJobSpec, ItemRecord } from "../graphs/eval/index.ts";
import type { Logger } from "./log.ts";
import type {
  EvalJobEvents,
  EvalTarget,
  EvalThreadData,
  FromEvalThread,
  ToEvalThread,
  WireError,
} from "./eval-protocol.ts";
import { threadScript } from "./thread-entry.ts";

interface Slot {
  index: number;
  worker: Worker;
  /** Resolves with the thread's id once its engine is open. */
  ready: Promise<number>;
  jobs: Map<string, { events: EvalJobEvents; posted: boolean; cancelTimer?: NodeJS.Timeout }>;
  /** Why it could not start, once it failed to. */
  failure?: WireError;
  dead: boolean;
}

export class EvalThreadPool implements EvalTarget {
  readonly kind = "eval_thread";
  private readonly slots: Slot[] = [];
  private spawned = 0;
  private closing = false;

  constructor(
    private readonly options: {
      /** Threads at most (1 or more). */
      size: number;
      env: Record<string, string | undefined>;
      log: Logger;
    },
  ) {}

  start(
    jobId: string,
    spec: EvalJobSpec,
    existing: Map<string, ItemRecord[]>,
    events: EvalJobEvents,
  ): void {
    const slot = this.pick();
    const job = { events, posted: false };
    slot.jobs.set(jobId, job);
    slot.ready.then(
      (threadId) => {
        if (slot.dead || slot.jobs.get(jobId) !== job) return;
        job.posted = true;
        events.started(threadId);
        slot.worker.postMessage({
          type: "start",
          jobId,
          spec,
          existing: [...existing],
        } satisfies ToEvalThread);
      },
      () => {
        // A thread that cannot open its engine fails every job the same way: the job ends with
        // the error instead of being retried (exit handling skips threads that never started).
        if (!slot.jobs.delete(jobId)) return;
        events.ended({
          error: slot.failure ?? { code: "internal", message: "the eval thread could not start" },
        });
      },
    );
  }

  cancel(jobId: string, graceMs: number): void {
    const slot = this.slots.find((s) => s.jobs.has(jobId));
    // Not in a live thread (any more): its thread's exit reports it.
    const job = slot?.jobs.get(jobId);
    if (!slot || !job || job.cancelTimer) return;
    if (!job.posted) {
      // Its thread is still starting: the job never reached it.
      slot.jobs.delete(jobId);
      job.events.ended({});
      return;
    }
    slot.worker.postMessage({ type: "cancel", jobId } satisfies ToEvalThread);
    job.cancelTimer = setTimeout(() => {
      if (slot.dead || !slot.jobs.has(jobId)) return;
      this.options.log("warn", "eval thread did not stop a cancelled job in time; terminating it", {
        eval_id: jobId,
        eval_thread: slot.index,
        grace_ms: graceMs,
        other_jobs: slot.jobs.size - 1,
      });
      // No new job goes to it; its jobs come back as lost when it has exited.
      const at = this.slots.indexOf(slot);
      if (at >= 0) this.slots.splice(at, 1);
      void slot.worker.terminate();
    }, graceMs);
  }

  async close(timeoutMs = 1_000): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.slots.map(async (slot) => {
        if (slot.dead) return;
        for (const job of slot.jobs.values()) clearTimeout(job.cancelTimer);
        slot.jobs.clear();
        const exited = new Promise<void>((r) => slot.worker.once("exit", () => r()));
        slot.worker.postMessage({ type: "close" } satisfies ToEvalThread);
        const timer = setTimeout(() => void slot.worker.terminate(), timeoutMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  /** The thread with the fewest jobs; a new one while there is room and every thread has work. */
  private pick(): Slot {
    let best: Slot | undefined;
    for (const slot of this.slots) if (!best || slot.jobs.size < best.jobs.size) best = slot;
    if (best && (best.jobs.size === 0 || this.slots.length >= this.options.size)) return best;
    const slot = this.spawn();
    this.slots.push(slot);
    return slot;
  }

  private spawn(): Slot {
    const { log } = this.options;
    const index = ++this.spawned;
    // From the sources, the TypeScript loader comes from run-thread.mjs (workers do not inherit tsx).
    const { script, entry } = threadScript("eval-thread");
    const worker = new Worker(script, {
      workerData: {
        entry,
        index,
        env: { ...this.options.env },
      } satisfies EvalThreadData,
      execArgv: [],
      env: SHARE_ENV,
    });
    let markReady!: (threadId: number) => void;
    let markFailed!: (err: Error) => void;
    const slot: Slot = {
      index,
      worker,
      jobs: new Map(),
      dead: false,
      ready: new Promise<number>((resolve, reject) => {
        markReady = resolve;
        markFailed = reject;
      }),
    };
    slot.ready.catch(() => {}); // observed by start(); never an unhandled rejection
    let live = false;
    worker.on("message", (batch: FromEvalThread[]) => {
      for (const m of batch) {
        if (m.type === "log") {
          log(m.level, m.msg, m.fields);
          continue;
        }
        if (m.type === "ready") {
          live = true;
          markReady(m.threadId);
          continue;
        }
        if (m.type === "failed") {
          slot.failure = m.error;
          log("error", "an eval thread could not start", { error: m.error });
          markFailed(new Error(m.error.message));
          continue;
        }
        const job = slot.jobs.get(m.jobId);
        if (!job) continue;
        switch (m.type) {
          case "accepted":
            job.events.accepted();
            break;
          case "record":
            job.events.record(m.record, m.seed);
            break;
          case "progress":
            job.events.progress(m.progress);
            break;
          case "ended":
            clearTimeout(job.cancelTimer);
            slot.jobs.delete(m.jobId);
            job.events.ended({ summary: m.summary, error: m.error });
            break;
        }
      }
    });
    worker.on("error", (err) => {
      slot.failure ??= { code: "internal", message: err.message };
      log("error", "eval thread crashed", { error: { error: err.name, message: err.message } });
    });
    worker.on("exit", (code) => {
      slot.dead = true;
      const at = this.slots.indexOf(slot);
      if (at >= 0) this.slots.splice(at, 1);
      markFailed(new Error(`eval thread exited with code ${code}`));
      if (this.closing || !live) return; // jobs of a thread that never started end via `ready`
      // The next job starts a new thread; a lost job resumed at once starts it now.
      const jobs = [...slot.jobs.values()];
      slot.jobs.clear();
      const reason = `eval thread ${index} stopped (exit code ${code})`;
      for (const job of jobs) {
        clearTimeout(job.cancelTimer);
        job.events.lost(reason);
      }
    });
    return slot;
  }
}
