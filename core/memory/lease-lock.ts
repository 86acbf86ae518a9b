// A lock across processes and threads for the lessons memory's read-modify-write steps, made of a
// lease in the database every process shares (storage.duties: one row per name, taken when free
// or lapsed). LessonMemory serialises an assistant's steps in its own instance; this makes them
// exclusive across instances too (run threads, api and worker processes on one SQLite file or one
// Postgres schema), so two runs ending together in two processes do not lose a lesson's counts.
import { randomUUID } from "node:crypto";
import { RefineryError } from "../errors.ts";
import type { DutyLeaseStore } from "../storage/types.ts";

/** Runs `step` while holding the lock `name`. */
export type StepLock = <T>(name: string, step: () => Promise<T>) => Promise<T>;

export interface LeaseLockOptions {
  /**
   * How long the lock stays taken without a release (a holder that died frees it then). A step
   * longer than this (a slow embeddings call) is no longer exclusive. @default 15000
   */
  ttlMs?: number;
  /** How long to wait for the lock before failing (retryable). @default 30000 */
  waitMs?: number;
}

export function leaseLock(leases: DutyLeaseStore, options: LeaseLockOptions = {}): StepLock {
  const owner = `lock:${randomUUID()}`;
  const ttlMs = options.ttlMs ?? 15_000;
  const waitMs = options.waitMs ?? 30_000;
  return async (name, step) => {
    const deadline = Date.now() + waitMs;
    let pause = 5;
    while (!(await leases.acquire(name, owner, ttlMs))) {
      if (Date.now() > deadline) {
        throw new RefineryError("conflict", `"${name}" stayed locked for ${waitMs} ms`, {
          fix: "another process is writing these lessons; retry",
          retryable: true,
        });
      }
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(100, pause * 2);
    }
    try {
      return await step();
    } finally {
      await leases.release(name, owner).catch(() => undefined);
    }
  };
}
