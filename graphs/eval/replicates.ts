// Replicates: the same evaluation on the simulated model under several seeds, pooled. One seed of
// a small dataset decides a comparison by a handful of items (and a rare event such as harm by
// zero or one); the pooled records show the mechanism. Every replicate keeps its own records file,
// so each one resumes on its own, and the pooled figures are computed from the records alone.
import type { ItemRecord } from "./records.ts";
import type { EvalSummary } from "./run.ts";
import { compare, summarize, type Comparison } from "./summary.ts";

export interface Replicate {
  seed: number;
  summary: EvalSummary;
  records: ItemRecord[];
}

/** One replicate's headline per strategy, for the per-seed table. */
export interface ReplicateLine {
  seed: number;
  status: EvalSummary["status"];
  strategies: {
    strategy: string;
    correct: number;
    items: number;
    tokens: number;
    harmed: number;
    first_right: number;
  }[];
  comparisons: Comparison[];
}

export interface PooledSummary extends EvalSummary {
  /** The seeds pooled, in order; `model.seed` is absent from a pooled summary. */
  seeds: number[];
  replicates: ReplicateLine[];
}

/**
 * Pools replicates of one evaluation (same datasets, strategies and limits; seeds differ): the
 * strategy summaries and comparisons are recomputed from all their records together.
 */
export function poolReplicates(replicates: readonly Replicate[]): PooledSummary {
  const first = replicates[0];
  if (!first) throw new Error("poolReplicates needs at least one replicate");
  const records = replicates.flatMap((r) => r.records);
  const strategies = first.summary.strategies.map((s) => summarize(s.strategy, records));
  const baseline = strategies.find((s) => s.strategy === "self-refine");
  const { seed: _seed, ...model } = first.summary.model;
  return {
    ...first.summary,
    status: replicates.every((r) => r.summary.status === "complete") ? "complete" : "interrupted",
    model: { ...model, seeds: replicates.map((r) => r.seed) },
    // Items of the dataset(s); each strategy's `items` counts item runs over all seeds.
    items: first.summary.items,
    strategies,
    comparisons: baseline
      ? strategies.filter((s) => s !== baseline).map((s) => compare(s, baseline))
      : [],
    evaluated: replicates.reduce((n, r) => n + r.summary.evaluated, 0),
    skipped: replicates.reduce((n, r) => n + r.summary.skipped, 0),
    elapsed_ms: replicates.reduce((n, r) => n + r.summary.elapsed_ms, 0),
    generated_at: new Date().toISOString(),
    seeds: replicates.map((r) => r.seed),
    replicates: replicates.map((r) => ({
      seed: r.seed,
      status: r.summary.status,
      strategies: r.summary.strategies.map((s) => ({
        strategy: s.strategy,
        correct: s.correct,
        items: s.items,
        tokens: s.tokens.total,
        harmed: s.harmed,
        first_right: s.first_right,
      })),
      comparisons: r.summary.comparisons,
    })),
  };
}

export function isPooled(summary: EvalSummary): summary is PooledSummary {
  return Array.isArray((summary as Partial<PooledSummary>).seeds);
}

/** "1-20" for a run of consecutive seeds, else the list. */
export function seedRange(seeds: readonly number[]): string {
  const consecutive = seeds.every((s, i) => i === 0 || s === (seeds[i - 1] ?? s) + 1);
  return consecutive && seeds.length > 1
    ? `${seeds[0]}-${seeds[seeds.length - 1]}`
    : seeds.join(", ");
}
