// The paired statistics against values computed by hand.
import { describe, expect, it } from "vitest";
import {
  comparePaired,
  erfc,
  familyOf,
  mcnemar,
  pairedBootstrap,
  quantile,
  type PairedUnit,
} from "../../graphs/eval/stats.ts";
import type { ItemRecord } from "../../graphs/eval/records.ts";

const unit = (correct: number, baselineCorrect: number, tokens = 10, baselineTokens = 20) =>
  ({ runs: 1, correct, baselineCorrect, tokens, baselineTokens }) satisfies PairedUnit;

describe("McNemar", () => {
  it("exact binomial for few discordant pairs: b=2, c=8 gives 2·(1+10+45)/1024", () => {
    expect(mcnemar(2, 8)).toMatchObject({ b: 2, c: 8, method: "exact" });
    expect(mcnemar(2, 8).p).toBeCloseTo(112 / 1024, 12);
    expect(mcnemar(8, 2).p).toBeCloseTo(0.109375, 12);
  });

  it("b=0, c=5: 2/32; no discordant pair or a balanced split: p = 1", () => {
    expect(mcnemar(0, 5).p).toBeCloseTo(2 / 32, 12);
    expect(mcnemar(0, 0).p).toBe(1);
    expect(mcnemar(5, 5).p).toBe(1);
  });

  it("chi-square with continuity correction from 25 discordant pairs: b=10, c=30", () => {
    // (|10 - 30| - 1)^2 / 40 = 9.025; P(chi2(1) > 9.025) = erfc(sqrt(4.5125)) = 0.0026631...
    const r = mcnemar(10, 30);
    expect(r.method).toBe("chi2");
    expect(r.p).toBeCloseTo(0.0026631, 6);
    expect(mcnemar(12, 12).method).toBe("exact");
    expect(mcnemar(12, 13).method).toBe("chi2");
  });

  it("erfc matches the tabulated values", () => {
    expect(erfc(0)).toBeCloseTo(1, 7);
    // chi2(1) critical value 3.841459 at p = 0.05
    expect(erfc(Math.sqrt(3.841459 / 2))).toBeCloseTo(0.05, 6);
    expect(erfc(-1)).toBeCloseTo(1.8427008, 6);
  });
});

describe("bootstrap", () => {
  it("type-7 quantiles", () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4], 0)).toBe(1);
    expect(quantile([1, 2, 3, 4], 1)).toBe(4);
    expect(quantile([0, 10], 0.25)).toBe(2.5);
  });

  it("two items, one won and one tied: resampled means are 0, 50, 100 points, so the 95% interval is [0, 100]", () => {
    const r = pairedBootstrap([unit(1, 0), unit(1, 1)], { seed: 7, samples: 4000 });
    expect(r.accuracyDeltaPoints).toBe(50);
    expect(r.accuracyDeltaCi95).toEqual([0, 100]);
    // Tokens are 10 against 20 on both items: every resample has ratio 0.5.
    expect(r.tokenRatio).toBe(0.5);
    expect(r.tokenRatioCi95).toEqual([0.5, 0.5]);
  });

  it("30 wins in 100 items: the interval is close to the normal one, 30 ± 1.96·sqrt(0.3·0.7/100)·100", () => {
    const units = Array.from({ length: 100 }, (_, i) => unit(i < 30 ? 1 : 0, 0));
    const r = pairedBootstrap(units, { seed: 3, samples: 4000 });
    const half = 1.96 * Math.sqrt(0.21 / 100) * 100; // 8.98 points
    expect(r.accuracyDeltaPoints).toBe(30);
    expect(r.accuracyDeltaCi95[0]).toBeGreaterThan(30 - half - 1.5);
    expect(r.accuracyDeltaCi95[0]).toBeLessThan(30 - half + 1.5);
    expect(r.accuracyDeltaCi95[1]).toBeGreaterThan(30 + half - 1.5);
    expect(r.accuracyDeltaCi95[1]).toBeLessThan(30 + half + 1.5);
  });

  it("is fixed by its seed", () => {
    const units = Array.from({ length: 40 }, (_, i) =>
      unit(i % 3 === 0 ? 1 : 0, i % 5 === 0 ? 1 : 0, i, 40 - i),
    );
    expect(pairedBootstrap(units, { seed: 5 })).toEqual(pairedBootstrap(units, { seed: 5 }));
    expect(pairedBootstrap(units, { seed: 5 })).not.toEqual(pairedBootstrap(units, { seed: 6 }));
  });
});

describe("comparePaired", () => {
  const record = (
    strategy: string,
    item: string,
    first: boolean,
    final: boolean,
    tokens: number,
  ): ItemRecord => ({
    config: "x",
    strategy: strategy as ItemRecord["strategy"],
    dataset: "d",
    item_id: item,
    first_correct: first,
    final_correct: final,
    tokens: { prompt: 0, completion: tokens, total: tokens },
    tokens_by_node: {},
    calls: 1,
    refinements: 0,
    critiques: 0,
    stop_reason: null,
    wall_ms: 0,
    simulated: true,
  });

  it("pairs runs by seed and item, counts discordant pairs and harm, per family and overall", () => {
    const seed1 = [
      record("proactive", "word-1", true, true, 50),
      record("self-refine", "word-1", true, false, 100),
      record("proactive", "calc-1", false, false, 60),
      record("self-refine", "calc-1", false, true, 100),
    ];
    const seed2 = [
      record("proactive", "word-1", false, true, 40),
      record("self-refine", "word-1", false, true, 100),
      record("proactive", "calc-1", true, true, 50),
      record("self-refine", "calc-1", true, true, 100),
    ];
    const [all, calc, word] = comparePaired(
      [
        { seed: 1, records: seed1 },
        { seed: 2, records: seed2 },
      ],
      "proactive",
      "self-refine",
      { seed: 1, samples: 200 },
    );
    expect(all).toMatchObject({
      family: "all",
      items: 2,
      runs: 4,
      accuracy: 0.75,
      baselineAccuracy: 0.75,
      accuracyDeltaPoints: 0,
      tokenRatio: 200 / 400,
      mcnemar: { b: 1, c: 1, p: 1, method: "exact" },
      harmed: 0,
      baselineHarmed: 1,
      firstRight: 2,
      baselineFirstRight: 2,
    });
    expect(word).toMatchObject({
      family: "word",
      runs: 2,
      accuracyDeltaPoints: 50,
      tokenRatio: 0.45,
    });
    expect(calc).toMatchObject({
      family: "calc",
      runs: 2,
      accuracyDeltaPoints: -50,
      tokenRatio: 0.55,
    });
    // One item per family: every resample is that item, so the interval is the point.
    expect(word?.accuracyDeltaCi95).toEqual([50, 50]);
  });

  it("families come from ids such as word-07, else from the dataset", () => {
    expect(familyOf({ dataset: "arithmetic", item_id: "word-07" })).toBe("word");
    expect(familyOf({ dataset: "arithmetic", item_id: "calc_3" })).toBe("calc");
    // `line-N` is the default id of an item without one: it names no family.
    expect(familyOf({ dataset: "gsm8k", item_id: "line-12" })).toBe("gsm8k");
    expect(familyOf({ dataset: "gsm8k", item_id: "a1b2" })).toBe("gsm8k");
  });
});
