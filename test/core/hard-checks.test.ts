// Whether a draft passes its hard checks, and which earlier draft did when it does not.
import { describe, expect, it } from "vitest";
import { hardCheckReport, hardCheckWarning } from "../../core/hard-checks.ts";

const v = (iteration: number, id: string, pass: boolean, hard = true) => ({
  iteration,
  id,
  pass,
  hard,
});

describe("hardCheckReport", () => {
  it("names the failing hard checks and the newest earlier draft that passed them all", () => {
    const verdicts = [
      v(1, "answer", true),
      v(1, "format", true),
      v(2, "answer", true),
      v(2, "format", false),
      v(3, "answer", false),
      v(3, "format", false),
      v(3, "style", false, false),
    ];
    const report = hardCheckReport(verdicts, 3);
    expect(report).toEqual({
      iteration: 3,
      passed: 0,
      total: 2,
      failed: ["answer", "format"],
      earlierPassing: 1,
    });
    expect(hardCheckWarning(report)).toBe(
      "The answer offered (draft 3) fails hard checks answer, format; draft 1 passed every hard check.",
    );
  });

  it("says nothing when the draft passes, and that no earlier draft passed when none did", () => {
    expect(hardCheckWarning(hardCheckReport([v(1, "answer", true)], 1))).toBeNull();
    // A soft verdict is not a hard check, and a draft with no hard check never "passed them all".
    const none = hardCheckReport([v(1, "judge", true, false), v(2, "answer", false)], 2);
    expect(none.earlierPassing).toBeNull();
    expect(hardCheckWarning(none)).toBe(
      "The answer offered (draft 2) fails hard check answer; no earlier draft passed them all.",
    );
  });
});
