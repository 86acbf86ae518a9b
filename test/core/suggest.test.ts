// "Did you mean": the closest valid name for a misspelt one, and none when nothing is close.
import { describe, expect, it } from "vitest";
import { closest, editDistance, suggestion } from "../../core/suggest.ts";

describe("closest", () => {
  const options = [
    "maxIterations",
    "tokenBudget",
    "scoreThreshold",
    "strategy",
    "critique",
    "verifiers",
  ];
  it("finds typos, transpositions, missing letters and case slips", () => {
    expect(closest("maxIteration", options)).toBe("maxIterations");
    expect(closest("maxItreations", options)).toBe("maxIterations");
    expect(closest("stratgy", options)).toBe("strategy");
    expect(closest("Strategy", options)).toBe("strategy");
    expect(closest("critic", options)).toBe("critique");
    expect(closest("verifier", options)).toBe("verifiers");
    expect(closest("token_budget", options)).toBe("tokenBudget");
  });
  it("suggests nothing for a name that is not close to any", () => {
    expect(closest("temperature", options)).toBeUndefined();
    expect(closest("x", options)).toBeUndefined();
    expect(suggestion("temperature", ["a", "b"], "options")).toBe("valid options: a, b");
  });
  it("counts a transposition as one edit", () => {
    expect(editDistance("ab", "ba")).toBe(1);
    expect(editDistance("kitten", "sitting")).toBe(3);
  });
});
