// Signals between the processes that share one database: "a run was queued" (wakes idle workers
// at once instead of at their next poll) and "cancel this run" (reaches the process executing
// it). In one process they are plain callbacks (local.ts); across processes Redis pub/sub carries
// them (redis.ts), or Postgres LISTEN/NOTIFY when the processes share Postgres without Redis
// (postgres.ts). Losing a signal loses no run: workers still poll the queue, and the database
// stays the record of every run.
import type { CancelAction } from "../run-runner.ts";

export interface RunSignals {
  /** Where signals go: "local" (this process only), "redis" or "postgres" (LISTEN/NOTIFY). */
  readonly kind: "local" | "redis" | "postgres";
  /**
   * A run was queued (on `threadId`, when known): every worker looks at the queue now, and the
   * thread's streams at its runs.
   */
  wake(threadId?: string): void;
  /** Calls `listener` at each wake; returns what stops it. */
  onWake(listener: (threadId?: string) => void): () => void;
  /** Asks whichever process executes `runId` to cancel it with `action`. */
  cancel(runId: string, action: CancelAction): void;
  onCancel(listener: (runId: string, action: CancelAction) => void): void;
  close(): Promise<void>;
}
