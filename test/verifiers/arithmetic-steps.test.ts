// Tests for the arithmetic_steps verifier: which claims are read (and which text is left alone),
// rounding at the written precision, chained steps, messages, scores and spec errors.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { evaluateArithmetic } from "../../core/arith.ts";
import { isRefineryError, type RefineryError } from "../../core/errors.ts";
import {
  checkArithmeticSteps,
  createArithmeticStepsVerifier,
  describeWrongStep,
} from "../../core/verifiers/arithmetic-steps.ts";
import { createVerifiers, parseVerifierSpecs } from "../../core/verifiers/index.ts";

const ctx = { task: "t", iteration: 1 };

function verifier(tolerance = 1e-6) {
  return createArithmeticStepsVerifier(
    { kind: "arithmetic_steps", hard: true, tolerance },
    "arithmetic_steps",
  );
}

/** The claims read from a draft, as `text ok|wrong`. */
function claims(draft: string): string[] {
  return checkArithmeticSteps(draft).map((c) => `${c.text} ${c.correct ? "ok" : "wrong"}`);
}

function thrown(fn: () => unknown): RefineryError {
  try {
    fn();
  } catch (error) {
    if (isRefineryError(error)) return error;
    throw error;
  }
  throw new Error("expected a RefineryError");
}

describe("core/arith.ts", () => {
  it("is the evaluator the simulated model re-exports, and uses no eval", async () => {
    const simulated = await import("../../core/models/simulated.ts");
    expect(simulated.evaluateArithmetic).toBe(evaluateArithmetic);
    expect(evaluateArithmetic("17 × 23 + 4")).toBe(395);
    const source = readFileSync(
      fileURLToPath(new URL("../../core/arith.ts", import.meta.url)),
      "utf8",
    );
    expect(source).not.toMatch(/\beval\s*\(|new Function\b|\bFunction\s*\(/);
  });
});

describe("checkArithmeticSteps: what counts as a claim", () => {
  it.each([
    ["17 * 23 = 391", ["17 * 23 = 391 ok"]],
    ["Step 2: (12 + 8) * 3 = 60", ["(12 + 8) * 3 = 60 ok"]],
    ["The speed is 120 / 1.5 = 80 km/h.", ["120 / 1.5 = 80 ok"]],
    ["17 × 23 = 391 and 6 ÷ 2 = 3", ["17 × 23 = 391 ok", "6 ÷ 2 = 3 ok"]],
    ["4 x 5 = 20", ["4 x 5 = 20 ok"]],
    ["1,234 + 1,000 = 2,234 apples", ["1,234 + 1,000 = 2,234 ok"]],
    ["$5 + $3 = $8", ["5 + 3 = 8 ok"]],
    ["**17 * 23 = 391**", ["17 * 23 = 391 ok"]],
    ["$17 \\times 23 = 391$", ["17 × 23 = 391 ok"]],
    ["\\frac{3}{4} = 0.75", ["(3)/(4) = 0.75 ok"]],
    ["3 / 4 = 75%", ["3 / 4 = 75% ok"]],
    ["- 2 * 3 = 6", ["2 * 3 = 6 ok"]],
    ["1. 4 * 5 = 20", ["4 * 5 = 20 ok"]],
    ["Area = length * width = 5 * 3 = 15 m²", ["5 * 3 = 15 ok"]],
    ["The sum is 5 + 3 = 9.", ["5 + 3 = 9 wrong"]],
    ["2024 - 1999 = 25 years", ["2024 - 1999 = 25 ok"]],
  ])("%j", (draft, expected) => {
    expect(claims(draft)).toEqual(expected);
  });

  it("reads negative numbers and subtraction of negatives", () => {
    expect(claims("-5 + 3 = -2\nStep 2: 5 - -3 = 8\nStep 3: -4 * -2 = -8")).toEqual([
      "-5 + 3 = -2 ok",
      "5 - -3 = 8 ok",
      "-4 * -2 = -8 wrong",
    ]);
  });

  it.each([
    ["a date", "The meeting on 2024-01-02 = 3 days from now"],
    ["a phone number", "Call 555-123-4567 = 10 digits"],
    ["a short phone number after an area code", "Dial (555) 123-4567 = 5"],
    ["a zero-padded code", "Part 12-07 = 3 units"],
    ["algebra with a variable on the left", "2x + 3 * 4 = 14"],
    ["algebra with a spaced variable", "2 * x + 3 = 11"],
    ["a variable on the right", "2 * 3 = 3x, so x = 2"],
    ["an assignment", "a = 5, b = 2 + 3"],
    ["comparisons", "x == 2 + 2 and 3 + 1 >= 4 and 2 + 2 <= 4"],
    ["a bare number", "Step 1: 391 = 391"],
    ["a remainder", "7 / 2 = 3 r 1"],
    ["a time of day", "The train leaves at 2 + 3 = 5:30"],
    ["an exponent", "2 ** 3 = 8 and 2^3 = 8"],
    ["percent on the left", "20% of 50 = 10"],
    ["implicit multiplication", "2(3 + 4) = 14"],
    ["a result that goes on with an operator", "2 + 3 = 5 - which is odd"],
    ["prose", "The capital of France is Paris. Nothing to compute here."],
  ])("does not read %s as a claimed computation", (_what, draft) => {
    expect(checkArithmeticSteps(draft)).toEqual([]);
  });

  it("skips fenced code blocks, whose arithmetic has other rules", () => {
    expect(claims("```python\nx = 7 / 2 = 3\n```\n2 + 2 = 4")).toEqual(["2 + 2 = 4 ok"]);
  });

  it("reports 1-based line numbers", () => {
    const [check] = checkArithmeticSteps("Intro.\n\nStep 1: 17 * 23 = 393");
    expect(check?.line).toBe(3);
  });
});

describe("checkArithmeticSteps: precision, rounding and chains", () => {
  it.each([
    ["10 / 3 = 3.33", true],
    ["10 / 3 = 3.3", true],
    ["2 / 3 = 0.67", true],
    // Rounded at the written precision, not truncated.
    ["2 / 3 = 0.66", false],
    ["12.5 + 3 = 15.6", false],
    // An integer claims an exact result unless the claim says it is approximate.
    ["10 / 3 = 3", false],
    ["10 / 3 ≈ 3", true],
    ["10 / 3 = ~3.3", true],
    ["0.1 + 0.2 = 0.3", true],
    ["123456789 * 1000 = 123456789001", false],
  ])("%j holds: %s", (draft, correct) => {
    expect(checkArithmeticSteps(draft).map((c) => c.correct)).toEqual([correct]);
  });

  it("lets a rounded result be carried into later steps", () => {
    expect(claims("Step 1: 10 / 3 = 3.333333\nStep 2: 3.333333 * 3 = 10")).toEqual([
      "10 / 3 = 3.333333 ok",
      "3.333333 * 3 = 10 ok",
    ]);
    expect(claims("10 / 3 = 3.33, so 3.33 * 3 = 9.99")).toEqual([
      "10 / 3 = 3.33 ok",
      "3.33 * 3 = 9.99 ok",
    ]);
    // Without the earlier rounding, 3.33 is exact and the step is wrong.
    expect(claims("3.33 * 3 = 10")).toEqual(["3.33 * 3 = 10 wrong"]);
  });

  it("checks each link of a chain", () => {
    expect(claims("17 * 23 + 4 = 391 + 4 = 395")).toEqual([
      "17 * 23 + 4 = 391 + 4 ok",
      "391 + 4 = 395 ok",
    ]);
    expect(claims("17 * 23 + 4 = 393 + 4 = 397")).toEqual([
      "17 * 23 + 4 = 393 + 4 wrong",
      "393 + 4 = 397 ok",
    ]);
  });

  it("honours the absolute tolerance", () => {
    expect(checkArithmeticSteps("10 / 4 = 2.6", { tolerance: 0.1 })[0]?.correct).toBe(true);
    expect(checkArithmeticSteps("10 / 4 = 2.6")[0]?.correct).toBe(false);
  });
});

describe("describeWrongStep", () => {
  it.each([
    ["Step 1: 17 * 23 = 393", 'line 1: step "17 * 23 = 393" is wrong: 17 * 23 = 391'],
    ["\n2 / 3 = 0.66", 'line 2: step "2 / 3 = 0.66" is wrong: 2 / 3 = 0.666667'],
    [
      "17 * 23 + 4 = 393 + 4",
      'line 1: step "17 * 23 + 4 = 393 + 4" is wrong: 17 * 23 + 4 = 395, not 397',
    ],
    ["5 / 0 = 0", 'line 1: step "5 / 0 = 0" is wrong: 5 / 0 divides by zero'],
  ])("%j", (draft, message) => {
    const [check] = checkArithmeticSteps(draft);
    expect(check && describeWrongStep(check)).toBe(message);
  });
});

describe("arithmetic_steps verifier", () => {
  it("passes when every step is right", async () => {
    const result = await verifier().verify(
      "Step 1: 17 * 23 = 391\nStep 2: 391 + 4 = 395\nAnswer: 395",
      ctx,
    );
    expect(result).toEqual({ pass: true, score: 1, message: "all 2 arithmetic steps are correct" });
  });

  it("fails with one specific message per wrong step and a partial score", async () => {
    const result = await verifier().verify(
      "Step 1: 17 * 23 = 393\nStep 2: 393 + 4 = 397\nStep 3: 397 * 2 = 790\nAnswer: 790",
      ctx,
    );
    expect(result.pass).toBe(false);
    expect(result.score).toBeCloseTo(1 / 3);
    expect(result.message).toBe(
      "2 of 3 arithmetic steps are wrong: " +
        'line 1: step "17 * 23 = 393" is wrong: 17 * 23 = 391; ' +
        'line 3: step "397 * 2 = 790" is wrong: 397 * 2 = 794',
    );
  });

  it("passes drafts with no arithmetic, so it never fails non-math work", async () => {
    for (const draft of ["", "Paris is the capital of France.", '{"name": "Ada", "age": 36}']) {
      expect(await verifier().verify(draft, ctx)).toEqual({
        pass: true,
        score: 1,
        message: "no arithmetic steps to check",
      });
    }
  });

  it("lists at most five wrong steps", async () => {
    const draft = Array.from({ length: 7 }, (_, i) => `${i} + 1 = ${i + 5}`).join("\n");
    const result = await verifier().verify(draft, ctx);
    expect(result.score).toBe(0);
    expect(result.message).toMatch(/^7 of 7 arithmetic steps are wrong: .*; and 2 more$/);
    expect(result.message.match(/is wrong:/g)).toHaveLength(5);
  });

  it("is built from a spec, deterministic and hard by default", () => {
    const [built] = createVerifiers([{ kind: "arithmetic_steps" }]);
    expect(built).toMatchObject({
      id: "arithmetic_steps",
      kind: "arithmetic_steps",
      hard: true,
      deterministic: true,
    });
    const [spec] = parseVerifierSpecs([{ kind: "arithmetic_steps", hard: false, id: "math" }]);
    expect(spec).toEqual({ kind: "arithmetic_steps", id: "math", hard: false, tolerance: 1e-6 });
  });
});

describe("arithmetic_steps spec errors", () => {
  it.each([
    [
      [{ kind: "arithmetic_steps", tolerance: -1 }],
      "verifiers[0].tolerance",
      /must not be negative/,
    ],
    [[{ kind: "arithmetic_steps", tolerance: "1" }], "verifiers[0].tolerance", /must be a number/],
    [[{ kind: "arithmetic_steps", hard: "yes" }], "verifiers[0].hard", /./],
    [[{ kind: "arithmetic_steps", id: "" }], "verifiers[0].id", /id must not be empty/],
    [
      [
        { kind: "regex", mustMatch: ["a"] },
        { kind: "arithmetic_steps", expected: 4 },
      ],
      "verifiers[1].expected",
      /./,
    ],
  ])("%j is reported at %s", (input, field, message) => {
    const error = thrown(() => parseVerifierSpecs(input));
    expect(error.code).toBe("invalid_config");
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });

  it("lists the fields of an arithmetic_steps verifier for an unknown one", () => {
    const error = thrown(() => parseVerifierSpecs([{ kind: "arithmetic_steps", expected: 4 }]));
    expect(error.fix).toBe(
      'remove "expected"; fields of a arithmetic_steps verifier: kind, id, hard, tolerance',
    );
  });
});
