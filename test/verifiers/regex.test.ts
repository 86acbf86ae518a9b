// Tests for the regex verifier: required and forbidden patterns, flags, and config errors.
import { describe, expect, it } from "vitest";
import { RefineryError } from "../../core/errors.ts";
import { createRegexVerifier } from "../../core/verifiers/regex.ts";
import type { RegexVerifierSpec } from "../../core/verifiers/spec.ts";

const ctx = { task: "t", iteration: 1 };

function regex(spec: Omit<RegexVerifierSpec, "kind" | "hard">) {
  return createRegexVerifier({ kind: "regex", hard: true, ...spec }, "regex", "verifiers[2]");
}

function thrown(fn: () => unknown): RefineryError {
  try {
    fn();
  } catch (error) {
    if (error instanceof RefineryError) return error;
    throw error;
  }
  throw new Error("expected a RefineryError");
}

describe("regex verifier", () => {
  it("passes when every rule holds", async () => {
    const v = regex({ mustMatch: ["^# ", "\\d{4}"], mustNotMatch: ["TODO"] });
    const result = await v.verify("# Report\nYear 2024", ctx);
    expect(result).toMatchObject({
      pass: true,
      score: 1,
      message: "all 3 pattern rules satisfied",
    });
  });

  it("fails a missing required pattern and scores the fraction of rules that hold", async () => {
    const v = regex({ mustMatch: ["^# ", "\\d{4}"], mustNotMatch: ["TODO"] });
    const result = await v.verify("# Report without a year", ctx);
    expect(result.pass).toBe(false);
    expect(result.score).toBeCloseTo(2 / 3);
    expect(result.message).toBe("the draft does not match required pattern /\\d{4}/");
  });

  it("shows what a forbidden pattern matched and on which line", async () => {
    const v = regex({ mustNotMatch: ["todo|fixme"], flags: "i" });
    const result = await v.verify("line one\nstill FIXME here", ctx);
    expect(result.pass).toBe(false);
    expect(result.message).toBe(
      'the draft matches forbidden pattern /todo|fixme/i: "FIXME" at line 2',
    );
  });

  it("lists every failing rule", async () => {
    const v = regex({ mustMatch: ["a", "b"], mustNotMatch: ["c"] });
    const result = await v.verify("c", ctx);
    expect(result.score).toBe(0);
    expect(result.message.split("\n")).toHaveLength(4);
    expect(result.message).toMatch(/^the draft fails 3 pattern rules:/);
  });

  it("gives the same verdict on every call even with the g flag", async () => {
    const v = regex({ mustMatch: ["x"], flags: "g" });
    expect((await v.verify("x", ctx)).pass).toBe(true);
    expect((await v.verify("x", ctx)).pass).toBe(true);
  });

  it("rejects an invalid pattern at construction, naming its index", () => {
    const error = thrown(() => regex({ mustMatch: ["ok"], mustNotMatch: ["fine", "(unclosed"] }));
    expect(error.code).toBe("invalid_config");
    expect(error.field).toBe("verifiers[2].mustNotMatch[1]");
    expect(error.message).toMatch(/invalid regular expression "\(unclosed"/);
    expect(error.fix).toMatch(/backslashes/);
  });

  it("rejects a flag combination RegExp refuses", () => {
    const error = thrown(() => regex({ mustMatch: ["a"], flags: "uv" }));
    expect(error.field).toBe("verifiers[2].flags");
  });
});
