// Time limits of runs on the server, and the errors a run gets when it passes one: a step that
// does not finish (REFINERY_STEP_TIMEOUT_MS), a run that does not finish (REFINERY_RUN_TIMEOUT_MS),
// a run thread that does not answer a cancel within CANCEL_GRACE_MS. Read once in the server
// thread (start.ts) and handed to the executor, the run threads and their runners.

export interface RunLimits {
  /**
   * A step of a graph may take at most this long (ms): an async step is failed by LangGraph's
   * step timeout, and a run thread whose event loop stays blocked this long (a step that never
   * yields) is terminated and replaced. 0: no limit. REFINERY_STEP_TIMEOUT_MS.
   * @default 300000
   */
  stepTimeoutMs: number;
  /**
   * One attempt of a run may take at most this long (ms); then it is cancelled and ends with
   * status "timeout". Time a run waits for a reviewer (an interrupt) is not counted: that run has
   * ended. 0: no limit. REFINERY_RUN_TIMEOUT_MS.
   * @default 1800000
   */
  runTimeoutMs: number;
}

export const DEFAULT_RUN_LIMITS: RunLimits = { stepTimeoutMs: 300_000, runTimeoutMs: 1_800_000 };

/** A run thread that has not reported a cancelled run finished by then is presumed stuck. */
export const CANCEL_GRACE_MS = 1_000;

/** Starts of a run (claims, crashes of its thread, restarts of the server) before it fails for good. */
export const MAX_RUN_ATTEMPTS = 3;

/**
 * Attempts of a run the database's failure may cut short without counting (Run.lost_to_storage):
 * a run that meets Postgres restarting waits for it, whatever its attempts; past this many such
 * losses they count again, so a database that fails forever cannot keep one run going forever.
 */
export const MAX_STORAGE_LOSSES = 20;

/** Attempts that count against MAX_RUN_ATTEMPTS: those the database's failure did not cut short. */
export const countedAttempts = (run: { attempt: number; lost_to_storage?: number }): number =>
  run.attempt - (run.lost_to_storage ?? 0);

export type RunError = { error: string; message: string };

/** A run's async step outlived LangGraph's step timeout. */
export function stepTimeoutError(limits: RunLimits): RunError {
  return {
    error: "StepTimeout",
    message:
      `a step of the graph did not finish within REFINERY_STEP_TIMEOUT_MS=${limits.stepTimeoutMs} ms; ` +
      "the run was stopped. Make the step faster (or give its calls their own timeouts), or raise " +
      "REFINERY_STEP_TIMEOUT_MS",
  };
}

/** A run outlived REFINERY_RUN_TIMEOUT_MS. */
export function runTimeoutError(limits: RunLimits, threadReplaced = false): RunError {
  return {
    error: "RunTimeout",
    message:
      `the run did not finish within REFINERY_RUN_TIMEOUT_MS=${limits.runTimeoutMs} ms and was ` +
      `cancelled${threadReplaced ? `; it did not stop within ${CANCEL_GRACE_MS / 1000} s, so its run thread was replaced` : ""}. ` +
      "Its finished steps stay checkpointed; raise REFINERY_RUN_TIMEOUT_MS for longer runs",
  };
}

/** A cancelled run's thread did not report it finished within CANCEL_GRACE_MS. */
export function notRespondingError(action: string): RunError {
  return {
    error: "RunNotResponding",
    message:
      `the run did not stop within ${CANCEL_GRACE_MS / 1000} s of its cancel (${action}), so its ` +
      "run thread was terminated and replaced; a step of the graph never returned to the event " +
      "loop (a busy loop or a long synchronous computation). Its finished steps stay checkpointed",
  };
}

/** Why the watchdog terminated a run thread (the runs it had are re-queued). */
export function blockedThreadReason(index: number, limits: RunLimits): string {
  return (
    `run thread ${index} was blocked for more than REFINERY_STEP_TIMEOUT_MS=${limits.stepTimeoutMs} ms ` +
    "(a step that never returns to the event loop, such as a busy loop); it was terminated and replaced"
  );
}
