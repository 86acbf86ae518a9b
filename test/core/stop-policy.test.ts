import { describe, expect, it } from "vitest";
import type { Critique } from "../../core/state.ts";
import {
  assessDraft,
  decideAfterRevise,
  decideAfterVerify,
  decideProactiveAfterCritique,
  decideProactiveAfterVerify,
  pickBest,
  type DraftAssessment,
} from "../../core/stop-policy.ts";
import { ZERO_USAGE } from "../../core/usage.ts";
import type { Verdict } from "../../core/verifiers/types.ts";

const verdict = (pass: boolean, hard = true, score = pass ? 1 : 0): Verdict => ({
  verifierId: "v",
  kind: "regex",
  hard,
  pass,
  score,
  message: pass ? "ok" : "failed",
  iteration: 1,
  latencyMs: 0,
});
const critique = (
  v: "pass" | "revise",
  score?: number,
  issues: string[] = v === "pass" ? [] : ["x is wrong"],
): Critique => ({
  iteration: 1,
  verdict: v,
  ...(score === undefined ? {} : { score }),
  issues,
  raw: "",
  usage: ZERO_USAGE,
  latencyMs: 0,
});
const limits = { maxIterations: 3, scoreThreshold: 0.8 };
const assess = (a: Partial<DraftAssessment>): DraftAssessment => ({
  hardPassed: 1,
  hardTotal: 1,
  score: 1,
  critiqueClean: true,
  actionable: [],
  ...a,
});

describe("assessDraft", () => {
  it("counts hard verifiers; the score comes from soft signals only (soft verifiers and the critique)", () => {
    const a = assessDraft(
      [verdict(true), verdict(false), verdict(true, false, 0.5)],
      critique("revise", 0.2),
    );
    expect(a).toEqual({
      hardPassed: 1,
      hardTotal: 2,
      score: (0.5 + 0.2) / 2,
      critiqueClean: false,
      actionable: ["x is wrong"],
    });
  });
  it("a passing hard check cannot outvote the critic's low score", () => {
    expect(assessDraft([verdict(true), verdict(true)], critique("revise", 0.6)).score).toBe(0.6);
  });
  it("treats a missing critique as clean and scores by the hard result when nothing is scored", () => {
    expect(assessDraft([], undefined)).toMatchObject({
      hardPassed: 0,
      hardTotal: 0,
      score: 1,
      critiqueClean: true,
    });
  });
  it("a critique that says pass but lists issues is not clean", () => {
    expect(assessDraft([], critique("pass", 0.9, ["minor typo"])).critiqueClean).toBe(false);
  });
});

describe("decideAfterVerify", () => {
  it("accepts when hard verifiers pass and the critique is clean", () => {
    expect(
      decideAfterVerify({
        assessment: assess({ score: 0.1 }),
        iteration: 1,
        totalTokens: 10,
        limits,
      }),
    ).toEqual({ action: "stop", reason: "accepted" });
  });
  it("accepts on the score threshold even when the critique has nits", () => {
    expect(
      decideAfterVerify({
        assessment: assess({ critiqueClean: false, score: 0.85 }),
        iteration: 1,
        totalTokens: 10,
        limits,
      }).action,
    ).toBe("stop");
  });
  it("revises when the critique has issues and the score is below threshold", () => {
    expect(
      decideAfterVerify({
        assessment: assess({ critiqueClean: false, score: 0.5 }),
        iteration: 1,
        totalTokens: 10,
        limits,
      }),
    ).toMatchObject({ action: "revise" });
  });
  it("never accepts while a hard verifier fails, even with a clean critique and top score", () => {
    const d = decideAfterVerify({
      assessment: assess({ hardPassed: 0, score: 1 }),
      iteration: 1,
      totalTokens: 10,
      limits,
    });
    expect(d).toEqual({ action: "revise", reason: "1 hard verifier(s) failing" });
  });
  it("stops on the iteration cap", () => {
    expect(
      decideAfterVerify({
        assessment: assess({ hardPassed: 0 }),
        iteration: 3,
        totalTokens: 10,
        limits,
      }),
    ).toEqual({ action: "stop", reason: "max_iterations" });
  });
  it("acceptance wins over the cap on the last iteration", () => {
    expect(
      decideAfterVerify({ assessment: assess({}), iteration: 3, totalTokens: 10, limits }).reason,
    ).toBe("accepted");
  });
  it("stops when the budget is spent", () => {
    expect(
      decideAfterVerify({
        assessment: assess({ hardPassed: 0 }),
        iteration: 1,
        totalTokens: 1000,
        limits: { ...limits, tokenBudget: 1000 },
      }),
    ).toEqual({ action: "stop", reason: "token_budget" });
  });
  it("stops before an iteration that would overspend, judged by the average iteration cost", () => {
    // 2 iterations cost 600 (300 each); 600 + 300 > 800 so the third is not started.
    expect(
      decideAfterVerify({
        assessment: assess({ hardPassed: 0 }),
        iteration: 2,
        totalTokens: 600,
        limits: { ...limits, tokenBudget: 800 },
      }).reason,
    ).toBe("token_budget");
    expect(
      decideAfterVerify({
        assessment: assess({ hardPassed: 0 }),
        iteration: 2,
        totalTokens: 600,
        limits: { ...limits, tokenBudget: 900 },
      }).action,
    ).toBe("revise");
  });
});

describe("decideAfterRevise", () => {
  it("stops when the revision is identical up to whitespace", () => {
    expect(decideAfterRevise("Answer: 4\n", "  Answer:   4")).toEqual({
      action: "stop",
      reason: "unchanged",
    });
  });
  it("continues when the revision differs", () => {
    expect(decideAfterRevise("Answer: 4", "Answer: 5").action).toBe("revise");
  });
});

describe("pickBest", () => {
  const d = (iteration: number, hardPassed: number, score: number) => ({
    iteration,
    text: `d${iteration}`,
    hardPassed,
    hardTotal: 2,
    score,
  });
  it("takes the first candidate", () => expect(pickBest(null, d(1, 0, 0))).toEqual(d(1, 0, 0)));
  it("prefers more hard verifiers passed over a higher score", () =>
    expect(pickBest(d(1, 2, 0.1), d(2, 1, 0.9)).iteration).toBe(1));
  it("prefers the higher score when hard results tie", () =>
    expect(pickBest(d(1, 1, 0.4), d(2, 1, 0.6)).iteration).toBe(2));
  it("keeps the incumbent on a full tie (never blindly the latest)", () =>
    expect(pickBest(d(1, 1, 0.5), d(2, 1, 0.5)).iteration).toBe(1));
});

describe("proactive decisions", () => {
  const clean = { doubtful: false, reasons: [] };
  const base = {
    failing: [] as string[],
    selfCheck: clean,
    critiqueEnabled: true,
    iteration: 1,
    totalTokens: 100,
    limits,
  };
  it("a failing hard verifier triggers a targeted revise without a critique", () => {
    expect(
      decideProactiveAfterVerify({
        ...base,
        assessment: assess({ hardPassed: 0 }),
        failing: ["answer_match"],
      }),
    ).toMatchObject({ action: "revise", why: expect.stringMatching(/answer_match/) });
  });
  it("a failing hard verifier at the cap stops with the limit", () => {
    expect(
      decideProactiveAfterVerify({
        ...base,
        assessment: assess({ hardPassed: 0 }),
        failing: ["x"],
        iteration: 3,
      }),
    ).toMatchObject({ action: "stop", reason: "max_iterations" });
  });
  it("passing checks and a clean self-check accept with the critique skipped", () => {
    expect(decideProactiveAfterVerify({ ...base, assessment: assess({}) })).toMatchObject({
      action: "stop",
      reason: "accepted",
      why: expect.stringMatching(/critique skipped/),
    });
  });
  it("a doubtful self-check asks for the critique", () => {
    expect(
      decideProactiveAfterVerify({
        ...base,
        assessment: assess({}),
        selfCheck: { doubtful: true, reasons: ["hedges"] },
      }),
    ).toEqual({ action: "critique", why: "self-check: hedges" });
  });
  it("a doubtful draft is accepted when the critique is switched off", () => {
    expect(
      decideProactiveAfterVerify({
        ...base,
        critiqueEnabled: false,
        assessment: assess({}),
        selfCheck: { doubtful: true, reasons: ["hedges"] },
      }).action,
    ).toBe("stop");
  });
  it("no budget left for a critique stops on the budget", () => {
    expect(
      decideProactiveAfterVerify({
        ...base,
        assessment: assess({}),
        selfCheck: { doubtful: true, reasons: ["x"] },
        totalTokens: 500,
        limits: { ...limits, tokenBudget: 500 },
      }),
    ).toMatchObject({ action: "stop", reason: "token_budget" });
  });
  it("after a critique: clean accepts, issues revise, limits stop", () => {
    const named = { critiqueClean: false, score: 0.2, actionable: ["step 2 is wrong"] };
    expect(decideProactiveAfterCritique(assess({}), 1, 10, limits).action).toBe("stop");
    expect(decideProactiveAfterCritique(assess(named), 1, 10, limits).action).toBe("revise");
    expect(decideProactiveAfterCritique(assess(named), 3, 10, limits)).toMatchObject({
      action: "stop",
      reason: "max_iterations",
    });
  });
  it("after a critique that names nothing to repair: localize once, then keep the draft while its hard checks pass", () => {
    const vague = { critiqueClean: false, score: 0.6, actionable: [] };
    expect(decideProactiveAfterCritique(assess(vague), 1, 10, limits)).toMatchObject({
      action: "localize",
      why: expect.stringMatching(/names no failing part.*point at the wrong part/),
    });
    // The follow-up named nothing either: kept.
    expect(
      decideProactiveAfterCritique(assess(vague), 1, 10, limits, { localized: true }),
    ).toMatchObject({
      action: "stop",
      reason: "accepted",
      why: expect.stringMatching(/named none.*revise skipped/),
    });
    // The follow-up named a part: revise it.
    const named = { critiqueClean: false, score: 0.3, actionable: ["step 2 is wrong"] };
    expect(
      decideProactiveAfterCritique(assess(named), 1, 10, limits, { localized: true }).action,
    ).toBe("revise");
    // No revise could follow (iteration cap, token budget): no follow-up either, the draft is kept.
    expect(decideProactiveAfterCritique(assess(vague), 3, 10, limits)).toMatchObject({
      action: "stop",
      reason: "accepted",
      why: expect.stringMatching(/iteration cap leaves no revise/),
    });
    expect(
      decideProactiveAfterCritique(assess(vague), 1, 500, { ...limits, tokenBudget: 500 }),
    ).toMatchObject({
      action: "stop",
      why: expect.stringMatching(/token budget leaves no revise/),
    });
    // Without any hard verifier nothing vouches for the draft: the critic's doubt is acted on.
    expect(
      decideProactiveAfterCritique(assess({ ...vague, hardPassed: 0, hardTotal: 0 }), 1, 10, limits)
        .action,
    ).toBe("revise");
    // A failing hard check is a target of its own.
    expect(
      decideProactiveAfterCritique(assess({ ...vague, hardPassed: 0 }), 1, 10, limits).action,
    ).toBe("revise");
    // So is a defect the self-check found; a soft doubt is not.
    const slip = { doubtful: true, reasons: ["arithmetic slip: step 1 (6 * 7 = 43)"] };
    const soft = { doubtful: true, reasons: ["no working: the final value is not backed"] };
    expect(
      decideProactiveAfterCritique(assess(vague), 1, 10, limits, { selfCheck: slip }).action,
    ).toBe("revise");
    expect(
      decideProactiveAfterCritique(assess(vague), 1, 10, limits, { selfCheck: soft }).action,
    ).toBe("localize");
  });
  it("assessDraft lists the critique issues a targeted revise can act on", () => {
    const a = assessDraft(
      [verdict(true)],
      critique("revise", 0.5, ["Double-check the work.", 'The field "age" is missing.']),
    );
    expect(a.actionable).toEqual(['The field "age" is missing.']);
    expect(assessDraft([verdict(true)], undefined).actionable).toEqual([]);
  });
});
