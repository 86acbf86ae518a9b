import { describe, expect, it } from "vitest";
import { parseCritique, toScore } from "../../core/critique-parse.ts";

describe("parseCritique", () => {
  it("reads the JSON reply", () => {
    expect(
      parseCritique('{"verdict":"revise","score":0.4,"issues":["step 2 adds wrongly"]}'),
    ).toEqual({ verdict: "revise", score: 0.4, issues: ["step 2 adds wrongly"] });
  });
  it("reads JSON inside a fence and prose", () => {
    expect(
      parseCritique('Here you go:\n```json\n{"verdict":"pass","score":"9/10","issues":[]}\n```'),
    ).toEqual({ verdict: "pass", score: 0.9, issues: [] });
  });
  it("a pass with issues is a revise", () => {
    expect(parseCritique('{"verdict":"pass","issues":["typo"]}').verdict).toBe("revise");
  });
  it("keeps unreadable prose as one issue", () => {
    expect(parseCritique("The units are missing.")).toEqual({
      verdict: "revise",
      issues: ["The units are missing."],
    });
  });
  it("recognises a plain clean reply", () => {
    expect(parseCritique("Looks good to me.")).toEqual({ verdict: "pass", issues: [] });
  });
  it("handles braces inside strings", () => {
    expect(parseCritique('x {"verdict":"revise","issues":["use {braces}"]} y').issues).toEqual([
      "use {braces}",
    ]);
  });
});

describe("toScore", () => {
  it.each([
    [0.7, 0.7],
    ["0.7", 0.7],
    ["70%", 0.7],
    ["7/10", 0.7],
    [8, 0.8],
    [85, 0.85],
    ["nope", undefined],
    [-1, 0],
  ])("%s -> %s", (input, expected) => {
    expect(toScore(input)).toBe(expected);
  });
});
