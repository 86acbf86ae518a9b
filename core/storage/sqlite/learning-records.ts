// What the learning loop keeps with each run, in the server's SQLite file: the run's outcome
// (task, drafts, critiques, verdicts, human decisions, final answer) recorded when it ends, and
// end-user ratings posted to it. Export pages through outcomes by keyset, so millions of rows
// stream with bounded memory and without holding the shared connection between pages.
import { randomUUID } from "node:crypto";
import type Database from "better-sqlite3";
import type { RunOutcome } from "../../learning/outcome.ts";
import { jsonText, packJson } from "../../packing.ts";

export type FeedbackSource = "user" | "human" | "verifier";

export interface RunRating {
  feedback_id: string;
  run_id: string;
  thread_id: string;
  key: string;
  score: number | null;
  value: unknown;
  comment: string | null;
  created_at: string;
}

export interface NewRating {
  run_id: string;
  thread_id: string;
  key: string;
  score?: number;
  value?: unknown;
  comment?: string;
}

/** The export's verdict filter values, for the CLI flag and the HTTP query alike. */
export const OUTCOME_VERDICTS = ["verified", "failed", "any"] as const;

export interface OutcomeFilter {
  graph_id?: string;
  assistant_id?: string;
  /** ISO timestamps, inclusive since, exclusive until, on the run's end time. */
  since?: string;
  until?: string;
  /** `verified`: the final answer passed every hard verifier; `failed`: it did not. */
  verdict?: (typeof OUTCOME_VERDICTS)[number];
  human_approved_only?: boolean;
  /** Only outcomes of runs made in this partition (tenant); all when absent. */
  partition?: string;
  /** Page size of the underlying query (tests use small pages). */
  pageSize?: number;
}

/** The filters that compare a column with the given value, and how. */
const VALUE_FILTERS: ["graph_id" | "assistant_id" | "since" | "until", string][] = [
  ["graph_id", "graph_id = @graph_id"],
  ["assistant_id", "assistant_id = @assistant_id"],
  ["since", "finished_at >= @since"],
  ["until", "finished_at < @until"],
];

export interface OutcomeWithRatings extends RunOutcome {
  ratings: RunRating[];
}

export interface LearningRecords {
  recordOutcome(outcome: RunOutcome): Promise<void>;
  getOutcome(runId: string): Promise<RunOutcome | undefined>;
  addRating(rating: NewRating): Promise<RunRating>;
  ratings(runId: string): Promise<RunRating[]>;
  /** Outcomes oldest first, with their ratings, fetched a page at a time. */
  outcomes(filter?: OutcomeFilter): AsyncGenerator<OutcomeWithRatings>;
}

export function createSqliteLearningRecords(db: Database.Database): LearningRecords {
  db.exec(`CREATE TABLE IF NOT EXISTS refinery_run_outcomes (
    run_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    assistant_id TEXT NOT NULL,
    graph_id TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    verified INTEGER NOT NULL,
    human_approved INTEGER NOT NULL,
    body TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS refinery_run_outcomes_time ON refinery_run_outcomes(finished_at, run_id);
  CREATE TABLE IF NOT EXISTS refinery_run_ratings (
    feedback_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    key TEXT NOT NULL,
    score REAL,
    value TEXT,
    comment TEXT,
    created_at TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS refinery_run_ratings_run ON refinery_run_ratings(run_id, created_at);`);
  // Deleting a run (or its thread) deletes what was kept with it.
  const hasRuns = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'refinery_runs'")
    .get();
  if (hasRuns) {
    db.exec(`CREATE TRIGGER IF NOT EXISTS refinery_run_learning_gone AFTER DELETE ON refinery_runs
      BEGIN
        DELETE FROM refinery_run_outcomes WHERE run_id = OLD.run_id;
        DELETE FROM refinery_run_ratings WHERE run_id = OLD.run_id;
      END;`);
  }
  const upsert = db.prepare(`INSERT INTO refinery_run_outcomes
    (run_id, thread_id, assistant_id, graph_id, finished_at, verified, human_approved, body)
    VALUES (@run_id, @thread_id, @assistant_id, @graph_id, @finished_at, @verified, @human_approved, @body)
    ON CONFLICT(run_id) DO UPDATE SET finished_at = excluded.finished_at,
      verified = excluded.verified, human_approved = excluded.human_approved, body = excluded.body`);
  const getOne = db.prepare("SELECT body FROM refinery_run_outcomes WHERE run_id = ?");
  const insertRating = db.prepare(`INSERT INTO refinery_run_ratings
    (feedback_id, run_id, thread_id, key, score, value, comment, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
  const ratingsOf = db.prepare(
    "SELECT * FROM refinery_run_ratings WHERE run_id = ? ORDER BY created_at, feedback_id",
  );

  function toRating(row: Record<string, unknown>): RunRating {
    return {
      feedback_id: String(row.feedback_id),
      run_id: String(row.run_id),
      thread_id: String(row.thread_id),
      key: String(row.key),
      score: typeof row.score === "number" ? row.score : null,
      value: typeof row.value === "string" ? JSON.parse(row.value) : null,
      comment: typeof row.comment === "string" ? row.comment : null,
      created_at: String(row.created_at),
    };
  }

  return {
    async recordOutcome(o) {
      upsert.run({
        run_id: o.run_id,
        thread_id: o.thread_id,
        assistant_id: o.assistant_id,
        graph_id: o.graph_id,
        finished_at: o.finished_at,
        verified: o.verified ? 1 : 0,
        human_approved: o.human_approved ? 1 : 0,
        body: packJson(o),
      });
    },
    async getOutcome(runId) {
      const row = getOne.get(runId) as { body: string | Uint8Array } | undefined;
      return row ? (JSON.parse(jsonText(row.body)!) as RunOutcome) : undefined;
    },
    async addRating(r) {
      const rating: RunRating = {
        feedback_id: randomUUID(),
        run_id: r.run_id,
        thread_id: r.thread_id,
        key: r.key,
        score: r.score ?? null,
        value: r.value ?? null,
        comment: r.comment ?? null,
        created_at: new Date().toISOString(),
      };
      insertRating.run(
        rating.feedback_id,
        rating.run_id,
        rating.thread_id,
        rating.key,
        rating.score,
        r.value === undefined ? null : JSON.stringify(r.value),
        rating.comment,
        rating.created_at,
      );
      return rating;
    },
    async ratings(runId) {
      return (ratingsOf.all(runId) as Record<string, unknown>[]).map(toRating);
    },
    async *outcomes(filter = {}) {
      const where: string[] = [
        "(finished_at > @after_time OR (finished_at = @after_time AND run_id > @after_id))",
      ];
      const params: Record<string, unknown> = {};
      for (const [key, condition] of VALUE_FILTERS) {
        if (!filter[key]) continue;
        where.push(condition);
        params[key] = filter[key];
      }
      if (filter.verdict === "verified") where.push("verified = 1");
      if (filter.verdict === "failed") where.push("verified = 0");
      if (filter.human_approved_only) where.push("human_approved = 1");
      if (filter.partition !== undefined) {
        where.push(
          "EXISTS (SELECT 1 FROM refinery_runs r WHERE r.run_id = refinery_run_outcomes.run_id AND r.partition = @partition)",
        );
        params.partition = filter.partition;
      }
      const size = Math.max(1, filter.pageSize ?? 500);
      const page = db.prepare(
        `SELECT run_id, finished_at, body FROM refinery_run_outcomes WHERE ${where.join(" AND ")}
         ORDER BY finished_at, run_id LIMIT ${size}`,
      );
      let afterTime = "";
      let afterId = "";
      for (;;) {
        const rows = page.all({ ...params, after_time: afterTime, after_id: afterId }) as {
          run_id: string;
          finished_at: string;
          body: string | Uint8Array;
        }[];
        if (rows.length === 0) return;
        const ids = rows.map((r) => r.run_id);
        const ratingRows = db
          .prepare(
            `SELECT * FROM refinery_run_ratings WHERE run_id IN (${ids.map(() => "?").join(",")})
             ORDER BY created_at, feedback_id`,
          )
          .all(...ids) as Record<string, unknown>[];
        const byRun = new Map<string, RunRating[]>();
        for (const row of ratingRows) {
          const r = toRating(row);
          byRun.set(r.run_id, [...(byRun.get(r.run_id) ?? []), r]);
        }
        for (const row of rows) {
          yield {
            ...(JSON.parse(jsonText(row.body)!) as RunOutcome),
            ratings: byRun.get(row.run_id) ?? [],
          };
        }
        const last = rows[rows.length - 1]!;
        afterTime = last.finished_at;
        afterId = last.run_id;
        if (rows.length < size) return;
      }
    },
  };
}

/** The learning loop's records and lessons store in one SQLite file (the CLI's; the server's backend). */
export function sqliteLearningSource(db: Database.Database): {
  records: LearningRecords;
  store: { db: Database.Database };
} {
  return { records: createSqliteLearningRecords(db), store: { db } };
}
