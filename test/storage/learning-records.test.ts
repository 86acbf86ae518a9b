// The records the learning loop keeps with runs, on a real SQLite file: outcomes paged by keyset
// (every row once, in order, with small pages), the export filters, ratings, and deletion with
// the run. Then how Postgres stores an outcome's body (packed, older JSONB rows still read).
import { deflateRawSync } from "node:zlib";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { outcomeFromValues } from "../../core/learning/outcome.ts";
import { createPostgresLearningRecords } from "../../core/storage/postgres/learning-records.ts";
import { migrate } from "../../core/storage/postgres/migrations.ts";
import { createSqliteLearningRecords } from "../../core/storage/sqlite/learning-records.ts";
import { TEST_POSTGRES_URL } from "../support/test-backend.ts";
import { createSqliteStorage } from "../../core/storage/sqlite/storage.ts";
import { refinedValues } from "../learning/fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "refinery-records-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function outcome(
  i: number,
  over: Partial<{ graph_id: string; verified: boolean; approved: boolean }> = {},
) {
  const o = outcomeFromValues(refinedValues(over.approved ? { stopReason: "approved" } : {}), {
    run_id: `run-${String(i).padStart(3, "0")}`,
    thread_id: `thread-${i}`,
    assistant_id: "a",
    graph_id: over.graph_id ?? "refine",
    // Several runs end in the same millisecond: the keyset must still see each once.
    finished_at: new Date(Date.UTC(2026, 10, 1 + Math.floor(i / 3))).toISOString(),
  })!;
  return { ...o, verified: over.verified ?? true };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe("learning records (SQLite)", () => {
  it("pages through every outcome once, in end-time order, and applies the filters", async () => {
    const db = new Database(join(dir, "paging.db"));
    const records = createSqliteLearningRecords(db);
    for (let i = 24; i >= 0; i -= 1)
      await records.recordOutcome(
        outcome(i, {
          graph_id: i % 5 === 0 ? "other" : "refine",
          verified: i % 2 === 0,
          approved: i % 7 === 0,
        }),
      );
    const all = await collect(records.outcomes({ pageSize: 4 }));
    expect(all.map((o) => o.run_id)).toEqual(
      Array.from({ length: 25 }, (_, i) => `run-${String(i).padStart(3, "0")}`),
    );
    const other = await collect(records.outcomes({ pageSize: 2, graph_id: "other" }));
    expect(other.map((o) => o.run_id)).toEqual([
      "run-000",
      "run-005",
      "run-010",
      "run-015",
      "run-020",
    ]);
    const verified = await collect(records.outcomes({ pageSize: 3, verdict: "verified" }));
    expect(verified.every((o) => o.verified)).toBe(true);
    expect(verified).toHaveLength(13);
    expect(await collect(records.outcomes({ verdict: "failed" }))).toHaveLength(12);
    const approved = await collect(records.outcomes({ human_approved_only: true }));
    expect(approved.map((o) => o.run_id)).toEqual(["run-000", "run-007", "run-014", "run-021"]);
    const window = await collect(
      records.outcomes({
        since: "2026-11-03T00:00:00.000Z",
        until: "2026-11-05T00:00:00.000Z",
        pageSize: 2,
      }),
    );
    expect(window.map((o) => o.run_id)).toEqual([
      "run-006",
      "run-007",
      "run-008",
      "run-009",
      "run-010",
      "run-011",
    ]);
    // Recording again replaces, never duplicates.
    await records.recordOutcome(outcome(3));
    expect(await collect(records.outcomes())).toHaveLength(25);
    db.close();
  });

  it("keeps ratings with the run and deletes both with the run", async () => {
    const db = new Database(join(dir, "ratings.db"));
    const storage = createSqliteStorage(db);
    const records = createSqliteLearningRecords(db);
    const thread = await storage.threads.create({
      thread_id: "00000000-0000-4000-8000-000000000001",
    });
    const created = await storage.runs.create(
      {
        run_id: "00000000-0000-4000-8000-0000000000a1",
        thread_id: thread.thread_id,
        assistant_id: "a",
        graph_id: "refine",
        multitask_strategy: "reject",
        kwargs: { config: { configurable: {} }, stream_mode: ["values"] },
      },
      { rejectIfInflight: false },
    );
    if (!created.created) throw new Error("run not created");
    const runId = created.run.run_id;
    await records.recordOutcome({ ...outcome(1), run_id: runId, thread_id: thread.thread_id });
    const r = await records.addRating({
      run_id: runId,
      thread_id: thread.thread_id,
      key: "user_score",
      score: 0.25,
      value: "meh",
      comment: "too long",
    });
    expect(await records.ratings(runId)).toEqual([r]);
    const [withRatings] = await collect(records.outcomes());
    expect(withRatings!.ratings).toEqual([r]);
    await storage.threads.delete(thread.thread_id);
    expect(await records.getOutcome(runId)).toBeUndefined();
    expect(await records.ratings(runId)).toEqual([]);
    await storage.close();
  });

  it("stores an outcome's body deflated and reads it back as recorded; text rows and rows deflated without the dictionary still read", async () => {
    const db = new Database(join(dir, "packed.db"));
    const records = createSqliteLearningRecords(db);
    const recorded = outcome(1);
    await records.recordOutcome(recorded);
    const row = db
      .prepare("SELECT body, typeof(body) AS kind FROM refinery_run_outcomes WHERE run_id = ?")
      .get(recorded.run_id) as { body: Uint8Array; kind: string };
    expect(row.kind).toBe("blob");
    expect(row.body.length).toBeLessThan(JSON.stringify(recorded).length / 2);
    expect(await records.getOutcome(recorded.run_id)).toEqual(recorded);
    // A row written before bodies were packed: JSON text.
    const older = outcome(2);
    db.prepare(
      `INSERT INTO refinery_run_outcomes
       (run_id, thread_id, assistant_id, graph_id, finished_at, verified, human_approved, body)
       VALUES (?, ?, 'a', 'refine', ?, 1, 0, ?)`,
    ).run(older.run_id, older.thread_id, older.finished_at, JSON.stringify(older));
    expect(await records.getOutcome(older.run_id)).toEqual(older);
    // A row packed before the state dictionary: raw deflate of the JSON, no format byte.
    const deflated = outcome(3);
    db.prepare(
      `INSERT INTO refinery_run_outcomes
       (run_id, thread_id, assistant_id, graph_id, finished_at, verified, human_approved, body)
       VALUES (?, ?, 'a', 'refine', ?, 1, 0, ?)`,
    ).run(
      deflated.run_id,
      deflated.thread_id,
      deflated.finished_at,
      deflateRawSync(JSON.stringify(deflated)),
    );
    expect(await records.getOutcome(deflated.run_id)).toEqual(deflated);
    const all = await collect(records.outcomes());
    expect(all.map(({ ratings, ...o }) => ({ o, ratings }))).toEqual([
      { o: recorded, ratings: [] },
      { o: older, ratings: [] },
      { o: deflated, ratings: [] },
    ]);
    db.close();
  });
});

describe("learning records (Postgres)", () => {
  it("stores an outcome's body packed, reads it back as recorded, and still reads older JSONB rows", async () => {
    const schema = `refinery_records_${process.pid}_${randomBytes(3).toString("hex")}`;
    const pool = new pg.Pool({ connectionString: TEST_POSTGRES_URL, max: 2 });
    try {
      await migrate(pool, schema);
      const records = createPostgresLearningRecords(pool, schema);
      const recorded = outcome(1);
      await records.recordOutcome(recorded);
      const { rows } = await pool.query<{ body: unknown; packed: Buffer | null }>(
        `SELECT body, packed FROM "${schema}".refinery_run_outcomes WHERE run_id = $1`,
        [recorded.run_id],
      );
      expect(rows[0]!.body).toBeNull();
      expect(rows[0]!.packed!.length).toBeLessThan(JSON.stringify(recorded).length / 2);
      expect(await records.getOutcome(recorded.run_id)).toEqual(recorded);
      // Recorded again (a run's outcome is upserted): still one row, the new body.
      const again = { ...recorded, verified: false };
      await records.recordOutcome(again);
      expect(await records.getOutcome(recorded.run_id)).toEqual(again);
      // A row written before migration 9: its body as JSONB, no packed bytes.
      const older = outcome(2);
      await pool.query(
        `INSERT INTO "${schema}".refinery_run_outcomes
         (run_id, thread_id, assistant_id, graph_id, finished_at, verified, human_approved, body)
         VALUES ($1, $2, 'a', 'refine', $3, true, false, $4)`,
        [older.run_id, older.thread_id, older.finished_at, JSON.stringify(older)],
      );
      expect(await records.getOutcome(older.run_id)).toEqual(older);
      const all = await collect(records.outcomes());
      expect(all.map(({ ratings, ...o }) => ({ o, ratings }))).toEqual([
        { o: again, ratings: [] },
        { o: older, ratings: [] },
      ]);
    } finally {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    }
  });
});
