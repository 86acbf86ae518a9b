// A run's end crossing its lease heartbeat. A run thread records the run's end (its status: the
// lease is not renewable from then on) and only afterwards does its outcome reach the executor in
// the server thread; a heartbeat in between used to read "not renewed" as "taken over by another
// worker", cancel the run with `lease_lost` and drop its outcome, so its stream never ended and a
// `/wait` on it never answered (under load the cancel also ended the run thread with every run
// on it). The executor here runs on an in-memory SQLite storage with a scripted run target.
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { createSqliteStorage } from "../../core/storage/sqlite/storage.ts";
import type { Run, Storage } from "../../core/storage/types.ts";
import { RunExecutor, type LostRun, type RunTarget } from "../../server/executor.ts";
import { silentLogger } from "../../server/log.ts";
import type { RunOutcome } from "../../server/run-runner.ts";
import { StreamHub } from "../../server/stream-hub.ts";

/** Storage whose renewLeases calls can be awaited: `renewals(n)` settles after n more of them. */
function countingRenewals(storage: Storage) {
  let calls = 0;
  const waiters: { at: number; resolve: () => void }[] = [];
  const renewLeases = storage.runs.renewLeases.bind(storage.runs);
  storage.runs.renewLeases = async (...args) => {
    const lost = await renewLeases(...args);
    calls += 1;
    for (const w of waiters.splice(0)) {
      if (calls >= w.at) w.resolve();
      else waiters.push(w);
    }
    return lost;
  };
  return (n: number) => new Promise<void>((resolve) => waiters.push({ at: calls + n, resolve }));
}

async function queueRun(storage: Storage, runId: string): Promise<void> {
  await storage.threads.create({ thread_id: `thread-${runId}` });
  await storage.runs.create(
    {
      run_id: runId,
      thread_id: `thread-${runId}`,
      assistant_id: "asst",
      graph_id: "refine",
      multitask_strategy: "reject",
      kwargs: { input: {}, config: { configurable: {} }, stream_mode: ["values"] },
    },
    { rejectIfInflight: true },
  );
}

/** An executor of `target`'s runs with a lease heartbeat every 50 ms (leaseMs / 3). */
function executorFor(storage: Storage, hub: StreamHub, target: RunTarget): RunExecutor {
  return new RunExecutor({
    storage,
    hub,
    target,
    registry: {} as never,
    checkpointer: {} as never,
    checkpoints: {} as never,
    log: silentLogger,
    concurrency: 4,
    pollMs: 20,
    leaseMs: 150,
  });
}

describe("a run that ends while its lease is renewed", () => {
  it("keeps its outcome: it is not cancelled, and its stream ends with its status", async () => {
    const storage = createSqliteStorage(new Database(":memory:"));
    const renewals = countingRenewals(storage);
    const hub = new StreamHub();
    const signals: AbortSignal[] = [];
    const target: RunTarget = {
      async execute(run: Run, signal: AbortSignal): Promise<RunOutcome | LostRun> {
        signals.push(signal);
        hub.open(run.run_id, run.attempt);
        // What a run thread does at a run's end: the run's record first (status and thread)...
        await storage.runs.setStatus(run.run_id, "success");
        // ...and the outcome reaches the server thread later: here, after two heartbeats (the
        // second starts only once the first, with whatever it decided, is done).
        await renewals(2);
        return {
          kind: "finished",
          status: "success",
          values: { answer: 4 },
          graphId: "refine",
          tokens: [],
        };
      },
    };
    const executor = executorFor(storage, hub, target);
    await queueRun(storage, "r1");
    const ended = hub.waitForEnd("r1");
    await executor.start();
    try {
      const end = await ended;
      expect(end).toMatchObject({ status: "success", values: { answer: 4 } });
      expect(signals).toHaveLength(1);
      expect(signals[0]!.aborted).toBe(false);
      expect((await storage.runs.get("r1"))?.status).toBe("success");
    } finally {
      await executor.stop(0);
    }
  });

  it("a run let go as it ended whose thread was then lost still ends its stream, from its record", async () => {
    const storage = createSqliteStorage(new Database(":memory:"));
    const renewals = countingRenewals(storage);
    const hub = new StreamHub();
    const target: RunTarget = {
      async execute(run: Run, signal: AbortSignal): Promise<RunOutcome | LostRun> {
        hub.open(run.run_id, run.attempt);
        await storage.runs.setStatus(run.run_id, "error", { error: "Boom", message: "failed" });
        // Another worker took nothing: the lease could not be renewed in time (the executor's
        // own path), the run is cancelled as "lease_lost" and its thread is lost meanwhile.
        await renewals(1);
        (executor as unknown as { letGo(id: string, why: string): void }).letGo(run.run_id, "test");
        expect(signal.reason).toBe("lease_lost");
        return { kind: "lost", reason: "run thread exited with code 1" };
      },
    };
    const executor = executorFor(storage, hub, target);
    await queueRun(storage, "r2");
    const ended = hub.waitForEnd("r2");
    await executor.start();
    try {
      expect(await ended).toMatchObject({
        status: "error",
        error: { error: "Boom", message: "failed" },
      });
    } finally {
      await executor.stop(0);
    }
  });
});
