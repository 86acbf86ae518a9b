// Replicates: the same evaluation on the simulated model under several seeds, pooled. One seed of
// a small dataset decides a comparison by a handful of items (and a rare event such as harm by
// zero or one); the pooled records show the mechanism. Every replicate keeps its own records file,
// so each one resumes on its own, and the pooled figures are computed from the records alone.
import { RefineryError } from "../../core/errors.ts";
import type { ItemRecord, RecordSink } from "./records.ts";
import {
  runEvaluation,
  type EvalProgress,
  type EvalSummary,
  type EvaluationOptions,
  type ModelChoice,
} from "./run.ts";
import { compareWithSelfRefine, summarize, type Comparison } from "./summary.ts";

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
  const { seed: _seed, ...model } = first.summary.model;
  return {
    ...first.summary,
    status: replicates.every((r) => r.summary.status === "complete") ? "complete" : "interrupted",
    model: { ...model, seeds: replicates.map((r) => r.seed) },
    // Items of the dataset(s); each strategy's `items` counts item runs over all seeds.
    items: first.summary.items,
    strategies,
    comparisons: compareWithSelfRefine(strategies),
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

/** The seed of a simulated model choice; undefined for a real model. */
export function seedOf(model: ModelChoice): number | undefined {
  return model.kind === "simulated" ? model.seed : undefined;
}

/**
 * The model of each replicate: the simulated model under seeds seed, seed+1, ...; a real model
 * only once. `input` names the caller's replicates input (`--replicates`, `replicates`) and its fix
 * when replicates are asked of a real model. Pure: callers check before they change anything.
 */
export function replicateModels(
  model: ModelChoice,
  replicates: number,
  input: { field: string; fix: string },
): ModelChoice[] {
  if (model.kind === "simulated")
    return Array.from({ length: replicates }, (_, i) => ({ ...model, seed: model.seed + i }));
  if (replicates > 1)
    throw new RefineryError("invalid_input", "replicates need the offline simulated model", input);
  return [model];
}

export interface ReplicatedEvaluationOptions extends Omit<
  EvaluationOptions,
  "model" | "sink" | "onProgress"
> {
  /** From `replicateModels`: more than one pools the replicates. */
  models: ModelChoice[];
  /** Where a replicate's records go (`seed` is undefined for a real model). */
  sinkFor(seed: number | undefined): RecordSink;
  onProgress?: (progress: EvalProgress, seed: number | undefined) => void;
}

/**
 * Runs each replicate's evaluation in turn, stopping at the first interrupted one. The summary is
 * the evaluation's own for one model, else the replicates pooled.
 */
export async function runReplicated(
  opts: ReplicatedEvaluationOptions,
): Promise<{ summary: EvalSummary; runs: Replicate[] }> {
  const runs: Replicate[] = [];
  for (const model of opts.models) {
    const seed = seedOf(model);
    const result = await runEvaluation({
      ...opts,
      model,
      sink: opts.sinkFor(seed),
      onProgress: (p) => opts.onProgress?.(p, seed),
    });
    runs.push({ seed: seed ?? 0, ...result });
    if (result.summary.status === "interrupted") break;
  }
  const summary = opts.models.length > 1 ? poolReplicates(runs) : runs[0]?.summary;
  if (!summary) throw new Error("runReplicated needs at least one model");
  return { summary, runs };
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
