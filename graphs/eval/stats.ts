// Paired statistics for comparing two strategies on the same items: the accuracy difference and
// the token ratio with percentile bootstrap intervals (resampling items, seeded), and McNemar's
// test on the discordant pairs (exact binomial when they are few). Pure: no I/O.
import { mulberry32 } from "../../core/random.ts";
import type { ItemRecord } from "./records.ts";

/** McNemar's test on paired right/wrong outcomes. */
export interface McNemar {
  /** Pairs the strategy got right and the baseline wrong. */
  b: number;
  /** Pairs the strategy got wrong and the baseline right. */
  c: number;
  /** Two-sided p-value; 1 when there is no discordant pair. */
  p: number;
  /** `exact`: binomial (b + c < MCNEMAR_EXACT_BELOW); `chi2`: chi-square with continuity correction. */
  method: "exact" | "chi2";
}

/** Discordant counts below this use the exact binomial test. */
export const MCNEMAR_EXACT_BELOW = 25;

/** Complementary error function (Numerical Recipes' erfcc; fractional error below 1.2e-7). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + z / 2);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t *
                              (-1.13520398 +
                                t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** P(X <= k) for X ~ Binomial(n, 1/2), summed in log space so large n cannot overflow. */
function binomialHalfCdf(k: number, n: number): number {
  let logTerm = -n * Math.LN2; // log C(n, 0) / 2^n
  let sum = Math.exp(logTerm);
  for (let i = 1; i <= k; i++) {
    logTerm += Math.log(n - i + 1) - Math.log(i);
    sum += Math.exp(logTerm);
  }
  return sum;
}

export function mcnemar(b: number, c: number): McNemar {
  const n = b + c;
  if (n === 0) return { b, c, p: 1, method: "exact" };
  if (n < MCNEMAR_EXACT_BELOW) {
    return { b, c, p: Math.min(1, 2 * binomialHalfCdf(Math.min(b, c), n)), method: "exact" };
  }
  const chi2 = (Math.abs(b - c) - 1) ** 2 / n;
  return { b, c, p: Math.min(1, erfc(Math.sqrt(chi2 / 2))), method: "chi2" };
}

/** Linear-interpolation quantile (type 7) of sorted values. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  const a = sorted[lo] ?? NaN;
  const b = sorted[hi] ?? NaN;
  return a + (b - a) * (at - lo);
}

/** One item's outcomes for a strategy and its baseline, summed over the seeds it ran under. */
export interface PairedUnit {
  runs: number;
  correct: number;
  baselineCorrect: number;
  tokens: number;
  baselineTokens: number;
}

export interface BootstrapOptions {
  /** Resamples (default 2000). */
  samples?: number;
  /** Seed of the resampling (default 1). */
  seed?: number;
}

export interface PairedEstimate {
  /** Accuracy difference (strategy minus baseline) in percentage points, with its 95% interval. */
  accuracyDeltaPoints: number;
  accuracyDeltaCi95: [number, number];
  /** Strategy tokens / baseline tokens, with its 95% interval (null when the baseline spent none). */
  tokenRatio: number | null;
  tokenRatioCi95: [number, number] | null;
}

function estimate(units: readonly PairedUnit[], pick: (i: number) => PairedUnit) {
  let runs = 0;
  let diff = 0;
  let tokens = 0;
  let baseTokens = 0;
  for (let i = 0; i < units.length; i++) {
    const u = pick(i);
    runs += u.runs;
    diff += u.correct - u.baselineCorrect;
    tokens += u.tokens;
    baseTokens += u.baselineTokens;
  }
  return {
    delta: runs === 0 ? 0 : (100 * diff) / runs,
    ratio: baseTokens === 0 ? null : tokens / baseTokens,
  };
}

/**
 * Point estimates and percentile bootstrap intervals: each resample draws as many items as there
 * are, with replacement, each item carrying all its seeds (runs of one item are not independent).
 */
export function pairedBootstrap(
  units: readonly PairedUnit[],
  options: BootstrapOptions = {},
): PairedEstimate {
  const samples = options.samples ?? 2000;
  const random = mulberry32(options.seed ?? 1);
  const point = estimate(units, (i) => units[i] as PairedUnit);
  const deltas: number[] = [];
  const ratios: number[] = [];
  for (let s = 0; s < samples && units.length > 0; s++) {
    const r = estimate(units, () => units[Math.floor(random() * units.length)] as PairedUnit);
    deltas.push(r.delta);
    if (r.ratio !== null) ratios.push(r.ratio);
  }
  deltas.sort((a, b) => a - b);
  ratios.sort((a, b) => a - b);
  const ci = (sorted: number[], fallback: number): [number, number] =>
    sorted.length === 0 ? [fallback, fallback] : [quantile(sorted, 0.025), quantile(sorted, 0.975)];
  return {
    accuracyDeltaPoints: point.delta,
    accuracyDeltaCi95: ci(deltas, point.delta),
    tokenRatio: point.ratio,
    tokenRatioCi95: point.ratio === null ? null : ci(ratios, point.ratio),
  };
}

/**
 * The task family of a record: the letters before the number of an id such as `word-07` or
 * `calc_3`, else the dataset's name (also for the default ids `line-N`).
 */
export function familyOf(record: Pick<ItemRecord, "dataset" | "item_id">): string {
  const m = /^([A-Za-z]+)[-_]?\d+$/.exec(record.item_id);
  return m?.[1] !== undefined && m[1] !== "line" ? m[1] : record.dataset;
}

/** A strategy against a baseline on the items both ran, for one family or all of them. */
export interface PairedComparison extends PairedEstimate {
  strategy: string;
  baseline: string;
  family: string;
  items: number;
  /** Paired runs (items × seeds). */
  runs: number;
  accuracy: number;
  baselineAccuracy: number;
  mcnemar: McNemar;
  /** Right first drafts made wrong, for each side, and right first drafts. */
  harmed: number;
  baselineHarmed: number;
  firstRight: number;
  baselineFirstRight: number;
}

const keyOf = (r: ItemRecord, seed: number | undefined) =>
  `${seed ?? ""}\u0000${r.dataset}\u0000${r.item_id}`;

/**
 * Pairs each run of `strategy` with the baseline's run of the same item under the same seed and
 * compares them, for all items together (`family: "all"`) and per family.
 */
export function comparePaired(
  runs: readonly { seed?: number; records: readonly ItemRecord[] }[],
  strategy: string,
  baseline: string,
  options: BootstrapOptions & { families?: boolean } = {},
): PairedComparison[] {
  const pairs: { family: string; item: string; a: ItemRecord; b: ItemRecord }[] = [];
  for (const run of runs) {
    const base = new Map<string, ItemRecord>();
    for (const r of run.records) if (r.strategy === baseline) base.set(keyOf(r, run.seed), r);
    for (const r of run.records) {
      if (r.strategy !== strategy) continue;
      const b = base.get(keyOf(r, run.seed));
      if (b) pairs.push({ family: familyOf(r), item: `${r.dataset}\u0000${r.item_id}`, a: r, b });
    }
  }
  const families = options.families === false ? [] : [...new Set(pairs.map((p) => p.family))];
  return ["all", ...families.sort()].map((family) => {
    const mine = family === "all" ? pairs : pairs.filter((p) => p.family === family);
    const units = new Map<string, PairedUnit>();
    let b = 0;
    let c = 0;
    const count = { correct: 0, baseCorrect: 0, harmed: 0, baseHarmed: 0, first: 0, baseFirst: 0 };
    for (const p of mine) {
      const u = units.get(p.item) ?? {
        runs: 0,
        correct: 0,
        baselineCorrect: 0,
        tokens: 0,
        baselineTokens: 0,
      };
      u.runs++;
      u.correct += Number(p.a.final_correct);
      u.baselineCorrect += Number(p.b.final_correct);
      u.tokens += p.a.tokens.total;
      u.baselineTokens += p.b.tokens.total;
      units.set(p.item, u);
      if (p.a.final_correct && !p.b.final_correct) b++;
      if (!p.a.final_correct && p.b.final_correct) c++;
      count.correct += Number(p.a.final_correct);
      count.baseCorrect += Number(p.b.final_correct);
      count.first += Number(p.a.first_correct);
      count.baseFirst += Number(p.b.first_correct);
      count.harmed += Number(p.a.first_correct && !p.a.final_correct);
      count.baseHarmed += Number(p.b.first_correct && !p.b.final_correct);
    }
    const n = mine.length;
    return {
      strategy,
      baseline,
      family,
      items: units.size,
      runs: n,
      accuracy: n === 0 ? 0 : count.correct / n,
      baselineAccuracy: n === 0 ? 0 : count.baseCorrect / n,
      ...pairedBootstrap([...units.values()], options),
      mcnemar: mcnemar(b, c),
      harmed: count.harmed,
      baselineHarmed: count.baseHarmed,
      firstRight: count.first,
      baselineFirstRight: count.baseFirst,
    };
  });
}
