// What the learning loop keeps with each run (core/storage/sqlite/learning-records.ts has the contract),
// in Postgres (migration 3): outcomes and ratings, exported by keyset pages.
import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { RunOutcome } from "../../learning/outcome.ts";
import { jsonText, packJson } from "../../packing.ts";
import type { LearningRecords, RunRating } from "../sqlite/learning-records.ts";

type Row = Record<string, unknown>;

/** An outcome row's body: its JSONB, or its packed bytes (migration 9). */
function bodyOf(row: { body: RunOutcome | null; packed: Buffer | null }): RunOutcome {
  return row.body ?? (JSON.parse(jsonText(row.packed) ?? "null") as RunOutcome);
}

function toRating(row: Row): RunRating {
  return {
    feedback_id: String(row.feedback_id),
    run_id: String(row.run_id),
    thread_id: String(row.thread_id),
    key: String(row.key),
    score: typeof row.score === "number" ? row.score : null,
    value: row.value ?? null,
    comment: typeof row.comment === "string" ? row.comment : null,
    created_at: String(row.created_at),
  };
}

export function createPostgresLearningRecords(pool: pg.Pool, schema: string): LearningRecords {
  const O = `"${schema}".refinery_run_outcomes`;
  const RR = `"${schema}".refinery_run_ratings`;
  const RUNS = `"${schema}".refinery_runs`;
  return {
    async recordOutcome(o) {
      const packed = packJson(o);
      await pool.query(
        `INSERT INTO ${O} (run_id, thread_id, assistant_id, graph_id, finished_at, verified, human_approved, body, packed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (run_id) DO UPDATE SET finished_at = excluded.finished_at,
           verified = excluded.verified, human_approved = excluded.human_approved,
           body = excluded.body, packed = excluded.packed`,
        [
          o.run_id,
          o.thread_id,
          o.assistant_id,
          o.graph_id,
          o.finished_at,
          Boolean(o.verified),
          Boolean(o.human_approved),
          typeof packed === "string" ? packed : null,
          typeof packed === "string" ? null : packed,
        ],
      );
    },
    async getOutcome(runId) {
      const { rows } = await pool.query<{ body: RunOutcome | null; packed: Buffer | null }>(
        `SELECT body, packed FROM ${O} WHERE run_id = $1`,
        [runId],
      );
      return rows[0] ? bodyOf(rows[0]) : undefined;
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
      await pool.query(
        `INSERT INTO ${RR} (feedback_id, run_id, thread_id, key, score, value, comment, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [
          rating.feedback_id,
          rating.run_id,
          rating.thread_id,
          rating.key,
          rating.score,
          r.value === undefined ? null : JSON.stringify(r.value),
          rating.comment,
          rating.created_at,
        ],
      );
      return rating;
    },
    async ratings(runId) {
      const { rows } = await pool.query<Row>(
        `SELECT * FROM ${RR} WHERE run_id = $1 ORDER BY created_at, feedback_id`,
        [runId],
      );
      return rows.map(toRating);
    },
    async *outcomes(filter = {}) {
      const values: unknown[] = [];
      const bind = (v: unknown) => `$${values.push(v)}`;
      const where: string[] = [];
      if (filter.graph_id) where.push(`graph_id = ${bind(filter.graph_id)}`);
      if (filter.assistant_id) where.push(`assistant_id = ${bind(filter.assistant_id)}`);
      if (filter.since) where.push(`finished_at >= ${bind(filter.since)}`);
      if (filter.until) where.push(`finished_at < ${bind(filter.until)}`);
      if (filter.verdict === "verified") where.push("verified");
      if (filter.verdict === "failed") where.push("NOT verified");
      if (filter.human_approved_only) where.push("human_approved");
      if (filter.partition !== undefined) {
        where.push(
          `EXISTS (SELECT 1 FROM ${RUNS} r WHERE r.run_id = ${O}.run_id AND r.partition = ${bind(filter.partition)})`,
        );
      }
      const size = Math.max(1, filter.pageSize ?? 500);
      const fixed = values.length;
      let afterTime = "";
      let afterId = "";
      for (;;) {
        values.length = fixed;
        const keyset = `(finished_at > ${bind(afterTime)} OR (finished_at = ${bind(afterTime)} AND run_id COLLATE "C" > ${bind(afterId)}))`;
        const { rows } = await pool.query<{
          run_id: string;
          finished_at: string;
          body: RunOutcome | null;
          packed: Buffer | null;
        }>(
          `SELECT run_id, finished_at, body, packed FROM ${O} WHERE ${[keyset, ...where].join(" AND ")}
           ORDER BY finished_at, run_id COLLATE "C" LIMIT ${size}`,
          values,
        );
        if (rows.length === 0) return;
        const ratingRows = await pool.query<Row>(
          `SELECT * FROM ${RR} WHERE run_id = ANY($1) ORDER BY created_at, feedback_id`,
          [rows.map((r) => r.run_id)],
        );
        const byRun = new Map<string, RunRating[]>();
        for (const row of ratingRows.rows) {
          const r = toRating(row);
          byRun.set(r.run_id, [...(byRun.get(r.run_id) ?? []), r]);
        }
        for (const row of rows) yield { ...bodyOf(row), ratings: byRun.get(row.run_id) ?? [] };
        const last = rows[rows.length - 1]!;
        afterTime = last.finished_at;
        afterId = last.run_id;
        if (rows.length < size) return;
      }
    },
  };
}
