import { describe, expect, it } from "vitest";
import {
  actionableIssues,
  isVagueIssue,
  parseCritique,
  toScore,
} from "../../core/critique-parse.ts";

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

describe("isVagueIssue: what a targeted revise can act on", () => {
  it.each([
    "Some parts may contain mistakes; double-check the work before finalizing.",
    "The reasoning could be clearer and more carefully checked.",
    "The draft could be more precise and better organized.",
    "Consider verifying the result once more; something may be off.",
    "The answer might be wrong.",
    "Please review the calculations again.",
    "The explanation lacks clarity and detail.",
    "Double-check the final answer.",
  ])("vague: %j", (issue) => {
    expect(isVagueIssue(issue)).toBe(true);
  });
  it.each([
    "The final answer 2879 is wrong: recheck the last step and the conclusion.",
    'The field "age" is missing; the task requires it.',
    "The draft does not state a final value: end with a line `Answer: <value>`.",
    "The draft is not a valid JSON object; reply with exactly one JSON object.",
    "Step 2 multiplies instead of dividing.",
    "The draft ignores the broken desks.",
    "The answer might be missing the shipping cost.",
    "Use 'Lisbon' for the city.",
  ])("actionable: %j", (issue) => {
    expect(isVagueIssue(issue)).toBe(false);
  });
  it("actionableIssues keeps only the issues that name something", () => {
    expect(
      actionableIssues(["Double-check the work.", "The total omits the tip.", "Could be clearer."]),
    ).toEqual(["The total omits the tip."]);
    expect(actionableIssues([])).toEqual([]);
  });
});
