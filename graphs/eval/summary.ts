// Per-strategy figures computed from the per-item records alone (pure), so every number in a
// report can be recomputed, and tested, from the records file.
import type { ItemRecord } from "./records.ts";

export interface StrategySummary {
  strategy: string;
  items: number;
  correct: number;
  /** correct / items, 0..1 (null with no items). */
  accuracy: number | null;
  first_correct: number;
  first_accuracy: number | null;
  tokens: { prompt: number; completion: number; total: number };
  tokens_per_item: number | null;
  calls: number;
  calls_per_item: number | null;
  /** Sum of the items' wall-clock times (items run concurrently, so this exceeds elapsed time). */
  wall_ms: number;
  wall_ms_per_item: number | null;
  refinements: number;
  refinements_per_item: number | null;
  /** Items whose first draft was wrong and final answer right. */
  rescued: number;
  first_wrong: number;
  /** rescued / first_wrong (null when no first draft was wrong). */
  rescue_rate: number | null;
  /** Items whose first draft was right and final answer wrong. */
  harmed: number;
  first_right: number;
  /** harmed / first_right (null when no first draft was right). */
  harm_rate: number | null;
  /** Tokens per node, summed over items: where the tokens went. */
  tokens_by_node: Record<string, number>;
  stop_reasons: Record<string, number>;
  errors: number;
  simulated: boolean;
  /** Items whose run began with a PASR generation (the pasr strategy). */
  pasr_items: number;
  /** `<refine>` segments written inside those generations, summed. */
  in_generation_refinements: number;
  /** Those generations that were malformed, so the run fell back to proactive. */
  pasr_fallbacks: number;
}

const ratio = (n: number, d: number): number | null => (d === 0 ? null : n / d);

export function summarize(strategy: string, records: readonly ItemRecord[]): StrategySummary {
  const mine = records.filter((r) => r.strategy === strategy);
  const count = (f: (r: ItemRecord) => boolean) => mine.filter(f).length;
  const sum = (f: (r: ItemRecord) => number) => mine.reduce((acc, r) => acc + f(r), 0);
  const items = mine.length;
  const correct = count((r) => r.final_correct);
  const firstRight = count((r) => r.first_correct);
  const rescued = count((r) => !r.first_correct && r.final_correct);
  const harmed = count((r) => r.first_correct && !r.final_correct);
  const tokens = {
    prompt: sum((r) => r.tokens.prompt),
    completion: sum((r) => r.tokens.completion),
    total: sum((r) => r.tokens.total),
  };
  const calls = sum((r) => r.calls);
  const wall = sum((r) => r.wall_ms);
  const refinements = sum((r) => r.refinements);
  const byNode: Record<string, number> = {};
  const stops: Record<string, number> = {};
  for (const r of mine) {
    for (const [node, n] of Object.entries(r.tokens_by_node))
      byNode[node] = (byNode[node] ?? 0) + n;
    const stop = r.stop_reason ?? "none";
    stops[stop] = (stops[stop] ?? 0) + 1;
  }
  return {
    strategy,
    items,
    correct,
    accuracy: ratio(correct, items),
    first_correct: firstRight,
    first_accuracy: ratio(firstRight, items),
    tokens,
    tokens_per_item: ratio(tokens.total, items),
    calls,
    calls_per_item: ratio(calls, items),
    wall_ms: wall,
    wall_ms_per_item: ratio(wall, items),
    refinements,
    refinements_per_item: ratio(refinements, items),
    rescued,
    first_wrong: items - firstRight,
    rescue_rate: ratio(rescued, items - firstRight),
    harmed,
    first_right: firstRight,
    harm_rate: ratio(harmed, firstRight),
    tokens_by_node: byNode,
    stop_reasons: stops,
    errors: count((r) => r.error !== undefined),
    simulated: mine.some((r) => r.simulated),
    pasr_items: count((r) => r.pasr_fallback !== undefined),
    in_generation_refinements: sum((r) => r.in_generation_refinements ?? 0),
    pasr_fallbacks: count((r) => r.pasr_fallback === true),
  };
}

/** One strategy against a baseline (e.g. proactive vs self-refine). */
export interface Comparison {
  strategy: string;
  baseline: string;
  /** strategy tokens / baseline tokens (null when the baseline spent none). */
  token_ratio: number | null;
  /** Accuracy difference in percentage points. */
  accuracy_delta_points: number | null;
  harm_rate_delta: number | null;
}

export function compare(a: StrategySummary, baseline: StrategySummary): Comparison {
  const diff = (x: number | null, y: number | null) => (x === null || y === null ? null : x - y);
  const accuracy = diff(a.accuracy, baseline.accuracy);
  return {
    strategy: a.strategy,
    baseline: baseline.strategy,
    token_ratio: ratio(a.tokens.total, baseline.tokens.total),
    accuracy_delta_points: accuracy === null ? null : Math.round(accuracy * 1000) / 10,
    harm_rate_delta: diff(a.harm_rate, baseline.harm_rate),
  };
}

/** Every strategy but self-refine against self-refine (none when self-refine was not evaluated). */
export function compareWithSelfRefine(strategies: readonly StrategySummary[]): Comparison[] {
  const baseline = strategies.find((s) => s.strategy === "self-refine");
  return baseline ? strategies.filter((s) => s !== baseline).map((s) => compare(s, baseline)) : [];
}
