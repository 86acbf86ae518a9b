// answer_match's benchmark modes: math (symbolic equivalence of LaTeX answers, where string
// matching fails), choice (the option a reply chose) and qa (SQuAD exact match and token F1).
import { describe, expect, it } from "vitest";
import { createVerifiers, type VerifierSpecInput } from "../../core/verifiers/index.ts";
import { mathEquivalent } from "../../core/verifiers/math-equivalence.ts";
import { exactMatch, normalizeQaAnswer, tokenF1 } from "../../core/verifiers/qa-metrics.ts";

const ctx = { task: "t", iteration: 1 };
const grade = async (spec: Record<string, unknown>, draft: string) => {
  const [v] = createVerifiers([{ kind: "answer_match", ...spec } as VerifierSpecInput]);
  return v!.verify(draft, ctx);
};

describe("math mode: equivalent forms that string matching fails", () => {
  // [reference, model's answer]: different strings, the same value.
  const equivalent: [string, string][] = [
    ["\\frac{1}{2}", "0.5"],
    ["\\frac{1}{2}", "\\dfrac12"],
    ["2\\sqrt{2}", "\\sqrt{8}"],
    ["5", "x=5"],
    ["(1,2)", "\\left(1,2\\right)"],
    ["[4,\\infty)", "\\left[4, \\infty\\right)"],
    ["x^2+2x+1", "(x+1)^{2}"],
    ["\\frac{\\pi}{2}", "\\pi/2"],
    ["\\frac{\\sqrt{3}}{2}", "\\tfrac{1}{2}\\sqrt3"],
    ["1000", "1,000"],
    ["30", "30^\\circ"],
    ["5", "5\\text{ cm}"],
    ["3", "\\sqrt[3]{27}"],
    ["-\\frac{1}{3}", "\\frac{-1}{3}"],
    ["\\{1,2\\}", "\\{2,1\\}"],
    ["0.01", "10^{-2}"],
  ];
  it.each(equivalent)("%s equals %s", async (reference, answer) => {
    expect(answer.replace(/\s/g, "")).not.toBe(reference.replace(/\s/g, ""));
    expect(await mathEquivalent(reference, answer)).toBe(true);
    const verdict = await grade(
      { expected: reference, mode: "math" },
      `Working.\nThe answer is $\\boxed{${answer}}$.`,
    );
    expect(verdict).toMatchObject({ pass: true, score: 1 });
  });

  const different: [string, string][] = [
    ["(1,2)", "(2,1)"],
    ["[4,\\infty)", "(4,\\infty)"],
    ["x^2+2x+1", "(x+1)^3"],
    ["\\frac{1}{2}", "\\frac{1}{3}"],
    ["2\\sqrt{2}", "2\\sqrt{3}"],
    // Decision (docs/evaluation.md): 50\% reads as 50, as the MATH normalisation does, not 0.5.
    ["50\\%", "0.5"],
  ];
  it.each(different)("%s differs from %s", async (reference, answer) => {
    expect(await mathEquivalent(reference, answer)).toBe(false);
    const verdict = await grade({ expected: reference, mode: "math" }, `\\boxed{${answer}}`);
    expect(verdict.pass).toBe(false);
    expect(verdict.message).toMatch(/does not match expected/);
  });

  it("evaluates only arithmetic: no state-changing functions, no overflow counted as equal", async () => {
    expect(await mathEquivalent("10^{10^{10}}", "10^{10^{11}}")).toBe(false);
    expect(await mathEquivalent('createUnit("foo")', 'createUnit("foo") ')).toBe(true); // same text only
    expect(await mathEquivalent('createUnit("foo")', "1")).toBe(false);
    expect(await mathEquivalent("a=2", "2")).toBe(true); // an equation's right side
    expect(await mathEquivalent("f(x)=x", "x")).toBe(false);
  });

  it("reads 50\\% as 50, and text answers by normalised text", async () => {
    expect(await mathEquivalent("50\\%", "50")).toBe(true);
    expect(await mathEquivalent("\\text{odd}", "odd")).toBe(true);
    expect(await mathEquivalent("\\text{(C)}", "(C)")).toBe(true);
  });

  it("reads the Answer: line when there is no box, and asks for one when there is nothing", async () => {
    expect(
      await grade({ expected: "\\frac{1}{2}", mode: "math" }, "Hence\nAnswer: 1/2"),
    ).toMatchObject({ pass: true });
    const none = await grade({ expected: "2", mode: "math" }, "Let me think.\nIt is two-ish.");
    expect(none).toMatchObject({ pass: false });
    expect(none.message).toMatch(/no final answer found: put it in \\boxed\{\}/);
  });
});

describe("choice mode", () => {
  const choices = [
    { label: "A", text: "the Moon" },
    { label: "B", text: "a mirror" },
    { label: "C", text: "a candle flame" },
    { label: "D", text: "a white wall" },
  ];
  const right = [
    "Answer: C",
    "Reasoning...\nAnswer: (C)",
    "The answer is C.",
    "**C**",
    "C) a candle flame",
    "Answer: a candle flame",
    "I think the answer is option C because it emits light.",
    "Answer: $\\boxed{C}$",
    "After weighing A and B, the answer is (C).",
  ];
  it.each(right)("reads C from %j", async (draft) => {
    expect(await grade({ expected: "C", mode: "choice", choices }, draft)).toMatchObject({
      pass: true,
    });
  });
  it.each([
    ["Answer: B", /option B is not correct|does not match/],
    [
      "A candle flame glows, but the answer is a mirror reflecting it? I am unsure.\nMaybe.",
      /no option chosen/,
    ],
  ])("does not read C from %j", async (draft, message) => {
    const verdict = await grade({ expected: "C", mode: "choice", choices }, draft);
    expect(verdict.pass).toBe(false);
    expect(verdict.message).toMatch(message);
  });
  it("takes numeric ARC labels, and refuses an expected label that is not an option", async () => {
    const numeric = choices.map((c, i) => ({ ...c, label: String(i + 1) }));
    expect(
      await grade({ expected: "3", mode: "choice", choices: numeric }, "Answer: 3"),
    ).toMatchObject({ pass: true });
    expect(() =>
      createVerifiers([{ kind: "answer_match", expected: "E", mode: "choice", choices }]),
    ).toThrow(/expected "E" is not one of the labels A, B, C, D/);
    expect(() =>
      createVerifiers([{ kind: "answer_match", expected: "A", mode: "choice" }]),
    ).toThrow(/choice mode needs the options/);
  });
});

describe("qa mode (SQuAD normalisation)", () => {
  it("normalises case, punctuation, articles and spaces", () => {
    expect(normalizeQaAnswer("The  Eiffel Tower!")).toBe("eiffel tower");
    expect(exactMatch("an apple.", ["Apple"])).toBe(true);
  });
  it("computes token F1 against the best gold (hand-computed)", () => {
    // prediction "local red granite" vs gold "local granite": common 2, precision 2/3, recall 1.
    expect(tokenF1("local red granite", ["local granite"])).toBeCloseTo(0.8, 10);
    expect(tokenF1("granite", ["local granite", "granite"])).toBe(1);
    expect(tokenF1("marble", ["local granite"])).toBe(0);
  });
  it("passes on exact match of any accepted answer; the score is F1", async () => {
    const spec = { expected: "1959", mode: "qa", alternatives: ["in 1959"] };
    expect(await grade(spec, "It was electrified then.\nAnswer: In 1959.")).toMatchObject({
      pass: true,
      score: 1,
    });
    const partial = await grade(
      { expected: "local granite", mode: "qa" },
      "Answer: local red granite",
    );
    expect(partial.pass).toBe(false);
    expect(partial.score).toBeCloseTo(0.8, 10);
    expect(partial.message).toMatch(/token F1 0\.80/);
    expect(
      await grade(
        { expected: "local granite", mode: "qa", minF1: 0.8 },
        "Answer: local red granite",
      ),
    ).toMatchObject({ pass: true });
  });
});
