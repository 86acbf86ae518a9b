// The run executor: a bounded pool of workers that claim pending runs from storage, stream
// the graph, publish events to the hub, and record the outcome on the run and its thread.
// A claimed run is leased to this executor; it renews the leases of its live runs (a heartbeat,
// every third of the lease), and takes back runs whose lease lapsed (their process stopped, here
// or on another machine sharing the database) or whose holder on this machine is gone: they
// continue from their last checkpoint; steps that were checkpointed are not executed again.
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import { isTransientStorageFailure } from "../core/storage/transient.ts";
import type { CheckpointAdmin } from "../core/storage/checkpoint-admin.ts";
import type { Run, Storage } from "../core/storage/types.ts";
import type { LearningLoop } from "../graphs/learning.ts";
import type { GraphRegistry } from "../graphs/registry.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import {
  DEFAULT_RUN_LIMITS,
  MAX_RUN_ATTEMPTS,
  MAX_STORAGE_LOSSES,
  countedAttempts,
  notRespondingError,
  runTimeoutError,
  type RunError,
  type RunLimits,
} from "./run-limits.ts";
import {
  cancelActionOf,
  RunRunner,
  type AbortReason,
  type CancelAction,
  type RunOutcome,
} from "./run-runner.ts";
import { serializeError } from "./serde.ts";
import { cancelsRequested, requestCancel, withdrawCancel } from "./signals/cancel-requests.ts";
import type { RunSignals } from "./signals/types.ts";
import type { RunEnd, StreamHub } from "./stream-hub.ts";

/** Statuses a run ends with. */
const TERMINAL: ReadonlySet<string> = new Set(["success", "error", "timeout", "interrupted"]);
import { leaseHolderGone, newLeaseHolder, type LeaseHolder } from "./leases.ts";
import type { UserStore } from "../core/memory/user-store.ts";

export type { CancelAction } from "./run-runner.ts";

/**
 * Executes claimed runs somewhere else than the server thread (run threads, run-threads.ts).
 * Aborting `signal` with an AbortReason ("interrupt", "rollback", "shutdown", "timeout") cancels
 * the run there.
 */
export interface RunTarget {
  execute(run: Run, signal: AbortSignal): Promise<RunOutcome | LostRun>;
  /** This process compacted a thread's checkpoints: the executing savers' byte counts shrank. */
  compacted?(threadId: string): void;
}

/**
 * The thread executing a run stopped before the run ended. `unresponsive`: the run was cancelled
 * and its thread did not report it finished in time, so the thread was terminated for it.
 */
export type LostRun = {
  kind: "lost";
  reason: string;
  unresponsive?: boolean;
  /** The database's failure cut the attempt short: it does not count (Run.lost_to_storage). */
  storageLost?: boolean;
};

/** A storage loss of `run` goes uncounted while it has had fewer than MAX_STORAGE_LOSSES. */
const uncounted = (run: Run): boolean => (run.lost_to_storage ?? 0) < MAX_STORAGE_LOSSES;

export interface ExecutorDeps {
  storage: Storage;
  registry: GraphRegistry;
  hub: StreamHub;
  checkpointer: BaseCheckpointSaver;
  checkpoints: CheckpointAdmin;
  log: Logger;
  metrics?: Metrics;
  /** Maximum runs executing at once in this process. */
  concurrency: number;
  /** Safety poll for runs made due by time (after_seconds) or by another process. */
  pollMs?: number;
  /** A run with a webhook ended here: its call is in the outbox (webhook-outbox.ts delivers it). */
  webhookQueued?: () => void;
  /** Learns from finished runs (lessons, outcomes kept for export). */
  learning?: LearningLoop;
  /** Where runs execute; default: in this thread. */
  target?: RunTarget;
  /** Step and run time limits; REFINERY_RUN_TIMEOUT_MS is enforced here. */
  limits?: RunLimits;
  /** The Store API's store, for runs executed in this thread. */
  store?: UserStore;
  /**
   * How long a claimed run stays leased without a heartbeat (REFINERY_RUN_LEASE_MS, 30 s): after
   * that another executor sharing the database takes it over.
   */
  leaseMs?: number;
  /** Wakes other processes' workers when a run is queued, and carries cancels to them. */
  signals?: RunSignals;
}

/** How long a cancel of a run executing in another process waits for it to stop. */
const REMOTE_CANCEL_MS = 15_000;

export const DEFAULT_LEASE_MS = 30_000;

interface Active {
  run: Run;
  controller: AbortController;
  done: Promise<void>;
}

export class RunExecutor {
  private readonly active = new Map<string, Active>();
  private pumping = false;
  private again = false;
  private stopping = false;
  private timer?: NodeJS.Timeout;
  private heartbeat?: NodeJS.Timeout;
  private beating = false;
  /**
   * The database did not answer a claim or a run's bookkeeping: runs may be leased to this
   * executor that nothing here executes (a paused run, a claim whose answer was lost). See
   * takeBackOrphans.
   */
  private orphansPossible = false;
  private orphanTimer?: NodeJS.Timeout;
  private readingCancels = false;
  /** When the leases were last renewed (ms): past the lease, this executor lets its runs go. */
  private renewedAt = Date.now();
  private readonly holder: LeaseHolder = newLeaseHolder();
  private readonly leaseMs: number;

  /** Runs graphs in this thread, and re-reads threads after cancels and crashes. */
  private readonly runner: RunRunner;
  private readonly limits: RunLimits;

  constructor(private readonly deps: ExecutorDeps) {
    this.limits = deps.limits ?? DEFAULT_RUN_LIMITS;
    this.leaseMs = deps.leaseMs ?? DEFAULT_LEASE_MS;
    this.runner = new RunRunner({
      storage: deps.storage,
      registry: deps.registry,
      checkpointer: deps.checkpointer,
      checkpoints: deps.checkpoints,
      log: deps.log,
      sink: deps.hub,
      limits: this.limits,
      ...(deps.store ? { store: deps.store } : {}),
    });
    deps.signals?.onWake((threadId) => {
      this.wakeLocal();
      this.queued(threadId);
    });
    deps.signals?.onCancel((runId, action) => this.active.get(runId)?.controller.abort(action));
  }

  /** The id this executor's leases are held under (host:pid:instance). */
  get leaseOwner(): string {
    return this.holder.id;
  }

  /**
   * Takes back runs whose executor is gone (see reclaim), repairs threads a crash left busy,
   * then takes runs, and heartbeats its leases every third of the lease.
   */
  async start(): Promise<void> {
    await this.reclaim();
    await this.repairBusyThreads();
    this.renewedAt = Date.now();
    this.timer = setInterval(() => {
      this.wakeLocal();
      void this.readCancels();
    }, this.deps.pollMs ?? 1000);
    this.timer.unref();
    this.heartbeat = setInterval(() => void this.beat(), Math.max(50, this.leaseMs / 3));
    this.heartbeat.unref();
    this.wakeLocal();
  }

  /**
   * Re-queues runs whose lease lapsed or whose holder is gone (a process that crashed, here or on
   * another machine; a CLI process that died). A run that was already on its last attempt fails
   * instead: a run that takes its process down (or was running at every kill) is not started
   * again and again.
   */
  private async reclaim(orphans = false): Promise<void> {
    /** Runs leased here that nothing here executes (with `orphans`, see takeBackOrphans). */
    const orphaned = new Set<string>();
    const isOrphan = (run: Run, owner: string | null) => {
      if (!orphans || owner !== this.holder.id || this.active.has(run.run_id)) return false;
      orphaned.add(run.run_id);
      return true;
    };
    const reclaimed = await this.deps.storage.runs.reclaimRunning({
      gone: (run, owner) => leaseHolderGone(run, owner) || isOrphan(run, owner),
      // An orphan is one the database's failure cut short here (see takeBackOrphans).
      storageLost: (run) => orphaned.has(run.run_id) && uncounted(run),
      exhausted: {
        attempts: MAX_RUN_ATTEMPTS,
        error: {
          error: "RunThreadLost",
          message:
            `the run could not finish: its worker stopped while it was running, on its attempt ` +
            `${MAX_RUN_ATTEMPTS} of ${MAX_RUN_ATTEMPTS}; it is not started again`,
        },
      },
    });
    for (const run of reclaimed) {
      const ids = { run_id: run.run_id, thread_id: run.thread_id, attempt: run.attempt };
      this.deps.metrics?.leaseReclaims.inc();
      if (orphaned.has(run.run_id) && run.status !== "error") {
        this.deps.log(
          "info",
          "the database answers again: re-queued a run leased here that nothing here executes",
          ids,
        );
        continue;
      }
      if (run.status === "error") {
        await this.runner.refreshThread(run.thread_id, undefined, { error: run.error! });
        this.deps.metrics?.runsFinished.inc({ status: "error" });
        this.deps.hub.publish(run.run_id, "error", run.error);
        this.deps.hub.close(run.run_id, { status: "error", error: run.error! });
        this.deps.log(
          "error",
          "run left running by a stopped worker failed: no attempts left",
          ids,
        );
        continue;
      }
      this.deps.log("warn", "re-queued run left running by a stopped worker", ids);
    }
    if (reclaimed.length > 0) this.notify();
  }

  /**
   * Renews the leases of the runs executing here, stops those whose lease this executor lost
   * (another took them over), and takes back runs of stopped workers. When the database cannot
   * be reached for a whole lease, every run here stops: another executor may have them by now;
   * they continue from their last checkpoint wherever they are claimed next.
   */
  private async beat(): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    try {
      const ids = [...this.active.keys()];
      try {
        const lost = await this.deps.storage.runs.renewLeases(this.holder.id, ids, this.leaseMs);
        this.renewedAt = Date.now();
        for (const id of lost) {
          if (await this.endedHere(id)) continue;
          this.letGo(id, "its lease was taken over by another worker");
        }
      } catch (err) {
        this.deps.log("warn", "renewing run leases failed", { error: serializeError(err) });
        if (Date.now() - this.renewedAt >= this.leaseMs) {
          for (const id of ids) this.letGo(id, "its lease could not be renewed in time");
        }
        return;
      }
      if (!this.stopping) await this.reclaim();
    } catch (err) {
      this.deps.log("warn", "reclaiming runs failed", { error: serializeError(err) });
    } finally {
      this.beating = false;
    }
  }

  /**
   * Every second until the database answers: takes back the runs leased to this executor that it
   * does not execute (reclaim with `orphans`), so a paused run, or one whose claim's answer was
   * lost, is re-queued at once instead of after its lease. Done only while no claim of this
   * executor is on its way, so every run it claimed is in `active`; the pump waits meanwhile
   * (wakeLocal sees it busy and asks for another pass).
   */
  private takeBackOrphans(): void {
    this.orphansPossible = true;
    if (this.orphanTimer || this.stopping) return;
    this.orphanTimer = setTimeout(() => {
      this.orphanTimer = undefined;
      if (this.pumping) return this.takeBackOrphans();
      this.pumping = true;
      this.orphansPossible = false;
      void this.reclaim(true)
        .catch(() => {
          this.orphansPossible = true; // the database still does not answer: next second
        })
        .finally(() => {
          this.pumping = false;
          if (this.again) this.wakeLocal();
          if (this.orphansPossible) this.takeBackOrphans();
        });
    }, 1000);
    this.orphanTimer.unref();
  }

  /**
   * True when a run whose lease renewal failed did in fact end in this executor's attempt: its
   * runner recorded its end (which clears the lease) and its outcome is on its way to execute().
   * Stopping it then would lose that outcome, and with it the end of its stream (a `/wait` on it
   * would never answer); under load the cancel could even end its run thread with every run on it.
   */
  private async endedHere(runId: string): Promise<boolean> {
    const active = this.active.get(runId);
    if (!active) return false;
    const stored = await this.deps.storage.runs.get(runId);
    return (
      stored !== undefined &&
      stored.attempt === active.run.attempt &&
      stored.status !== "running" &&
      stored.status !== "pending"
    );
  }

  /**
   * Cancels of runs executing here that another process recorded in the database
   * (signals/cancel-requests.ts): they arrive even when the cancel signal was lost.
   */
  private async readCancels(): Promise<void> {
    if (this.readingCancels || this.active.size === 0) return;
    if (!this.deps.signals || this.deps.signals.kind === "local") return;
    this.readingCancels = true;
    try {
      const asked = await cancelsRequested(this.deps.storage.duties, [...this.active.keys()]);
      for (const [runId, action] of asked) {
        const active = this.active.get(runId);
        if (!active || active.controller.signal.aborted) continue;
        this.deps.log("info", "run cancelled through the database (its signal did not arrive)", {
          run_id: runId,
          thread_id: active.run.thread_id,
          action,
        });
        active.controller.abort(action);
      }
    } catch (err) {
      this.deps.log("warn", "reading cancel requests failed", { error: serializeError(err) });
    } finally {
      this.readingCancels = false;
    }
  }

  /** Stops executing a run whose lease is not this executor's any more, writing nothing. */
  private letGo(runId: string, why: string): void {
    const active = this.active.get(runId);
    if (!active || active.controller.signal.aborted) return;
    this.deps.metrics?.leasesLost.inc();
    this.deps.log("warn", `run stopped here: ${why}`, {
      run_id: runId,
      thread_id: active.run.thread_id,
    });
    active.controller.abort("lease_lost" satisfies AbortReason);
  }

  /**
   * A run was queued (on `threadId`, when one): wakes this pool, this process's streams of the
   * thread, and the workers and streams of other processes (signals).
   */
  notify(threadId?: string): void {
    this.wakeLocal();
    this.queued(threadId);
    if (this.deps.signals && this.deps.signals.kind !== "local") this.deps.signals.wake(threadId);
  }

  private readonly queuedListeners = new Set<(threadId?: string) => void>();

  /**
   * Calls `listener` when a run is queued here or, through signals, in another process (with its
   * thread's id, or none when any thread may have one); returns what stops it. Thread streams
   * look for the thread's next run then instead of at their next poll.
   */
  onQueued(listener: (threadId?: string) => void): () => void {
    this.queuedListeners.add(listener);
    return () => this.queuedListeners.delete(listener);
  }

  private queued(threadId: string | undefined): void {
    for (const l of this.queuedListeners) l(threadId);
  }

  /** Wakes this pool: it claims runs while it has room. */
  private wakeLocal(): void {
    if (this.stopping) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    void this.pump();
  }

  activeCount(): number {
    return this.active.size;
  }

  isActive(runId: string): boolean {
    return this.active.has(runId);
  }

  /**
   * Cancels a run. A running one is aborted (its finished steps stay checkpointed; with
   * `rollback` the thread is restored to its checkpoint before the run and the run deleted).
   * A pending one never starts. Returns false when the run was not cancelled: it had already
   * ended, or it ended on its own before the cancel reached it.
   */
  async cancel(run: Run, action: CancelAction): Promise<boolean> {
    // The caller read `run` a moment ago; it may have been claimed since. Only storage can say
    // whether it is still pending, in the same step that cancels it.
    for (let tries = 0; ; tries++) {
      const active = this.active.get(run.run_id);
      if (active) {
        active.controller.abort(action);
        await active.done;
        // A run whose last step ended as the cancel arrived finished anyway: say so.
        const after = await this.deps.storage.runs.get(run.run_id);
        return (
          !after ||
          after.status === "interrupted" ||
          after.status === "pending" ||
          after.error?.error === "RunNotResponding"
        );
      }
      if (await this.deps.storage.runs.cancelPending(run.run_id, action)) {
        this.deps.hub.close(run.run_id, { status: "interrupted" });
        await this.runner.refreshThread(run.thread_id);
        return true;
      }
      const current = await this.deps.storage.runs.get(run.run_id);
      if (!current || current.status !== "running") return false; // ended (or gone)
      // Claimed a moment ago: this process launches it right after its claim commits. A run
      // that stays running without being ours is another process's: with signals across
      // processes the cancel goes to it, and this waits for the run to stop there.
      if (tries === 10 && this.deps.signals && this.deps.signals.kind !== "local")
        return this.cancelElsewhere(run, action);
      if (tries >= 100) return false;
      await new Promise((resolve) => setTimeout(resolve, tries < 10 ? 0 : 10));
    }
  }

  /** Sends the cancel to the process executing `run`, and waits (a while) for the run to stop. */
  private async cancelElsewhere(run: Run, action: CancelAction): Promise<boolean> {
    // Recorded in the database too: the executing process reads it at its next poll when the
    // signal is lost (Redis down, LISTEN connection lost).
    const duties = this.deps.storage.duties;
    const recorded = await requestCancel(
      duties,
      run.run_id,
      action,
      this.holder.id,
      REMOTE_CANCEL_MS + 5_000,
    ).catch((err: unknown) => {
      this.deps.log("warn", "recording a cancel in the database failed", {
        run_id: run.run_id,
        error: serializeError(err),
      });
      return undefined;
    });
    this.deps.signals!.cancel(run.run_id, action);
    try {
      const deadline = Date.now() + REMOTE_CANCEL_MS;
      for (;;) {
        const after = await this.deps.storage.runs.get(run.run_id);
        if (!after || after.status !== "running") {
          return !after || after.status === "interrupted" || after.status === "pending";
        }
        if (Date.now() > deadline) return false;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      if (recorded) await withdrawCancel(duties, run.run_id, recorded).catch(() => undefined);
    }
  }

  /**
   * Graceful stop: takes no new runs, gives in-flight runs `graceMs` to finish, then aborts
   * the rest and puts them back to pending; they resume from their last checkpoint on the
   * next start.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    clearTimeout(this.orphanTimer);
    const all = [...this.active.values()];
    const finished = Promise.all(all.map((a) => a.done));
    const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), graceMs).unref());
    if ((await Promise.race([finished, timeout])) === "timeout") {
      for (const a of this.active.values()) {
        // A run a user is cancelling keeps that outcome: a second abort leaves its reason.
        a.controller.abort("shutdown");
      }
      await finished;
    }
    // Heartbeats went on through the grace; runs still leased here are free for others now.
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.holder.retire();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      do {
        this.again = false;
        while (!this.stopping && this.active.size < this.deps.concurrency) {
          const run = await this.deps.storage.runs.claimNext({
            owner: this.holder.id,
            ttlMs: this.leaseMs,
          });
          if (!run) break;
          this.launch(run);
        }
      } while (this.again && !this.stopping);
    } catch (err) {
      this.deps.log("error", "run queue failed", { error: serializeError(err) });
      // The database did not answer: a claim may have committed without its answer arriving,
      // leaving a run leased here that nothing executes. Looked for once it answers again.
      if (isTransientStorageFailure(err)) this.takeBackOrphans();
    } finally {
      this.pumping = false;
    }
  }

  private launch(run: Run): void {
    const controller = new AbortController();
    const entry: Active = { run, controller, done: Promise.resolve() };
    this.active.set(run.run_id, entry);
    this.deps.metrics?.runsActive.set(this.active.size);
    const { runTimeoutMs } = this.limits;
    const deadline =
      runTimeoutMs > 0
        ? setTimeout(() => controller.abort("timeout" satisfies AbortReason), runTimeoutMs)
        : undefined;
    deadline?.unref();
    entry.done = this.execute(entry)
      .catch((err) => {
        const error = serializeError(err);
        // The run stays recorded as running under this process's lease, which is no longer
        // renewed for it: when the lease lapses, this process or another takes it up again from
        // its last checkpoint (reclaim).
        if (isTransientStorageFailure(err)) {
          // The database did not answer (Postgres restarting, the network): the run goes on once
          // it is back. Clients waiting here keep waiting for its real end, whichever process
          // finishes it; a request made meanwhile gets a retryable 503.
          this.deps.log(
            "warn",
            "run paused: the database did not answer; it continues from its last checkpoint once the database answers again",
            { run_id: run.run_id, error },
          );
          this.deps.hub.awaitResumption(run.run_id);
          this.takeBackOrphans();
          return;
        }
        this.deps.log("error", "run bookkeeping failed", { run_id: run.run_id, error });
        // Nobody waiting on it here may wait forever: /wait, /join and streams get the failure.
        if (!this.deps.hub.ended(run.run_id)) {
          this.deps.hub.close(run.run_id, {
            status: "error",
            error: {
              error: "RunBookkeepingFailed",
              message: `the run's outcome could not be recorded (${error.message}); it is taken up again from its last checkpoint when its lease lapses`,
            },
          });
        }
      })
      .finally(() => {
        clearTimeout(deadline);
        this.active.delete(run.run_id);
        this.deps.metrics?.runsActive.set(this.active.size);
        this.wakeLocal();
      });
  }

  private async execute(entry: Active): Promise<void> {
    const { run, controller } = entry;
    const { hub, metrics } = this.deps;
    const started = Date.now();
    let outcome: RunOutcome | LostRun;
    try {
      outcome = this.deps.target
        ? await this.deps.target.execute(run, controller.signal)
        : await this.runner.execute(run, controller.signal);
    } catch (err) {
      // Recording the run failed (say, the database stayed locked past its busy timeout), or a
      // step met the database away. Its steps are checkpointed: it goes back to the queue like a
      // run whose thread died; when the database's failure cut it short, that attempt is not
      // counted.
      outcome = {
        kind: "lost",
        reason: `recording the run failed: ${serializeError(err).message}`,
        ...(isTransientStorageFailure(err) ? { storageLost: true } : {}),
      };
    }
    switch (outcome.kind) {
      case "paused":
        return;
      case "rolled_back":
        hub.close(run.run_id, { status: "interrupted" });
        return;
      case "lost":
        return this.recover(run, outcome, controller.signal);
    }
    const { status, values, error } = outcome;
    for (const t of outcome.tokens) metrics?.tokens.inc({ node: t.node, kind: t.kind }, t.tokens);
    metrics?.runsFinished.inc({ status });
    metrics?.runDuration.observe({ status }, (Date.now() - started) / 1000);
    hub.close(run.run_id, {
      status,
      values: outcome.output ?? values,
      ...(error ? { error } : {}),
    });
    if (run.kwargs.webhook) this.deps.webhookQueued?.();
    // After the clients have the result; awaited so a graceful shutdown lets it finish.
    if (this.deps.learning && status === "success" && values)
      await this.learn(run, outcome.graphId, values);
    // The run's history is compacted here, in the server thread, whichever thread executed it:
    // after the outcome is recorded (clients read it next), and off the run threads, whose CPU
    // bounds the throughput (about 0.5 ms a run on SQLite; bench/RESULTS.md, issue 20).
    if (await this.runner.compactAfter(run, outcome)) this.deps.target?.compacted?.(run.thread_id);
  }

  /**
   * The run thread executing `run` died (it ran out of memory, crashed, or was terminated because
   * it stayed blocked), or recording the run failed (the database stayed locked past its busy
   * timeout, say). Its finished steps are checkpointed: the run goes back to the queue and resumes
   * from there, up to MAX_RUN_ATTEMPTS; then it fails, so a run that kills its thread every time
   * cannot take the server down in a loop. A run a user was cancelling ends as interrupted
   * instead, one that ran out of time as "timeout", and one a shutdown aborted waits for the next
   * start. A cancelled run whose thread had to be terminated for it fails (RunNotResponding), or
   * is rolled back here when the cancel was a rollback.
   */
  private async recover(run: Run, lost: LostRun, signal: AbortSignal): Promise<void> {
    const { storage, hub, log } = this.deps;
    const { reason } = lost;
    const ids = { run_id: run.run_id, thread_id: run.thread_id, attempt: run.attempt };
    const why: unknown = signal.aborted ? signal.reason : undefined;
    if (why === "lease_lost") {
      // A run that ended in this very attempt (it was let go as it finished, then its thread was
      // lost) has nobody else to end its stream: end it from its record.
      const stored = await storage.runs.get(run.run_id);
      if (stored && stored.attempt === run.attempt && TERMINAL.has(stored.status)) {
        if (!hub.ended(run.run_id)) {
          hub.close(run.run_id, {
            status: stored.status as RunEnd["status"],
            ...(stored.error ? { error: stored.error } : {}),
          });
        }
        return;
      }
      log("warn", "run lost after its lease lapsed; another worker continues it", {
        ...ids,
        reason,
      });
      return;
    }
    if (why === "timeout") {
      await this.fail(run, "timeout", runTimeoutError(this.limits, lost.unresponsive));
      log("error", "run timed out and its thread was lost", { ...ids, reason });
      return;
    }
    if (lost.unresponsive && why === "rollback") {
      // The thread is gone, so nothing writes to the run's thread any more: restore it here.
      const stored = await storage.runs.get(run.run_id, run.thread_id);
      await this.runner.rollback(stored ?? run);
      hub.close(run.run_id, { status: "interrupted" });
      log("error", "cancelled run did not stop; its thread was replaced, the run rolled back", {
        ...ids,
        reason,
      });
      return;
    }
    if (lost.unresponsive && why === "interrupt") {
      await this.fail(run, "error", notRespondingError("interrupt"));
      log("error", "cancelled run did not stop; its thread was replaced, the run failed", {
        ...ids,
        reason,
      });
      return;
    }
    if (cancelActionOf(signal)) {
      // A user cancelled it: it does not run again. Its thread keeps its latest checkpoint (a
      // rollback that did not get to restore the thread's checkpoint leaves it there).
      await storage.runs.setStatus(run.run_id, "interrupted");
      await this.runner.refreshThread(run.thread_id, undefined, { cancelled: true });
      hub.close(run.run_id, { status: "interrupted" });
      log("warn", "cancelled run lost before it finished", { ...ids, reason });
      return;
    }
    // A shutdown's runs resume on the next start, however many attempts they had, and so do runs
    // the database's failure cut short (up to MAX_STORAGE_LOSSES times).
    const storageLost = lost.storageLost === true && uncounted(run);
    if (storageLost || countedAttempts(run) < MAX_RUN_ATTEMPTS || signal.aborted) {
      if (!(await storage.runs.requeue(run.run_id, run.attempt, { storageLost }))) {
        // Not running as this attempt any more: another worker took it over after its lease.
        log("warn", "run lost before it finished; another worker has it", { ...ids, reason });
        return;
      }
      log(
        storageLost ? "warn" : "error",
        storageLost
          ? "run lost to the database before it finished; re-queued (the attempt does not count)"
          : "run lost before it finished; re-queued",
        { ...ids, reason },
      );
      return;
    }
    await this.fail(run, "error", {
      error: "RunThreadLost",
      message: `the run could not finish: ${reason}`,
    });
    log("error", `run failed: it could not finish in ${MAX_RUN_ATTEMPTS} attempts`, {
      ...ids,
      reason,
    });
  }

  /** Ends a run that did not finish by itself as failed: its record, its thread and its stream. */
  private async fail(run: Run, status: "error" | "timeout", error: RunError): Promise<void> {
    await this.deps.storage.runs.setStatus(run.run_id, status, error);
    await this.runner.refreshThread(run.thread_id, undefined, { error });
    this.deps.metrics?.runsFinished.inc({ status });
    this.deps.hub.publish(run.run_id, "error", error);
    this.deps.hub.close(run.run_id, { status, error });
  }

  private async learn(run: Run, graphId: string, values: Record<string, unknown>): Promise<void> {
    const configurable = run.kwargs.config.configurable;
    const family = run.kwargs.config.metadata?.family;
    try {
      const result = await this.deps.learning!.onRunEnd({
        values,
        run_id: run.run_id,
        thread_id: run.thread_id,
        assistant_id: run.assistant_id,
        graph_id: graphId,
        keep: !run.kwargs.temporary,
        learn: memoryEnabled(configurable) && memoryEnabled(values.options),
        ...(typeof configurable.refinery_partition === "string"
          ? { partition: configurable.refinery_partition }
          : {}),
        ...(typeof family === "string" ? { family } : {}),
      });
      if (result.lessonsAdded || result.lessonsMerged)
        this.deps.log("info", "lessons learned", {
          run_id: run.run_id,
          thread_id: run.thread_id,
          added: result.lessonsAdded,
          merged: result.lessonsMerged,
        });
    } catch (err) {
      this.deps.log("error", "learning from the run failed", {
        run_id: run.run_id,
        error: serializeError(err),
      });
    }
  }

  /**
   * Threads marked busy with no run pending or running: a crash came between recording a run's
   * outcome and its thread's (or a cancel and the thread refresh). Nothing would ever clear them.
   */
  private async repairBusyThreads(): Promise<void> {
    const { storage, log } = this.deps;
    const limit = 100;
    let offset = 0; // busy threads that have runs in flight stay in the result set
    for (;;) {
      const page = await storage.threads.search({
        status: "busy",
        limit,
        offset,
        sort_by: "thread_id",
        sort_order: "asc",
      });
      for (const { thread_id } of page) {
        try {
          if ((await storage.runs.inflight(thread_id)).length > 0) {
            offset += 1;
            continue;
          }
          const [last] = await storage.runs.list(thread_id, { limit: 1 });
          if (last?.kwargs.temporary) {
            await this.deps.checkpoints.deleteThread(thread_id);
            await storage.threads.delete(thread_id);
          } else {
            await this.runner.refreshThread(thread_id, undefined, {
              error: last?.status === "error" ? (last.error ?? undefined) : undefined,
              cancelled: last?.status === "interrupted",
            });
          }
          log("warn", "repaired thread left busy by a previous process", { thread_id });
        } catch (err) {
          offset += 1; // still busy: skip it rather than fail the start-up
          log("error", "could not repair thread left busy", {
            thread_id,
            error: serializeError(err),
          });
        }
      }
      if (page.length < limit) return;
    }
  }
}

/** False when refine options (`memory: {enabled: false}`) switch the lessons memory off. */
function memoryEnabled(options: unknown): boolean {
  const memory = (options as { memory?: { enabled?: unknown } } | null | undefined)?.memory;
  return memory?.enabled !== false;
}
