// Run outcomes, the reflect step and the export formats (pure functions).
import { describe, expect, it } from "vitest";
import { examplesOf, isTrainable, pasrTrace } from "../../core/learning/export.ts";
import { outcomeFromValues } from "../../core/learning/outcome.ts";
import { reflect } from "../../core/memory/reflect.ts";
import { META, refinedValues } from "./fixtures.ts";

const outcome = (over: Record<string, unknown> = {}) => {
  const o = outcomeFromValues(refinedValues(over), META);
  if (!o) throw new Error("no outcome");
  return { ...o, ratings: [] as never[] };
};

describe("outcomeFromValues", () => {
  it("reduces a refine state to what learning needs", () => {
    const o = outcome();
    expect(o).toMatchObject({
      task: refinedValues().task,
      answer: "45 min = 0.75 h\n90 / 0.75 = 120\nAnswer: 120",
      verified: true,
      first_passed: false,
      human_approved: false,
      tokens: 400,
      stop_reason: "accepted",
      simulated: true,
    });
    expect(o.verdicts[1]).toEqual({
      iteration: 1,
      verifier_id: "units",
      hard: true,
      pass: false,
      score: 0,
      message: "the answer must be in km/h, not km per minute",
    });
  });
  it("is undefined for a state that is not a refinement", () => {
    expect(outcomeFromValues({ messages: [] }, META)).toBeUndefined();
    expect(outcomeFromValues({ task: "x", drafts: [] }, META)).toBeUndefined();
    expect(outcomeFromValues(null, META)).toBeUndefined();
  });
});

describe("reflect", () => {
  it("keeps the failed check that a revision fixed and the critique that led to it", () => {
    expect(reflect(outcome())).toEqual([
      {
        text: 'Check "units": the answer must be in km/h, not km per minute',
        source: "verifier",
        iteration: 1,
      },
      {
        text: "The time is in minutes; convert it to hours before dividing.",
        source: "critique",
        iteration: 1,
      },
    ]);
  });
  it("learns nothing from a run whose first draft passed, and puts reviewers first", () => {
    const clean = refinedValues({
      drafts: [{ iteration: 1, text: "Answer: 120", source: "generate" }],
      critiques: [{ iteration: 1, verdict: "pass", issues: [] }],
      verdicts: [],
      answer: "Answer: 120",
    });
    expect(reflect(outcomeFromValues(clean, META)!)).toEqual([]);
    const reviewed = outcome({
      approvals: [
        { iteration: 1, action: "reject", reason: "r", feedback: "State the unit, km/h." },
        { iteration: 2, action: "approve", reason: "ok" },
      ],
    });
    expect(reflect(reviewed)[0]).toEqual({
      text: "A reviewer required: State the unit, km/h.",
      source: "human",
      iteration: 1,
    });
    expect(reviewed.human_approved).toBe(true);
  });
  it("does not learn from a revision that made things worse", () => {
    const worse = outcome({
      critiques: [
        { iteration: 1, verdict: "revise", score: 0.6, issues: ["Looks off."] },
        { iteration: 2, verdict: "revise", score: 0.3, issues: ["Worse."] },
      ],
      verdicts: [],
    });
    expect(reflect(worse)).toEqual([]);
  });
});

describe("export formats", () => {
  it("SFT pairs the task with the final answer of a verified run", () => {
    const [line] = examplesOf("sft", outcome());
    expect(line).toMatchObject({
      messages: [
        { role: "user", content: refinedValues().task },
        { role: "assistant", content: "45 min = 0.75 h\n90 / 0.75 = 120\nAnswer: 120" },
      ],
      metadata: { run_id: META.run_id, verified: true, simulated: true },
    });
  });
  it("DPO prefers the final answer over the worse first draft, with the reason", () => {
    const pairs = examplesOf("dpo", outcome());
    expect(pairs).toHaveLength(1);
    expect(pairs[0]).toMatchObject({
      chosen: [{ role: "assistant", content: "45 min = 0.75 h\n90 / 0.75 = 120\nAnswer: 120" }],
      rejected: [{ role: "assistant", content: "90 / 45 = 2\nAnswer: 2" }],
      metadata: { rejected_iteration: 1 },
    });
    expect(pairs[0]!.reason).toContain("Failed check units");
    expect(pairs[0]!.reason).toContain("Critique: The time is in minutes");
  });
  it("PASR traces put each revision in a refine segment inside think", () => {
    expect(pasrTrace(outcome())).toBe(
      "<think>\n90 / 45 = 2\nAnswer: 2\n<refine>\n" +
        "Failed check units: the answer must be in km/h, not km per minute\n" +
        "Critique: The time is in minutes; convert it to hours before dividing.\n" +
        "45 min = 0.75 h\n90 / 0.75 = 120\nAnswer: 120\n</refine>\n</think>\n" +
        "<answer>\n45 min = 0.75 h\n90 / 0.75 = 120\nAnswer: 120\n</answer>",
    );
  });
  it("leaves out unverified, rejected and badly rated runs", () => {
    const failed = outcome({
      verdicts: [
        { iteration: 2, verifierId: "units", hard: true, pass: false, score: 0, message: "no" },
      ],
    });
    expect(isTrainable(failed)).toBe(false);
    expect(examplesOf("sft", failed)).toEqual([]);
    const rejected = outcome({ approvals: [{ iteration: 2, action: "reject", feedback: "no" }] });
    expect(isTrainable(rejected)).toBe(false);
    const rated = {
      ...outcome(),
      ratings: [
        {
          feedback_id: "f",
          run_id: META.run_id,
          thread_id: META.thread_id,
          key: "user_score",
          score: 0.2,
          value: null,
          comment: "wrong",
          created_at: "",
        },
      ],
    };
    expect(isTrainable(rated)).toBe(false);
  });
});

describe("reflect keeps only issues that name something", () => {
  it("drops vague critique issues", () => {
    const vague = outcomeFromValues(
      refinedValues({
        critiques: [
          {
            iteration: 1,
            verdict: "revise",
            score: 0.5,
            issues: ["Double-check the work before finalizing.", "The unit must be km/h."],
          },
          { iteration: 2, verdict: "pass", score: 0.95, issues: [] },
        ],
        verdicts: [],
      }),
      META,
    )!;
    expect(reflect(vague).map((l) => l.text)).toEqual(["The unit must be km/h."]);
  });
});

describe("reflect writes rules, not cases", () => {
  it("puts a check's listed problems on one line, once each, without the draft's values", () => {
    const schema = outcomeFromValues(
      refinedValues({
        critiques: [],
        verdicts: [
          {
            iteration: 1,
            verifierId: "ticket",
            hard: true,
            pass: false,
            score: 0,
            message:
              "JSON does not match the schema (3 problems):\n" +
              '- /priority must be one of "low", "normal", "high" (got null)\n' +
              "- (root) must have required property 'product'\n" +
              '- /priority must be one of "low", "normal", "high" (got "urgent (now)")',
          },
          { iteration: 2, verifierId: "ticket", hard: true, pass: true, score: 1, message: "" },
        ],
      }),
      META,
    )!;
    expect(reflect(schema).map((l) => l.text)).toEqual([
      'Check "ticket": /priority must be one of "low", "normal", "high"; (root) must have required property \'product\'',
    ]);
  });
});
