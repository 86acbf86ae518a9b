// Tests for the constraints verifier: length in words and characters, required/forbidden text.
import { describe, expect, it } from "vitest";
import { createConstraintsVerifier, measure } from "../../core/verifiers/constraints.ts";
import type { ConstraintsVerifierSpec } from "../../core/verifiers/spec.ts";

const ctx = { task: "t", iteration: 1 };

function constraints(spec: Partial<ConstraintsVerifierSpec>) {
  return createConstraintsVerifier(
    { kind: "constraints", hard: true, unit: "words", caseSensitive: false, ...spec },
    "constraints",
  );
}

describe("measure", () => {
  it("counts words on whitespace and characters as code points", () => {
    expect(measure("  one two\n\tthree  ", "words")).toBe(3);
    expect(measure("   ", "words")).toBe(0);
    expect(measure("héllo 👋", "chars")).toBe(7);
  });
});

describe("constraints verifier", () => {
  it("passes when all constraints hold", async () => {
    const v = constraints({
      minLength: 2,
      maxLength: 5,
      contains: ["Paris"],
      notContains: ["London"],
    });
    const result = await v.verify("The capital is paris.", ctx);
    expect(result).toMatchObject({ pass: true, score: 1 });
    expect(result.message).toBe("all 4 constraints met (4 words)");
  });

  it("lists every violated constraint", async () => {
    const v = constraints({
      minLength: 10,
      contains: ["Paris", "France"],
      notContains: ["london"],
    });
    const result = await v.verify("London, not France.", ctx);
    expect(result.pass).toBe(false);
    expect(result.score).toBeCloseTo(1 / 4);
    expect(result.message).toBe(
      "3 constraints violated:\n" +
        "- too short: 3 words, minimum 10 words\n" +
        '- missing required text "Paris"\n' +
        '- contains forbidden text "london"',
    );
  });

  it("counts characters when asked and reports a single violation plainly", async () => {
    const v = constraints({ maxLength: 5, unit: "chars" });
    expect((await v.verify("abcdef", ctx)).message).toBe(
      "too long: 6 characters, maximum 5 characters",
    );
    expect((await v.verify("abcde", ctx)).pass).toBe(true);
  });

  it("respects caseSensitive", async () => {
    const v = constraints({ contains: ["Paris"], caseSensitive: true });
    expect((await v.verify("paris", ctx)).pass).toBe(false);
    expect((await v.verify("Paris", ctx)).pass).toBe(true);
  });
});
