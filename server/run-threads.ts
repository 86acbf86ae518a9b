// Run threads: graphs execute in worker threads, so a server on several cores uses them, while the
// server thread keeps HTTP, the run queue, the stream hub and what follows each run. Each thread
// opens its own runtime (runtime.ts) on the same SQLite file, runs what it is handed
// (run-thread.ts) and sends back stream chunks as JSON text, log entries and the run's outcome.
// A thread that dies loses nothing checkpointed: its runs come back as "lost" and the executor
// re-queues them; a new thread takes its place. A thread is also ended from here when it does not
// answer: a run cancelled there that is not reported finished within CANCEL_GRACE_MS (the thread
// is presumed stuck in a step that never yields), or no heartbeat for REFINERY_STEP_TIMEOUT_MS.
import { availableParallelism } from "node:os";
import { SHARE_ENV, Worker } from "node:worker_threads";
import { RefineryError } from "../core/errors.ts";
import { writerTurnBuffer } from "../core/storage/sqlite/writer-turn.ts";
import type { Run } from "../core/storage/types.ts";
import type { LostRun, RunTarget } from "./executor.ts";
import type { Logger, LogLevel } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import {
  blockedThreadReason,
  CANCEL_GRACE_MS,
  DEFAULT_RUN_LIMITS,
  type RunLimits,
} from "./run-limits.ts";
import type { RunOutcome } from "./run-runner.ts";
import { JsonText } from "./serde.ts";
import type { StreamHub } from "./stream-hub.ts";
import { threadScript } from "./thread-entry.ts";

export interface RunThreadData {
  entry: string;
  /** 1-based; run threads' log entries carry it as `run_thread`. */
  index: number;
  env: Record<string, string | undefined>;
  configPath?: string;
  limits: RunLimits;
  /** How often the thread posts a heartbeat (ms). */
  beatMs: number;
  /** The server thread's SQLite writer turn (core/storage/sqlite/writer-turn.ts). */
  writerTurn?: SharedArrayBuffer;
}

export type ToThread =
  | { type: "run"; run: Run }
  | { type: "abort"; runId: string; reason: unknown }
  | { type: "graph"; graphId: string }
  | { type: "lessons"; assistantId: string }
  /** The server thread compacted this thread's checkpoints: the stored bytes a saver counted shrank. */
  | { type: "compacted"; threadId: string }
  | { type: "close" };

export type FromThread =
  | { type: "ready" }
  /** Posted from the thread's event loop every `beatMs`: a blocked loop posts none. */
  | { type: "beat" }
  | { type: "failed"; error: { error: string; message: string }; retryable?: boolean }
  | { type: "open"; runId: string; attempt: number }
  | { type: "event"; runId: string; event: string; json: string }
  | { type: "log"; level: LogLevel; msg: string; fields?: Record<string, unknown> }
  | {
      type: "done";
      runId: string;
      outcome?: RunOutcome;
      failure?: { error: string; message: string };
      /** The failure was the database not answering (core/storage/transient.ts). */
      storageLost?: boolean;
    };

interface Pending {
  resolve(outcome: RunOutcome | LostRun): void;
  reject(err: Error): void;
}

interface Slot {
  /** 1-based, as run threads' log entries name it. */
  index: number;
  worker: Worker;
  ready: Promise<void>;
  runs: Map<string, Pending>;
  /** Started and not exited (counted in refinery_run_threads). */
  live: boolean;
  dead: boolean;
  /** When the last heartbeat arrived (ms since epoch). */
  lastBeat: number;
  /** Why this thread was terminated from here, when it was. */
  ended?: string;
  /** Cancelled runs that did not stop, for which the thread was terminated. */
  unresponsive: Set<string>;
  /** Runs handed to this thread that wait for it to be ready. */
  waiting: number;
}

/**
 * How many run threads: REFINERY_RUN_THREADS, or "auto": one per core but one (the server thread,
 * which serves HTTP, claims runs and fans out their events, keeps a core busy under load) up to 4
 * on a machine with more than one core, none (graphs run in the server thread) on one core. On the
 * 2-core bench machine one run thread did at least the runs/s of two, with about 75 MiB less RSS
 * under load (bench/RESULTS.md, issue 20).
 */
export function runThreadCount(raw: string | number | undefined): number {
  if (raw === undefined || raw === "" || raw === "auto") {
    const cores = availableParallelism();
    return cores > 1 ? Math.min(cores - 1, 4) : 0;
  }
  const n = typeof raw === "number" ? raw : Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 64) {
    throw new RefineryError("invalid_config", `REFINERY_RUN_THREADS must be "auto" or 0-64`, {
      field: "REFINERY_RUN_THREADS",
      fix: 'use "auto", 0 (graphs run in the server thread) or a thread count such as 2',
    });
  }
  return n;
}

interface PoolOptions {
  count: number;
  env: Record<string, string | undefined>;
  configPath?: string;
  hub: StreamHub;
  log: Logger;
  metrics?: Metrics;
  limits?: RunLimits;
  /**
   * Threads started before the first run (default: all); the others start with it. Each thread
   * holds its own runtime (about 48 MiB RSS), so an idle server keeps fewer.
   */
  idle?: number;
  /**
   * Each thread's heap limit (V8's old generation, MiB; REFINERY_RUN_THREAD_HEAP_MB); 0 or unset:
   * V8's default. A thread that reaches it dies like any other (its runs are re-queued).
   */
  heapMb?: number;
}

/**
 * Each run thread's young generation (MiB; V8 makes its semi-spaces a third of it, 4 MiB here).
 * V8's default (16 MiB semi-spaces on 64 bits) kept 32 MiB of new space committed per thread
 * under load, and `--no-memory-reducer` never gives it back; a run's garbage is short-lived and
 * small, so a small nursery costs more scavenges but no measured throughput (bench/RESULTS.md).
 */
export const RUN_THREAD_YOUNG_MB = 12;

/** The first and the longest wait before a thread whose start failed on a retryable error is started again. */
const RESTART_FIRST_MS = 1_000;
const RESTART_MAX_MS = 30_000;

export class RunThreadPool implements RunTarget {
  private readonly slots: Slot[] = [];
  private closing = false;
  private watchdog?: NodeJS.Timeout;
  private lastWatch = Date.now();
  /** How often the watchdog looks at the heartbeats (ms). */
  private readonly watchMs: number;

  private constructor(
    private readonly options: {
      data: Omit<RunThreadData, "entry" | "index">;
      hub: StreamHub;
      log: Logger;
      metrics?: Metrics;
      heapMb?: number;
    },
  ) {
    const { stepTimeoutMs } = options.data.limits;
    this.watchMs = Math.min(1_000, Math.max(50, Math.floor(stepTimeoutMs / 4)));
  }

  /** Starts `count` threads and waits until each has opened its runtime. */
  static async start(options: PoolOptions): Promise<RunThreadPool> {
    const pool = RunThreadPool.launch(options);
    try {
      await pool.ready();
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /**
   * Starts `count` threads without waiting for them: a run handed to a thread that is still
   * opening its runtime waits for it (the server listens meanwhile; see ready()).
   */
  static launch(options: PoolOptions): RunThreadPool {
    const limits = options.limits ?? DEFAULT_RUN_LIMITS;
    // Several beats fit in the step limit even when it is short (tests); at most 4 per second.
    const beatMs =
      limits.stepTimeoutMs > 0 ? Math.min(250, Math.max(10, limits.stepTimeoutMs / 8)) : 250;
    const pool = new RunThreadPool({
      data: { env: { ...options.env }, configPath: options.configPath, limits, beatMs },
      hub: options.hub,
      log: options.log,
      metrics: options.metrics,
      heapMb: options.heapMb,
    });
    pool.count = options.count;
    const now = Math.min(options.count, options.idle ?? options.count);
    for (let i = 0; i < now; i++) pool.slots.push(pool.spawn(i + 1));
    if (limits.stepTimeoutMs > 0) {
      pool.watchdog = setInterval(() => pool.watch(), pool.watchMs);
      pool.watchdog.unref();
    }
    return pool;
  }

  /** Settles once every thread launched with the pool has opened its runtime, or one failed to. */
  async ready(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.ready));
  }

  /** How many threads the pool runs (some start only with the first run, see `idle`). */
  get size(): number {
    return this.count;
  }

  private count = 0;

  /** Threads started so far (size, once a run came). */
  get started(): number {
    return this.slots.length;
  }

  execute(run: Run, signal: AbortSignal): Promise<RunOutcome | LostRun> {
    // The first run starts the threads an idle pool did not.
    while (this.slots.length < this.count && !this.closing) {
      this.slots.push(this.spawn(this.slots.length + 1));
    }
    const slot = this.pick();
    if (!slot) {
      // A thread that could not start because the database did not answer starts again soon:
      // the run waits for it instead of using up its attempts.
      if (this.restart) return this.restart.then(() => this.execute(run, signal));
      return Promise.resolve({ kind: "lost", reason: "no run thread is alive" });
    }
    slot.waiting += 1;
    const handed = slot.ready.finally(() => (slot.waiting -= 1));
    return handed.then(
      () =>
        new Promise<RunOutcome | LostRun>((resolve, reject) => {
          if (slot.dead) return resolve({ kind: "lost", reason: "run thread stopped" });
          let grace: NodeJS.Timeout | undefined;
          const onAbort = () => {
            slot.worker.postMessage({
              type: "abort",
              runId: run.run_id,
              reason: signal.reason as unknown,
            } satisfies ToThread);
            // A thread that reports nothing within the grace is stuck in a step that never
            // yields: only terminating it stops that step.
            grace = setTimeout(() => {
              if (!slot.runs.has(run.run_id) || slot.dead) return;
              slot.unresponsive.add(run.run_id);
              this.end(
                slot,
                `run ${run.run_id} did not stop within ${CANCEL_GRACE_MS} ms of its cancel (${String(signal.reason)})`,
              );
            }, CANCEL_GRACE_MS);
          };
          const settle = () => {
            signal.removeEventListener("abort", onAbort);
            clearTimeout(grace);
          };
          slot.runs.set(run.run_id, {
            resolve: (o) => (settle(), resolve(o)),
            reject: (e) => (settle(), reject(e)),
          });
          slot.worker.postMessage({ type: "run", run } satisfies ToThread);
          if (signal.aborted) onAbort();
          else signal.addEventListener("abort", onAbort, { once: true });
        }),
      (err: Error) =>
        this.restart
          ? this.restart.then(() => this.execute(run, signal))
          : ({ kind: "lost", reason: err.message } as LostRun),
    );
  }

  /** A replacement for a thread whose start failed on a retryable error, starting after a delay. */
  private restart?: Promise<void>;
  /** The next such delay: 1 s, doubling to 30 s; back to 1 s once a thread starts. */
  private restartDelayMs = RESTART_FIRST_MS;

  /**
   * The thread of `slot` could not open its runtime because the database did not answer: starts
   * a new one in its place after the delay (a thread that failed for another reason, say a graph
   * module that does not load, is not started again: it would fail the same way).
   */
  private restartLater(slot: Slot, error: string): void {
    if (this.restart || this.closing) return;
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(RESTART_MAX_MS, delay * 2);
    this.options.log(
      "warn",
      "a run thread could not start: the database did not answer; starting it again",
      {
        run_thread: slot.index,
        in_ms: delay,
        error,
      },
    );
    this.restart = new Promise<void>((resolve) => {
      setTimeout(() => {
        this.restart = undefined;
        if (!this.closing) {
          const index = this.slots.indexOf(slot);
          const next = this.spawn(slot.index);
          if (index >= 0) this.slots[index] = next;
          else this.slots.push(next);
          next.ready.catch(() => undefined); // observed by execute; a failure may restart again
        }
        resolve();
      }, delay).unref();
    });
  }

  /** A declarative graph was registered or deleted: every thread re-reads it before its next run. */
  graphChanged(graphId: string): void {
    this.broadcast({ type: "graph", graphId });
  }

  /** Lessons of an assistant changed here: every thread's next retrieve reads them again. */
  lessonsChanged(assistantId: string): void {
    this.broadcast({ type: "lessons", assistantId });
  }

  /** A thread's checkpoints were compacted here (see RunExecutor.execute). */
  compacted(threadId: string): void {
    this.broadcast({ type: "compacted", threadId });
  }

  private broadcast(message: ToThread): void {
    for (const slot of this.slots) if (!slot.dead) slot.worker.postMessage(message);
  }

  /** Lets the threads finish what they run, close their databases and exit (call after the executor stopped). */
  async close(timeoutMs = 5_000): Promise<void> {
    this.closing = true;
    clearInterval(this.watchdog);
    await Promise.all(
      this.slots.map(async (slot) => {
        if (slot.dead) return;
        const exited = new Promise<void>((r) => slot.worker.once("exit", () => r()));
        slot.worker.postMessage({ type: "close" } satisfies ToThread);
        const timer = setTimeout(() => void slot.worker.terminate(), timeoutMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  /**
   * Terminates a thread that does not answer; its exit hands its runs back as lost (the
   * unresponsive ones marked so) and a new thread replaces it.
   */
  private end(slot: Slot, why: string): void {
    if (slot.dead || slot.ended) return;
    slot.ended = why;
    this.options.log("error", "run thread terminated", {
      run_thread: slot.index,
      reason: why,
      runs: [...slot.runs.keys()],
    });
    void slot.worker.terminate();
  }

  /**
   * The watchdog: a started thread whose heartbeat is older than REFINERY_STEP_TIMEOUT_MS has had
   * its event loop blocked that long. When this thread itself was blocked (its timer ran late),
   * beats may be waiting in the queue unread, so that round only resets the clocks.
   */
  private watch(): void {
    const now = Date.now();
    const late = now - this.lastWatch > 4 * this.watchMs;
    this.lastWatch = now;
    const { limits } = this.options.data;
    for (const slot of this.slots) {
      if (!slot.live || slot.dead || slot.ended) continue;
      if (late) slot.lastBeat = now;
      else if (now - slot.lastBeat > limits.stepTimeoutMs)
        this.end(slot, blockedThreadReason(slot.index, limits));
    }
  }

  /**
   * The thread with the fewest runs (not one being terminated), counting those waiting for it to
   * start (so runs that arrive while the threads start are spread over them).
   */
  private pick(): Slot | undefined {
    let best: Slot | undefined;
    const load = (s: Slot) => s.runs.size + s.waiting;
    for (const slot of this.slots) {
      if (slot.dead || slot.ended) continue;
      if (!best || load(slot) < load(best)) best = slot;
    }
    return best;
  }

  private spawn(index: number): Slot {
    const { hub, log } = this.options;
    const { script, entry } = threadScript("run-thread");
    const worker = new Worker(script, {
      workerData: {
        ...this.options.data,
        index,
        entry,
        writerTurn: writerTurnBuffer(),
      } satisfies RunThreadData,
      // From the sources, run-thread.mjs loads tsx; flags such as --cpu-prof stay with this thread.
      execArgv: [],
      // Graph code reads process.env as it would in the server thread (and sees later changes).
      env: SHARE_ENV,
      resourceLimits: {
        maxYoungGenerationSizeMb: RUN_THREAD_YOUNG_MB,
        ...(this.options.heapMb ? { maxOldGenerationSizeMb: this.options.heapMb } : {}),
      },
    });
    let markReady!: () => void;
    let markFailed!: (err: Error) => void;
    const slot: Slot = {
      index,
      worker,
      runs: new Map(),
      live: false,
      dead: false,
      lastBeat: Date.now(),
      unresponsive: new Set(),
      waiting: 0,
      ready: new Promise<void>((resolve, reject) => {
        markReady = resolve;
        markFailed = reject;
      }),
    };
    slot.ready.catch(() => {}); // observed by execute/start; never an unhandled rejection
    worker.on("message", (batch: FromThread[]) => {
      for (const m of batch) {
        switch (m.type) {
          case "beat":
            slot.lastBeat = Date.now();
            break;
          case "event":
            hub.publish(m.runId, m.event, new JsonText(m.json));
            break;
          case "open":
            hub.open(m.runId, m.attempt);
            break;
          case "log":
            log(m.level, m.msg, m.fields);
            break;
          case "done": {
            const pending = slot.runs.get(m.runId);
            slot.runs.delete(m.runId);
            if (m.outcome) pending?.resolve(m.outcome);
            else {
              const message = m.failure?.message ?? "run failed in its thread";
              // As a retryable storage error, so the executor counts it as the database's doing.
              pending?.reject(
                m.storageLost
                  ? new RefineryError("storage_error", message, { retryable: true })
                  : new Error(message),
              );
            }
            break;
          }
          case "ready":
            this.restartDelayMs = RESTART_FIRST_MS;
            markReady();
            slot.live = true;
            slot.lastBeat = Date.now();
            this.options.metrics?.runThreads.inc();
            break;
          case "failed":
            // Before the runs waiting for this thread hear of it, so they wait for its successor.
            if (m.retryable) this.restartLater(slot, m.error.message);
            markFailed(new Error(`a run thread could not start: ${m.error.message}`));
            break;
        }
      }
    });
    worker.on("error", (err) => {
      log("error", "run thread crashed", { error: { error: err.name, message: err.message } });
    });
    worker.on("exit", (code) => {
      const started = slot.live;
      slot.dead = true;
      if (started) this.options.metrics?.runThreads.dec();
      slot.live = false;
      markFailed(new Error(`run thread exited with code ${code}`));
      const reason = slot.ended ?? `run thread exited with code ${code}`;
      for (const [runId, pending] of slot.runs) {
        pending.resolve({
          kind: "lost",
          reason,
          ...(slot.unresponsive.has(runId) ? { unresponsive: true } : {}),
        });
      }
      slot.runs.clear();
      // A thread that never started (its runtime failed to open) is not replaced here: the next
      // one would fail the same way, in a loop, and its runs fail after their attempts. One that
      // failed only because the database did not answer was already started again (restartLater).
      if (this.closing || !started) return;
      this.options.metrics?.runThreadExits.inc();
      // Replace it; runs it had are re-queued by the executor and may land on the new one.
      const index = this.slots.indexOf(slot);
      const next = this.spawn(index + 1);
      if (index >= 0) this.slots[index] = next;
      next.ready.catch((err: Error) =>
        log("error", "replacement run thread failed to start", { error: err.message }),
      );
    });
    return slot;
  }
}
