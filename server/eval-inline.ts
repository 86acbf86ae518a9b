// Evaluation jobs in the server thread: used when a model provider object was injected
// (startServer({provider}), as tests do: a live object cannot cross threads) or with
// REFINERY_EVAL_THREADS=0. The work pool lets the event loop turn between item runs, but an item
// that keeps the CPU busy holds up HTTP meanwhile, and a cancelled job's runs in flight cannot be
// cut short: after the grace period the job is given up and what those runs still report is
// discarded.
import { threadId } from "node:worker_threads";
import {
  runEvalJob,
  type EvalJobSpec,
  type ItemRecord,
  type RefineRunner,
} from "../graphs/eval/index.ts";
import { toWireError, type EvalJobEvents, type EvalTarget } from "./eval-protocol.ts";

export class InlineEvalTarget implements EvalTarget {
  readonly kind = "server_thread";
  private readonly jobs = new Map<
    string,
    {
      controller: AbortController;
      events: EvalJobEvents;
      done: Promise<void>;
      cancelTimer?: NodeJS.Timeout;
    }
  >();

  /** `runner`: the server's refine graph (built on first use). */
  constructor(private readonly runner: () => Promise<RefineRunner>) {}

  start(
    jobId: string,
    spec: EvalJobSpec,
    existing: Map<string, ItemRecord[]>,
    events: EvalJobEvents,
  ): void {
    const controller = new AbortController();
    // Events of a job given up (or of a closed target) are dropped.
    const current = () => this.jobs.get(jobId)?.controller === controller;
    const done = this.runner()
      .then((runner) => {
        if (!current()) return undefined;
        events.started(threadId);
        return runEvalJob(spec, runner, {
          existing,
          signal: controller.signal,
          onAccepted: () => current() && events.accepted(),
          onRecord: (record, seed) => current() && events.record(record, seed),
          onProgress: (progress) => current() && events.progress(progress),
        });
      })
      .then(
        (summary) => {
          if (current() && summary) events.ended({ summary });
        },
        (err: unknown) => {
          if (current()) events.ended({ error: toWireError(err) });
        },
      )
      .finally(() => {
        const job = this.jobs.get(jobId);
        if (job?.controller !== controller) return;
        clearTimeout(job.cancelTimer);
        this.jobs.delete(jobId);
      });
    this.jobs.set(jobId, { controller, events, done });
  }

  cancel(jobId: string, graceMs: number): void {
    const job = this.jobs.get(jobId);
    if (!job || job.cancelTimer) return;
    job.controller.abort("cancelled");
    job.cancelTimer = setTimeout(() => {
      if (this.jobs.get(jobId) !== job) return;
      // Its runs in flight finish in the background; nothing they report reaches the job.
      this.jobs.delete(jobId);
      job.events.lost(`the job did not stop within ${graceMs} ms in the server thread`);
    }, graceMs);
  }

  async close(timeoutMs = 1_000): Promise<void> {
    const pending = [...this.jobs.values()];
    this.jobs.clear();
    for (const job of pending) {
      clearTimeout(job.cancelTimer);
      job.controller.abort("shutdown");
    }
    // Runs still in flight use the server's database: let them see the abort before it closes.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(pending.map((j) => j.done)),
      new Promise((r) => (timer = setTimeout(r, timeoutMs))),
    ]);
    clearTimeout(timer);
  }
}
