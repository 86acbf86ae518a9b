// Tests for the answer_match verifier: final-answer extraction, number reading, numeric and
// exact comparison, and the messages a reviser gets.
import { describe, expect, it } from "vitest";
import {
  createAnswerMatchVerifier,
  extractFinalAnswer,
  parseNumbers,
  parseNumericString,
} from "../../core/verifiers/answer-match.ts";
import type { AnswerMatchVerifierSpec } from "../../core/verifiers/spec.ts";

const ctx = { task: "t", iteration: 1 };

function answer(
  spec: Partial<AnswerMatchVerifierSpec> & Pick<AnswerMatchVerifierSpec, "expected">,
) {
  return createAnswerMatchVerifier(
    {
      kind: "answer_match",
      hard: true,
      tolerance: 1e-6,
      caseSensitive: false,
      revealExpected: true,
      ...spec,
    },
    "answer_match",
    "verifiers[0]",
  );
}

describe("extractFinalAnswer", () => {
  it.each([
    ["<think>try 3</think><answer>42</answer>", "42", "answer_tag"],
    ["<answer>So \\boxed{7}</answer>", "7", "boxed"],
    ["<answer>first</answer> then <answer>second</answer>", "second", "answer_tag"],
    ["<answer>unterminated 5", "unterminated 5", "answer_tag"],
    ["so the result is \\boxed{\\frac{3}{4}}.", "\\frac{3}{4}", "boxed"],
    ["work\n#### 72", "72", "hash"],
    ["Answer: 10\nWait, I made an error.\nFinal answer: 12", "12", "answer_line"],
    ["**Final Answer:** 80 km/h", "80 km/h", "answer_line"],
    ["## Final answer:\n\n  $1,234  ", "$1,234", "answer_line"],
    ["The final answer is 17.", "17.", "answer_line"],
    ["The final answer is: Paris", "Paris", "answer_line"],
    ["\\boxed{1} was wrong.\nAnswer: 2", "2", "answer_line"],
    ["Answer: 2 ... no wait, \\boxed{3}", "3", "boxed"],
    ["<think>Answer: 9</think>The total is 10.", undefined, undefined],
  ])("%j -> %j (%s)", (draft, text, source) => {
    const found = extractFinalAnswer(draft);
    expect(found?.text).toBe(text);
    expect(found?.source).toBe(source);
  });
});

describe("parseNumbers", () => {
  it.each([
    ["$1,234.50", [1234.5]],
    ["-7 and −3", [-7, -3]],
    ["pages 3-4", [3, 4]],
    ["3/4 of 1,2,3", [0.75, 1, 2, 3]],
    ["120 / 1.5", [120, 1.5]],
    ["about 3/4, or 1/2.", [0.75, 0.5]],
    ["50% of 80 km/h", [50, 80]],
    ["1e-3 and .5", [0.001, 0.5]],
    ["v1.2.3 H2O", []],
    ["-$5", [-5]],
    ["10 - 5 = $ 5", [10, 5, 5]],
  ])("%j", (text, values) => {
    expect(parseNumbers(text).map((n) => n.value)).toEqual(values);
  });

  it("recognises numeric strings strictly", () => {
    expect(parseNumericString("1,234")).toBe(1234);
    expect(parseNumericString("$42")).toBe(42);
    expect(parseNumericString("12.5%")).toBe(12.5);
    expect(parseNumericString("-3/4")).toBe(-0.75);
    expect(parseNumericString("\\frac{1}{2}")).toBe(0.5);
    expect(parseNumericString("80 km/h")).toBeUndefined();
    expect(parseNumericString("Paris")).toBeUndefined();
  });
});

describe("answer_match verifier, numeric", () => {
  it("passes on a marked answer with formatting", async () => {
    const v = answer({ expected: 1234.5 });
    const result = await v.verify("Total cost...\nAnswer: **$1,234.50**", ctx);
    expect(result).toMatchObject({ pass: true, score: 1 });
    expect(result.message).toBe("final answer 1234.5 matches expected 1234.5");
  });

  it("defaults to numeric for a numeric string and reads a unit after the number", async () => {
    const v = answer({ expected: "80" });
    expect((await v.verify("Final answer: 80 km/h (120 / 1.5)", ctx)).pass).toBe(true);
  });

  it("reads LaTeX fractions and negative numbers", async () => {
    expect((await answer({ expected: 0.75 }).verify("\\boxed{\\dfrac{3}{4}}", ctx)).pass).toBe(
      true,
    );
    expect((await answer({ expected: "-3/4" }).verify("#### -0.75", ctx)).pass).toBe(true);
    expect((await answer({ expected: -12 }).verify("Answer: −12", ctx)).pass).toBe(true);
  });

  it("takes the last number of an <answer> block", async () => {
    const v = answer({ expected: 42 });
    expect((await v.verify("<answer>After 3 days she has 42 apples</answer>", ctx)).pass).toBe(
      true,
    );
  });

  it("names what it extracted and what it expected on a mismatch", async () => {
    const result = await answer({ expected: 395 }).verify("Answer: 391", ctx);
    expect(result).toMatchObject({ pass: false, score: 0 });
    expect(result.message).toBe("final answer 391 does not match expected 395 (tolerance 1e-6)");
  });

  it("honours absolute and relative tolerance", async () => {
    expect(
      (await answer({ expected: 100, tolerance: 0.5 }).verify("Answer: 100.4", ctx)).pass,
    ).toBe(true);
    const rel = answer({ expected: 1000, tolerance: 0, relativeTolerance: 0.01 });
    expect((await rel.verify("Answer: 1009", ctx)).pass).toBe(true);
    const miss = await rel.verify("Answer: 1011", ctx);
    expect(miss.message).toBe(
      "final answer 1011 does not match expected 1000 (tolerance 0, relative tolerance 0.01)",
    );
  });

  it("falls back to the last number and asks for a marked answer", async () => {
    const result = await answer({ expected: 80 }).verify("120 km in 1.5 hours gives 80 km/h.", ctx);
    expect(result.pass).toBe(true);
    expect(result.message).toContain("last number in the draft");
    expect(result.message).toContain('"Answer: <value>"');
  });

  it("says when no final answer was found", async () => {
    const result = await answer({ expected: 5 }).verify("I do not know.", ctx);
    expect(result.pass).toBe(false);
    expect(result.message).toBe(
      'no final answer found: end the reply with a line "Answer: <value>"',
    );
  });

  it("says when the marked answer is not a number", async () => {
    const result = await answer({ expected: 80 }).verify("Answer: eighty", ctx);
    expect(result.message).toMatch(/final answer "eighty" in the Answer: line is not a number/);
  });

  it("can hide the expected value from the reviser", async () => {
    const result = await answer({ expected: 395, revealExpected: false }).verify(
      "Answer: 391",
      ctx,
    );
    expect(result.message).toBe("final answer 391 is not correct");
    expect(result.message).not.toContain("395");
  });

  it("rejects a numeric mode whose expected value has no number", () => {
    expect(() => answer({ expected: "Paris", mode: "numeric" })).toThrow(
      expect.objectContaining({ code: "invalid_config", field: "verifiers[0].expected" }),
    );
  });
});

describe("answer_match verifier, exact", () => {
  it("defaults to exact for a non-numeric string and compares case-insensitively", async () => {
    const v = answer({ expected: "Paris" });
    expect((await v.verify("The capital...\nFinal answer: **paris**.", ctx)).pass).toBe(true);
    expect((await v.verify("paris", ctx)).pass).toBe(true);
  });

  it("fails with both values named", async () => {
    const result = await answer({ expected: "Paris" }).verify("Answer: Lyon", ctx);
    expect(result.message).toBe(
      'final answer "Lyon" from the Answer: line does not match expected "Paris"',
    );
  });

  it("respects caseSensitive", async () => {
    const v = answer({ expected: "Paris", caseSensitive: true });
    expect((await v.verify("Answer: paris", ctx)).message).toContain("(case-sensitive)");
  });

  it("asks for a marked answer when a one-line reply does not match", async () => {
    const result = await answer({ expected: "Paris" }).verify("It is Lyon", ctx);
    expect(result.message).toBe(
      'final answer "It is Lyon" from the whole reply does not match expected "Paris"; ' +
        'end the reply with a line "Answer: <value>"',
    );
  });

  it("does not guess an answer from long unmarked text", async () => {
    const result = await answer({ expected: "Paris" }).verify("It is\nParis", ctx);
    expect(result.message).toMatch(/^no final answer found/);
  });

  it("compares a numeric expected value exactly when asked", async () => {
    const v = answer({ expected: "1,000", mode: "exact" });
    expect((await v.verify("Answer: 1,000", ctx)).pass).toBe(true);
    expect((await v.verify("Answer: 1000", ctx)).pass).toBe(false);
  });
});
