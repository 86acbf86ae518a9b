// The SQLite run queue at scale: claimNext walks pending runs in seq order through an index and
// stops at the first due one, instead of sorting every pending run on every claim.
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { createSqliteStorage } from "../../core/storage/sqlite/storage.ts";

describe("claimNext with thousands of runs queued", () => {
  it("claims in creation order, skipping busy threads, at a cost that does not grow with the queue", async () => {
    const db = new Database(":memory:");
    const storage = createSqliteStorage(db);
    const queued = 5_000;
    const insert = db.transaction(() => {
      for (let i = 0; i < queued; i++) {
        // Every tenth run shares thread t0, so all but the first of those wait behind it.
        const thread = i % 10 === 0 ? "t0" : `t${i}`;
        db.prepare(
          `INSERT OR IGNORE INTO refinery_threads (thread_id, created_at, updated_at, metadata, status, "values", interrupts, config)
           VALUES (?, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '{}', 'busy', NULL, '{}', '{}')`,
        ).run(thread);
        db.prepare(
          `INSERT INTO refinery_runs (run_id, thread_id, assistant_id, created_at, updated_at, not_before, status, metadata, multitask_strategy, kwargs, attempt, seq)
           VALUES (?, ?, 'a', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 'pending', '{}', 'enqueue', '{"config":{"configurable":{}},"stream_mode":["values"]}', 0, ?)`,
        ).run(`r${i}`, thread, i + 1);
      }
    });
    insert();
    const started = performance.now();
    const claimed: string[] = [];
    for (let i = 0; i < 200; i++) claimed.push((await storage.runs.claimNext())!.run_id);
    const ms = performance.now() - started;
    // r0 runs on t0, so r10, r20, ... wait; the others go in order.
    const expected = Array.from({ length: 300 }, (_, i) => i)
      .filter((i) => i === 0 || i % 10 !== 0)
      .slice(0, 200)
      .map((i) => `r${i}`);
    expect(claimed).toEqual(expected);
    // Sorting all 5,000 pending runs per claim took about 10 ms each (2 s for these 200 claims).
    expect(ms).toBeLessThan(1_000);
    const plan = db
      .prepare("SELECT name FROM pragma_index_list('refinery_runs')")
      .all()
      .map((r) => (r as { name: string }).name);
    expect(plan).toContain("refinery_runs_claim");
    expect(plan).not.toContain("refinery_runs_queue");
    db.close();
  });
});
