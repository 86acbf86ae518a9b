// Tests for the regex verifier: required and forbidden patterns, flags, and config errors.
// Patterns run on RE2: a pattern that backtracks catastrophically in JavaScript is matched in
// linear time, and what RE2 cannot do (lookaround, backreferences) is refused by field.
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

  it("matches a catastrophically backtracking pattern without hanging", async () => {
    // On a backtracking engine `(a+)+$` on 34 a's and a "!" takes minutes; RE2 is linear.
    const v = regex({ mustMatch: ["(a+)+$"], mustNotMatch: ["^(a|aa)+!"] });
    const result = await v.verify(`${"a".repeat(34)}!`, ctx);
    expect(result.pass).toBe(false);
    expect(result.message).toMatch(/^the draft fails 2 pattern rules:/);
    const long = await regex({ mustMatch: ["^(a+)+$"] }).verify(`${"a".repeat(100_000)}!`, ctx);
    expect(long.pass).toBe(false);
  });

  it.each([
    ["a lookahead", "^(?=.*\\d)\\w+$", /lookahead is not supported/],
    ["a negative lookahead", "^(?!TODO)", /lookahead is not supported/],
    ["a lookbehind", "(?<=\\$)\\d+", /lookbehind is not supported/],
    ["a backreference", "(\\w)\\1", /backreferences are not supported/],
    ["a named backreference", "(?<q>['\"]).*\\k<q>", /backreferences are not supported/],
  ])("refuses %s, naming the pattern and how to write it for RE2", (_what, source, reason) => {
    const error = thrown(() => regex({ mustMatch: ["ok", source] }));
    expect(error.code).toBe("invalid_config");
    expect(error.field).toBe("verifiers[2].mustMatch[1]");
    expect(error.message).toMatch(reason);
    expect(error.fix).toMatch(/RE2/);
  });

  it("keeps the JavaScript flags i, m, s and y, and JavaScript syntax RE2 spells differently", async () => {
    const pass = async (spec: Omit<RegexVerifierSpec, "kind" | "hard">, draft: string) =>
      (await regex(spec).verify(draft, ctx)).pass;
    expect(await pass({ mustMatch: ["^b$"] }, "a\nb")).toBe(false);
    expect(await pass({ mustMatch: ["^b$"], flags: "m" }, "a\nb")).toBe(true);
    expect(await pass({ mustMatch: ["a.b"] }, "a\nb")).toBe(false);
    expect(await pass({ mustMatch: ["a.b"], flags: "s" }, "a\nb")).toBe(true);
    expect(await pass({ mustMatch: ["ANSWER"], flags: "i" }, "answer: 4")).toBe(true);
    // y: the match must start at the start of the draft.
    expect(await pass({ mustMatch: ["b"], flags: "y" }, "ab")).toBe(false);
    expect(await pass({ mustMatch: ["b"], flags: "y" }, "ba")).toBe(true);
    // Named groups, \u escapes and \p classes as JavaScript writes them.
    expect(
      await pass(
        { mustMatch: ["(?<year>\\d{4})", "Caf\\u00e9", "\\p{Lu}"], flags: "u" },
        "Café 2024",
      ),
    ).toBe(true);
  });
});
